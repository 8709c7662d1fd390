//! Atomic file writes, the one place the workspace writes a file it must never leave half-written:
//! the bytes go to a temporary file beside the target (same directory, so the rename cannot cross
//! a file system), get their permissions before any byte is written, are synced, then renamed over
//! (or, for [`write_new`], next to) the target, and the directory is synced so the rename survives
//! a crash. [`Staged`] is the same write for bytes that arrive as a stream (an encrypted backup): it is a
//! [`std::io::Write`] whose content reaches the target only on [`Staged::commit`] or
//! [`Staged::commit_new`], and nothing at all when it is dropped first. A leaf crate on purpose: homelab-sops, homelab-repo, the simulator, the engine and the
//! binary all write files, and none of them may depend on another just for this.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The permissions the written file gets (Unix permission bits; ignored elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `0600`: only the owner reads it (decrypted secrets, credentials, state holding a token).
    Private,
    /// Exactly these bits (e.g. `0o644` for a file meant to be read by anyone, `0o755` for a hook).
    Exact(u32),
    /// The permissions of the file being replaced; these bits when there is none.
    KeepOr(u32),
}

/// A write that failed: which file, what was being done, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{}: {action}: {source}", path.display())]
pub struct WriteError {
    /// The file (or, when creating the temporary file failed, its directory).
    pub path: PathBuf,
    /// What was being done ("creating a temporary file in", "writing", "replacing", …).
    pub action: &'static str,
    /// The OS error.
    pub source: std::io::Error,
}

