//! Creating the operator's age identity file (the place is `homelab_sops::personal_key_file`, the one
//! identity lookup): created once with mode 0600 and never overwritten.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// The result of [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A new identity was written to the path.
    Created { path: PathBuf, public_key: String },
    /// An identity was already there; nothing was written.
    Existing { path: PathBuf, public_key: String },
}

impl Identity {
    pub fn public_key(&self) -> &str {
        match self {
            Identity::Created { public_key, .. } | Identity::Existing { public_key, .. } => {
                public_key
            }
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Identity::Created { path, .. } | Identity::Existing { path, .. } => path,
        }
    }
}

/// An identity file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path} exists but holds no age identity (AGE-SECRET-KEY-1…); it was left untouched")]
    NoIdentity { path: PathBuf },
    #[error("cannot use identity file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Makes sure an age identity exists at `path`, creating one if the file is absent.
pub fn ensure(path: &Path) -> Result<Identity, IdentityError> {
    let path = path.to_owned();
    let io = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let public_key = first_public_key(&text)
                .ok_or_else(|| IdentityError::NoIdentity { path: path.clone() })?;
            return Ok(Identity::Existing { path, public_key });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(parent) = path.parent() {
        create_private_dir(parent).map_err(io)?;
    }
    let identity = age::x25519::Identity::generate();
    let public_key = identity.to_public().to_string();
    let secret = identity.to_string();
    let content = Zeroizing::new(format!(
        "# created by homelabctl setup\n# public key: {public_key}\n{}\n",
        secret.expose_secret()
    ));
    write_new_private(&path, content.as_bytes()).map_err(io)?;
    Ok(Identity::Created { path, public_key })
}

/// The public key of the first identity in an identity file's text.
pub fn first_public_key(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .find_map(|l| age::x25519::Identity::from_str(l).ok())
        .map(|id| id.to_public().to_string())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Writes a file that must not exist yet, readable by its owner only, whole or not at all (a crash
/// half-way must not leave a truncated identity that the next run would take for the real one).
fn write_new_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    match homelab_fs::write_new(path, content, homelab_fs::Mode::Private) {
        Ok(true) => Ok(()),
        Ok(false) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the file appeared meanwhile; run again to use it",
        )),
        Err(e) => Err(e.source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_owner_only_permissions_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cfg/sops/age/keys.txt");
        let first = ensure(&path).expect("create");
        assert!(matches!(first, Identity::Created { .. }));
        assert!(first.public_key().starts_with("age1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&path).expect("read");
        let second = ensure(&path).expect("reuse");
        assert_eq!(
            second,
            Identity::Existing {
                path: path.clone(),
                public_key: first.public_key().to_owned()
            }
        );
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn a_file_without_identity_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, "# nothing\n").expect("write");
        assert!(matches!(
            ensure(&path),
            Err(IdentityError::NoIdentity { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "# nothing\n");
    }
}
