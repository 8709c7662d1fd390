//! `homelabctl etcd` through the real binary against the in-process lab running the HA example (three
//! control planes behind a VIP, one worker, moved onto loopback): `members` shows three voting members and
//! one leader; `snapshot` writes only age ciphertext that the real `age` decrypts with the repository key;
//! after a ConfigMap is deleted, `restore` (Talos' recovery) brings it back; `--keep` prunes.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use homelab_sim::lab::{Lab, LabOptions};
use serde_json::{Value, json};

use crate::workspace_root;

/// The second address octet of this test process (the same test of another worktree runs elsewhere).
pub(crate) fn octet() -> u8 {
    (std::process::id() % 250) as u8 + 1
}

pub(crate) fn homelabctl(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = crate::isolated(dir, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn homelabctl");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write as _;
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("homelabctl runs")
}

pub(crate) fn ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = homelabctl(dir, args, stdin);
    assert!(
        out.status.success(),
        "homelabctl {}: {}\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// examples/ha/homelab.yaml pointed at the lab, its 192.168.20.0/24 moved to 127.<octet>.<subnet>.0/24.
fn ha_example(lab: &Lab, subnet: u8) -> String {
    example("ha", lab, subnet)
}

/// examples/<name>/homelab.yaml pointed at the lab, its 192.168.20.0/24 moved to 127.<octet>.<subnet>.0/24.
pub(crate) fn example(name: &str, lab: &Lab, subnet: u8) -> String {
    let info = lab.info();
    let text =
        std::fs::read_to_string(workspace_root().join(format!("examples/{name}/homelab.yaml")))
            .expect("the example");
    text.replace("https://192.168.20.10:8006", &info.proxmox_endpoint)
        .replace(
            "  token_id: \"homelabctl@pve!provision\"\n",
            &format!(
                "  token_id: \"{}\"\n  tls:\n    fingerprint: \"{}\"\n",
                info.token_id, info.fingerprint
            ),
        )
        .replace("  node: pve\n", &format!("  node: {}\n", info.proxmox_node))
        .replace("https://factory.talos.dev", &info.factory_url)
        .replace("192.168.20.", &format!("127.{}.{subnet}.", octet()))
}

/// The in-process lab with fast timings on 127.<octet>.<subnet>.0/24, and the runtime that serves it (keep
/// it alive as long as the lab).
pub(crate) fn fast_lab(subnet: u8) -> (tokio::runtime::Runtime, Lab) {
    let mut options = LabOptions::fast(subnet);
    options.dhcp_first = Ipv4Addr::new(127, octet(), subnet, 200);
    crate::start_lab(options)
}

#[test]
fn etcd_members_snapshot_and_restore_on_the_ha_example() {
    let subnet = 195;
    let (runtime, lab) = fast_lab(subnet);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["init", "."], None);
    std::fs::write(dir.join("homelab.yaml"), ha_example(&lab, subnet)).expect("homelab.yaml");
    let secret = format!("{}\n", lab.info().token_secret);
    ok(dir, &["secrets", "set-proxmox-token"], Some(&secret));
    // apply generates the cluster's own secrets bundle (nothing read from outside the repository).
    ok(dir, &["apply", "--yes"], None);

    // Members: three voting control planes, one leader.
    let table = ok(dir, &["etcd", "members"], None);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("LEADER") && h.contains("LEARNER"))
    );
    assert_eq!(rows.len(), 3, "{table}");
    for name in ["talos-cp-01", "talos-cp-02", "talos-cp-03"] {
        assert!(rows.iter().any(|r| r.contains(name)), "{table}");
    }
    let members: Value =
        serde_json::from_str(&ok(dir, &["--format", "json", "etcd", "members"], None))
            .expect("json");
    let members = members.as_array().expect("array");
    assert_eq!(members.iter().filter(|m| m["leader"] == true).count(), 1);
    assert!(members.iter().all(|m| m["learner"] == false));

    let kube = || {
        lab.node(111)
            .and_then(|n| n.kube())
            .expect("cp-01 serves the API")
    };
    let cm = ("", "v1", "configmaps");
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "precious", "namespace": "default"}, "data": {"k": "v"}});
    assert!(kube().create(cm, Some("default"), object).is_ok());

    // Snapshot: ciphertext only, decrypted by the real age with the repository key.
    let said = ok(dir, &["etcd", "snapshot"], None);
    let backups: Vec<_> = std::fs::read_dir(dir.join("backups"))
        .expect("backups/")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(
        backups.len(),
        2,
        "the snapshot and its metadata: {backups:?}"
    );
    let Some(file) = backups
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".snapshot.age"))
    else {
        panic!("no snapshot in {backups:?}")
    };
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(said.starts_with(&format!("backups/{name}: ")), "{said}");
    let cipher = std::fs::read(file).expect("read");
    assert!(cipher.starts_with(b"age-encryption.org/v1\n"));
    assert!(!cipher.windows(8).any(|w| w == b"precious"));
    let age = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(dir.join(".age-key.txt"))
        .arg(file)
        .output()
        .expect("run age");
    assert!(
        age.status.success(),
        "{}",
        String::from_utf8_lossy(&age.stderr)
    );
    assert!(age.stdout.windows(8).any(|w| w == b"precious"));
    let meta = std::fs::read_to_string(format!("{}.json", file.display())).expect("metadata");
    let meta: Value = serde_json::from_str(&meta).expect("json");
    assert_eq!(meta["cluster"], "homelab-ha");
    assert_eq!(meta["talos_version"], "v1.12.4");
    assert_eq!(meta["etcd_version"], "3.6.7");
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "/backups/"), "{ignore}");
    let listed = ok(dir, &["etcd", "snapshots"], None);
    assert!(
        listed.contains("homelab-ha") && listed.contains("v1.12.4"),
        "{listed}"
    );

    // Disaster: the object is gone; restore asks first, then brings it back.
    assert!(kube().delete(cm, Some("default"), "precious").is_ok());
    let file = file.to_string_lossy().into_owned();
    let unconfirmed = homelabctl(dir, &["etcd", "restore", &file], None);
    assert_eq!(unconfirmed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"),
        "{}",
        String::from_utf8_lossy(&unconfirmed.stderr)
    );
    assert!(
        lab.node(112).is_some_and(|n| n.is_etcd_member()),
        "nothing wiped without --yes"
    );
    ok(
        dir,
        &["etcd", "restore", &file, "--yes", "--timeout", "60"],
        None,
    );
    let back = kube().get("", "v1", "configmaps", Some("default"), "precious");
    assert_eq!(back.map(|o| o["data"]["k"].clone()), Some(json!("v")));
    let mut names = lab.node(111).expect("cp-01").cluster_etcd_members();
    names.sort();
    assert_eq!(names, ["talos-cp-01", "talos-cp-02", "talos-cp-03"]);

    // A second snapshot with --keep 1 leaves only itself.
    ok(dir, &["etcd", "snapshot", "--keep", "1"], None);
    assert_eq!(
        std::fs::read_dir(dir.join("backups")).expect("dir").count(),
        2
    );

    let _inside = runtime.enter();
    drop(lab);
}

#[test]
fn a_snapshot_to_a_chosen_file_is_refused_without_recipients_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["init", "."], None);
    std::fs::write(dir.join(".sops.yaml"), "creation_rules: []\n").expect(".sops.yaml");
    let out = homelabctl(dir, &["etcd", "snapshot", "--out", "snap.age"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("snap.age").exists());
    assert!(!dir.join("backups").exists());
}
