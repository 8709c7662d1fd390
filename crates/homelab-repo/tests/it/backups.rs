//! etcd snapshots in the repository: only ciphertext reaches the disk, the real `age` decrypts it with the
//! repository key, the metadata beside it holds no secret, and listing and pruning go oldest first.

use std::io::Write as _;
use std::process::Command;

use homelab_repo::{BACKUP_DIR, SnapshotMeta, SnapshotTarget};

use crate::support::TestRepo;

const SECRET: &[u8] = b"etcd snapshot holding a Secret: hunter2-hunter2";

fn meta() -> SnapshotMeta {
    SnapshotMeta {
        taken_at: String::new(),
        cluster: "homelab".into(),
        node: "talos-cp-01".into(),
        talos_version: "v1.12.4".into(),
        etcd_version: "3.6.7".into(),
        size: 0,
        file: String::new(),
        recipients: Vec::new(),
    }
}

fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).expect("time")
}

#[test]
fn a_snapshot_is_written_only_encrypted_and_the_real_age_decrypts_it() {
    let t = TestRepo::new();
    let repo = t.repo();
    let mut w = repo
        .snapshot_writer(SnapshotTarget::Backups, "homelab", at(1_796_004_600))
        .expect("writer");
    w.write_all(SECRET).expect("write");
    let snap = w.finish(meta()).expect("finish");
    assert_eq!(snap.meta.taken_at, "2026-11-30T02:10:00Z");
    assert_eq!(
        snap.path,
        t.root()
            .join(BACKUP_DIR)
            .join("etcd-homelab-20261130T021000Z.snapshot.age")
    );
    let on_disk = std::fs::read(&snap.path).expect("read");
    assert!(on_disk.starts_with(b"age-encryption.org/v1\n"));
    assert!(!on_disk.windows(7).any(|w| w == b"hunter2"));
    assert_eq!(snap.meta.size, SECRET.len() as u64);
    assert_eq!(snap.meta.recipients, vec![t.recipient.clone()]);

    let age = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&t.key_file)
        .arg(&snap.path)
        .output()
        .expect("run age (apt-get install age)");
    assert!(
        age.status.success(),
        "{}",
        String::from_utf8_lossy(&age.stderr)
    );
    assert_eq!(age.stdout, SECRET);
    assert_eq!(
        repo.read_snapshot(&snap.path).expect("decrypt").as_slice(),
        SECRET
    );

    let meta_text = std::fs::read_to_string(
        t.root()
            .join(BACKUP_DIR)
            .join(format!("{}.json", snap.meta.file)),
    )
    .expect("metadata beside it");
    assert!(
        meta_text.contains("\"etcd_version\": \"3.6.7\""),
        "{meta_text}"
    );
    assert!(!meta_text.contains("hunter2"));
    let ignore = std::fs::read_to_string(t.root().join(".gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "/backups/"), "{ignore}");
    let mode = std::fs::metadata(t.root().join(BACKUP_DIR))
        .expect("dir")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
}

#[test]
fn snapshots_are_listed_and_pruned_oldest_first_and_an_unfinished_one_leaves_nothing() {
    let t = TestRepo::new();
    let repo = t.repo();
    for secs in [1_796_004_600, 1_796_008_200, 1_796_011_800] {
        let mut w = repo
            .snapshot_writer(SnapshotTarget::Backups, "homelab", at(secs))
            .expect("writer");
        w.write_all(SECRET).expect("write");
        w.finish(meta()).expect("finish");
    }
    let unfinished = repo
        .snapshot_writer(SnapshotTarget::Backups, "homelab", at(1_796_015_400))
        .expect("writer");
    drop(unfinished);
    // Two in the same second get a counter instead of an error.
    let mut again = repo
        .snapshot_writer(SnapshotTarget::Backups, "homelab", at(1_796_011_800))
        .expect("writer");
    again.write_all(SECRET).expect("write");
    let again = again.finish(meta()).expect("finish");
    assert!(
        again.meta.file.ends_with("T041000Z-1.snapshot.age"),
        "{}",
        again.meta.file
    );
    let listed: Vec<String> = repo
        .snapshots()
        .expect("list")
        .into_iter()
        .map(|s| s.meta.taken_at)
        .collect();
    assert_eq!(
        listed,
        [
            "2026-11-30T02:10:00Z",
            "2026-11-30T03:10:00Z",
            "2026-11-30T04:10:00Z",
            "2026-11-30T04:10:00Z"
        ]
    );
    let removed = repo.prune_snapshots(1).expect("prune");
    assert_eq!(removed.len(), 3);
    let left = std::fs::read_dir(t.root().join(BACKUP_DIR))
        .expect("dir")
        .count();
    assert_eq!(left, 2, "one snapshot and its metadata, no temporary file");
    assert_eq!(
        repo.snapshots().expect("list")[0].meta.file,
        again.meta.file,
        "the later of two in the same second stays"
    );
}

#[test]
fn a_snapshot_never_replaces_a_file() {
    let t = TestRepo::new();
    let out = t.root().join("mine.age");
    std::fs::write(&out, b"keep").expect("write");
    let err = t
        .repo()
        .snapshot_writer(SnapshotTarget::File(&out), "homelab", at(0))
        .expect_err("refused");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&out).expect("read"), b"keep");
}
