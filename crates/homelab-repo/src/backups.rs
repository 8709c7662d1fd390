//! etcd snapshots kept in the repository: written only age-encrypted (streamed through age into
//! `homelab_fs::Staged`, a temporary file that is moved into place on finish, so no plaintext byte ever
//! reaches the disk and no half-written snapshot is ever seen), by default
//! under `backups/` (gitignored), each with a metadata file beside it (time, cluster, versions; nothing
//! secret); listed, pruned, and decrypted in memory for a restore.
//!
//! A snapshot holds every Secret of the cluster, so it is encrypted to the recipients `.sops.yaml` gives
//! the Talos secrets bundle: whoever can read the bundle can read the snapshots, nobody else.

use homelab_fs::Mode;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::RepoError;
use crate::files::ensure_gitignored;
use crate::{Repo, TALOS_SECRETS_FILE};

/// Where snapshots go by default.
pub const BACKUP_DIR: &str = "backups";
/// The encrypted snapshot's extension; its metadata file adds `.json`.
const SNAPSHOT_SUFFIX: &str = ".snapshot.age";
const META_SUFFIX: &str = ".json";

/// What is recorded beside a snapshot. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// when it was taken, RFC 3339 UTC (`2026-12-07T02:10:00Z`)
    pub taken_at: String,
    /// `cluster.name` of homelab.yaml
    pub cluster: String,
    /// the etcd member (node name) it was streamed from
    pub node: String,
    /// the Talos version that node ran
    pub talos_version: String,
    /// the etcd server version of that member
    pub etcd_version: String,
    /// the snapshot's size before encryption, in bytes
    pub size: u64,
    /// the encrypted file's name (beside this metadata)
    pub file: String,
    /// the age recipients it is encrypted to (public keys)
    pub recipients: Vec<String>,
}

/// A snapshot on disk: the encrypted file and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// the encrypted file
    pub path: PathBuf,
    /// what was recorded beside it
    pub meta: SnapshotMeta,
}

/// Where a new snapshot is written.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotTarget<'a> {
    /// `backups/etcd-<cluster>-<time>.snapshot.age`
    Backups,
    /// this file (its metadata goes beside it as `<file>.json`)
    File(&'a Path),
}

/// A snapshot being written: what is written to it is encrypted on the way to a temporary file in the
/// target directory. [`SnapshotWriter::finish`] puts it in place; dropping it unfinished leaves nothing.
pub struct SnapshotWriter {
    age: age::stream::StreamWriter<homelab_fs::Staged>,
    path: PathBuf,
    size: u64,
    recipients: Vec<String>,
    /// when the snapshot was started, RFC 3339 UTC
    taken_at: String,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.age.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.age.flush()
    }
}

/// The metadata file of an encrypted snapshot.
fn meta_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_owned();
    name.push(META_SUFFIX);
    PathBuf::from(name)
}

/// `2026-12-07T02:10:00Z` and its file-name form `20261207T021000Z`.
fn timestamps(now: time::OffsetDateTime) -> (String, String) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (y, mo, d) = (now.year(), u8::from(now.month()), now.day());
    let (h, mi, s) = (now.hour(), now.minute(), now.second());
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    )
}