impl WriteError {
    fn new(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// Replaces (or creates) `path` with `bytes` atomically: a reader sees the old content or the new,
/// never a part. The parent directory must exist.
pub fn write(path: &Path, bytes: &[u8], mode: Mode) -> Result<(), WriteError> {
    let mut staged = Staged::create(path, mode)?;
    staged.write_all_bytes(bytes)?;
    staged.commit()
}

/// Creates `path` with `bytes` atomically only if nothing is there yet (the temporary file is
/// linked into place without replacing). Returns `false`, writing nothing, when a file exists.
pub fn write_new(path: &Path, bytes: &[u8], mode: Mode) -> Result<bool, WriteError> {
    let mut staged = Staged::create(path, mode)?;
    staged.write_all_bytes(bytes)?;
    staged.commit_new()
}

/// A file being written atomically, for content that is produced piece by piece: the bytes go to a
/// temporary file beside the target, created with its final permissions before the first byte. The
/// target changes only on [`Staged::commit`] (replace) or [`Staged::commit_new`] (create only);
/// dropped uncommitted (an error half-way), the temporary file is removed and the target is untouched.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Staged {
    /// Starts writing `path` (its parent directory must exist).
    pub fn create(path: &Path, mode: Mode) -> Result<Self, WriteError> {
        let dir = parent(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // tempfile creates the file 0600, so a secret is never readable by others, even for a moment.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| WriteError::new(dir, "creating a temporary file in", e))?;
        set_mode(path, tmp.as_file(), mode)
            .map_err(|e| WriteError::new(tmp.path(), "setting permissions on", e))?;
        Ok(Self {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The file this will become.
    pub fn target(&self) -> &Path {
        &self.path
    }

    fn write_all_bytes(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.tmp
            .write_all(bytes)
            .map_err(|e| WriteError::new(self.tmp.path(), "writing", e))
    }

    fn synced(self) -> Result<(tempfile::NamedTempFile, PathBuf), WriteError> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| WriteError::new(self.tmp.path(), "syncing", e))?;
        Ok((self.tmp, self.path))
    }

    /// Syncs what was written and replaces (or creates) the target with it.
    pub fn commit(self) -> Result<(), WriteError> {
        let (tmp, path) = self.synced()?;
        tmp.persist(&path)
            .map_err(|e| WriteError::new(&path, "replacing", e.error))?;
        sync_dir(&path)
    }

    /// Syncs what was written and creates the target with it only if nothing is there yet; `false`,
    /// changing nothing, when a file exists.
    pub fn commit_new(self) -> Result<bool, WriteError> {
        let (tmp, path) = self.synced()?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => sync_dir(&path).map(|()| true),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(WriteError::new(&path, "creating", e.error)),
        }
    }
}

impl std::io::Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn set_mode(target: &Path, file: &std::fs::File, mode: Mode) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = match mode {
        Mode::Private => 0o600,
        Mode::Exact(bits) => bits,
        Mode::KeepOr(bits) => match std::fs::metadata(target) {
            Ok(meta) => meta.permissions().mode() & 0o7777,
            Err(_) => bits,
        },
    };
    file.set_permissions(std::fs::Permissions::from_mode(bits))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: &std::fs::File, _: Mode) -> std::io::Result<()> {
    Ok(())
}

/// Syncs the directory holding `path`, so the rename is on disk before the caller goes on.
#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), WriteError> {
    let dir = parent(path);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WriteError::new(dir, "syncing the directory", e))
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), WriteError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn write_replaces_and_leaves_no_temporary_file() {
        let d = dir();
        let p = d.path().join("f.yaml");
        write(&p, b"one", Mode::KeepOr(0o644)).expect("first write");
        write(&p, b"two", Mode::KeepOr(0o644)).expect("second write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(leftovers(d.path()), vec!["f.yaml".to_string()]);
    }

    #[test]
    fn write_new_never_replaces_a_file() {
        let d = dir();
        let p = d.path().join("f");
        assert!(write_new(&p, b"one", Mode::Private).expect("first"));
        assert!(!write_new(&p, b"two", Mode::Private).expect("second"));
        assert_eq!(std::fs::read(&p).expect("read"), b"one");
        assert_eq!(leftovers(d.path()), vec!["f".to_string()]);
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let d = dir();
        let p = d.path().join("absent").join("f");
        let err = write(&p, b"x", Mode::Private).expect_err("no directory");
        assert_eq!(err.path, d.path().join("absent"));
        assert!(
            err.to_string().contains("creating a temporary file in"),
            "{err}"
        );
    }

    #[test]
    fn a_stream_reaches_the_target_only_when_committed() {
        use std::io::Write as _;
        let d = dir();
        let p = d.path().join("backup.age");
        let mut staged = Staged::create(&p, Mode::Private).expect("create");
        staged.write_all(b"part one, ").expect("write");
        assert!(!p.exists(), "nothing at the target before the commit");
        staged.write_all(b"part two").expect("write");
        assert!(staged.commit_new().expect("commit"));
        assert_eq!(std::fs::read(&p).expect("read"), b"part one, part two");

        let mut again = Staged::create(&p, Mode::Private).expect("create");
        again.write_all(b"other").expect("write");
        assert!(!again.commit_new().expect("commit"), "never over a file");
        assert_eq!(std::fs::read(&p).expect("read"), b"part one, part two");

        let mut dropped = Staged::create(&d.path().join("gone"), Mode::Private).expect("create");
        dropped.write_all(b"half").expect("write");
        drop(dropped);
        assert_eq!(leftovers(d.path()), vec!["backup.age".to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn modes_are_private_exact_or_kept() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir();
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        let secret = d.path().join("secret");
        write(&secret, b"s", Mode::Private).expect("write");
        assert_eq!(mode(&secret), 0o600);

        let hook = d.path().join("hook");
        write(&hook, b"#!/bin/sh\n", Mode::Exact(0o755)).expect("write");
        assert_eq!(mode(&hook), 0o755);

        let kept = d.path().join("kept");
        write(&kept, b"a", Mode::KeepOr(0o644)).expect("write");
        assert_eq!(mode(&kept), 0o644, "a new file gets the fallback");
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write(&kept, b"b", Mode::KeepOr(0o644)).expect("write");
        assert_eq!(mode(&kept), 0o640, "a replaced file keeps its permissions");
    }
}
