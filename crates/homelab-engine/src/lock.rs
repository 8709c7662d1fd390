//! The apply lock: one converging run per repository at a time, with the holder named in the refusal.
//!
//! The lock is an OS file lock on `.homelab/apply.lock`, so it disappears with the process that held it;
//! the file's contents only describe the holder. Contents left behind by a killed run are a stale lock:
//! detected (the OS lock is free) and taken over with a notice.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds (or held) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, started at unix time {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another homelabctl run holds the lock {}: {holder}", path.display())]
    Held { path: PathBuf, holder: String },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    path: PathBuf,
    /// The previous holder whose run ended without releasing (e.g. killed), if any.
    pub stale: Option<Holder>,
}

impl ApplyLock {
    /// Takes the lock in `state_dir` (created if missing) for `command`, or says who holds it.
    pub fn acquire(state_dir: &Path, command: &str) -> Result<Self, LockError> {
        let path = state_dir.join("apply.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str::<Holder>(&text)
                    .map(|h| h.to_string())
                    .unwrap_or_else(|_| "an unknown process".into());
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous).map_err(io)?;
        let stale = serde_json::from_str::<Holder>(&previous).ok();
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(serde_json::to_string(&me).unwrap_or_default().as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self { file, path, stale })
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // Clear the holder first so a later run sees a clean release rather than a stale lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        let _ = &self.path;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ApplyLock::acquire(dir.path(), "apply").expect("first");
        assert!(first.stale.is_none());
        let err = ApplyLock::acquire(dir.path(), "apply").expect_err("held");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("`apply`"), "{msg}");
        drop(first);
        let again = ApplyLock::acquire(dir.path(), "apply").expect("released");
        assert!(again.stale.is_none(), "a clean release is not stale");
    }

    #[test]
    fn contents_left_by_a_dead_holder_are_reported_as_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = Holder {
            pid: 999_999,
            host: "elsewhere".into(),
            command: "apply".into(),
            since: 1,
        };
        std::fs::write(
            dir.path().join("apply.lock"),
            serde_json::to_string(&dead).expect("json"),
        )
        .expect("write");
        let lock = ApplyLock::acquire(dir.path(), "apply").expect("free");
        assert_eq!(lock.stale, Some(dead));
    }
}