impl SnapshotWriter {
    /// The file the snapshot will be at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes the encryption, moves the file into place (never over an existing one) and writes the
    /// metadata beside it. `meta.taken_at`, `meta.size`, `meta.file` and `meta.recipients` are filled in
    /// here.
    pub fn finish(self, mut meta: SnapshotMeta) -> Result<Snapshot, RepoError> {
        let io = |path: &Path, action, e| RepoError::io(path, action, e);
        let staged = self
            .age
            .finish()
            .map_err(|e| io(&self.path, "encrypting", e))?;
        if !staged.commit_new()? {
            return Err(io(
                &self.path,
                "creating",
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file already exists"),
            ));
        }
        meta.taken_at = self.taken_at;
        meta.size = self.size;
        meta.file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        meta.recipients = self.recipients;
        let meta_file = meta_path(&self.path);
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| {
            io(
                &meta_file,
                "encoding",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        homelab_fs::write(&meta_file, &json, Mode::KeepOr(0o644))?;
        Ok(Snapshot {
            path: self.path,
            meta,
        })
    }
}

impl Repo {
    /// The age recipients snapshots are encrypted to: those of the Talos secrets bundle's creation rule.
    pub fn snapshot_recipients(&self) -> Result<Vec<String>, RepoError> {
        let config = homelab_sops::SopsConfig::find(self.root())?.filter(|c| c.has_rules());
        let Some(config) = config else {
            return Err(homelab_sops::SopsError::NoRecipients {
                file: self.path(TALOS_SECRETS_FILE).display().to_string(),
            }
            .into());
        };
        let rule = config.rule_for(&self.path(TALOS_SECRETS_FILE))?;
        if rule.recipients.is_empty() {
            return Err(homelab_sops::SopsError::NoRecipients {
                file: self.path(TALOS_SECRETS_FILE).display().to_string(),
            }
            .into());
        }
        Ok(rule.recipients)
    }

    /// Opens a new encrypted snapshot for writing: in `backups/` (created 0700 and gitignored) named after
    /// the cluster and `now`, or at the given file. Refuses to replace an existing file.
    pub fn snapshot_writer(
        &self,
        target: SnapshotTarget<'_>,
        cluster: &str,
        now: time::OffsetDateTime,
    ) -> Result<SnapshotWriter, RepoError> {
        let recipients = self.snapshot_recipients()?;
        let parsed = recipients
            .iter()
            .map(|r| {
                r.parse::<age::x25519::Recipient>().map_err(|e| {
                    homelab_sops::SopsError::Recipient {
                        recipient: r.clone(),
                        reason: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (taken_at, stamp) = timestamps(now);
        let path = match target {
            SnapshotTarget::File(path) => path.to_path_buf(),
            SnapshotTarget::Backups => {
                let dir = self.path(BACKUP_DIR);
                create_private_dir(&dir)?;
                ensure_gitignored(
                    self.root(),
                    &["/backups/"],
                    "etcd snapshots (encrypted, full of the cluster's Secrets)",
                )?;
                // Two snapshots in the same second (a timer and a person) get a counter, not an error.
                let named = |n: u32| match n {
                    0 => dir.join(format!("etcd-{cluster}-{stamp}{SNAPSHOT_SUFFIX}")),
                    n => dir.join(format!("etcd-{cluster}-{stamp}-{n}{SNAPSHOT_SUFFIX}")),
                };
                (0..100)
                    .map(named)
                    .find(|p| !p.exists())
                    .unwrap_or_else(|| named(100))
            }
        };
        if path.exists() {
            return Err(RepoError::io(
                &path,
                "creating",
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file already exists"),
            ));
        }
        let staged = homelab_fs::Staged::create(&path, Mode::Private)?;
        let encryptor =
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| homelab_sops::SopsError::Crypto {
                    file: path.display().to_string(),
                    message: e.to_string(),
                })?;
        let age = encryptor
            .wrap_output(staged)
            .map_err(|e| RepoError::io(&path, "encrypting", e))?;
        Ok(SnapshotWriter {
            age,
            path,
            size: 0,
            recipients,
            taken_at,
        })
    }

    /// The snapshots under `backups/` (those with a readable metadata file), oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, RepoError> {
        let dir = self.path(BACKUP_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RepoError::io(&dir, "listing", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RepoError::io(&dir, "listing", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(file) = name.strip_suffix(META_SUFFIX) else {
                continue;
            };
            if !file.ends_with(SNAPSHOT_SUFFIX) {
                continue;
            }
            let text = std::fs::read(entry.path())
                .map_err(|e| RepoError::io(entry.path(), "reading", e))?;
            // A metadata file we cannot read is not ours to judge (or prune): skip it.
            let Ok(meta) = serde_json::from_slice::<SnapshotMeta>(&text) else {
                continue;
            };
            out.push(Snapshot {
                path: dir.join(file),
                meta,
            });
        }
        out.sort_by(|a, b| {
            (a.meta.taken_at.as_str(), same_second(&a.path), &a.path).cmp(&(
                b.meta.taken_at.as_str(),
                same_second(&b.path),
                &b.path,
            ))
        });
        Ok(out)
    }

    /// Deletes the oldest snapshots under `backups/` beyond the newest `keep`; returns those deleted.
    pub fn prune_snapshots(&self, keep: usize) -> Result<Vec<Snapshot>, RepoError> {
        let all = self.snapshots()?;
        let excess = all.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for snap in all.into_iter().take(excess) {
            for path in [&snap.path, &meta_path(&snap.path)] {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepoError::io(path, "deleting", e)),
                }
            }
            removed.push(snap);
        }
        Ok(removed)
    }

    /// Decrypts a snapshot into memory (zeroized on drop) with the repository's identities.
    pub fn read_snapshot(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, RepoError> {
        let file = std::fs::File::open(path).map_err(|e| RepoError::io(path, "reading", e))?;
        let name = path.display().to_string();
        let mut reader = self
            .identities()
            .decrypt_stream(std::io::BufReader::new(file), &name)?;
        let mut out = Zeroizing::new(Vec::new());
        reader
            .read_to_end(&mut out)
            .map_err(|e| RepoError::io(path, "decrypting", e))?;
        Ok(out)
    }
}

/// The counter of a snapshot taken in the same second as another (`…T021000Z-2.snapshot.age` → 2), else 0.
fn same_second(path: &Path) -> u32 {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    name.as_deref()
        .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
        .and_then(|stem| stem.rsplit_once('-'))
        .filter(|(before, _)| before.ends_with('Z'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// Creates `dir` (and parents) with mode 0700 on Unix.
fn create_private_dir(dir: &Path) -> Result<(), RepoError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| RepoError::io(dir, "creating", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_in_both_forms() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_796_004_600).expect("time");
        let (rfc, stamp) = timestamps(t);
        assert_eq!(rfc, "2026-11-30T02:10:00Z");
        assert_eq!(stamp, "20261130T021000Z");
        assert_eq!(
            meta_path(Path::new("backups/a.snapshot.age")),
            PathBuf::from("backups/a.snapshot.age.json")
        );
    }
}
