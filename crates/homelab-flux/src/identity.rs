//! The operator's age identity, found the way sops finds it: `SOPS_AGE_KEY_FILE`, then `SOPS_AGE_KEY`,
//! then the repository-local `.age-key.txt`. (Moves to `homelab-sops`' discovery once that lands.)
//! The text is held in zeroizing memory and never shown: `Debug` prints a placeholder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The repository-local identity file, as `homelabctl init` writes it.
pub const REPO_KEY_FILE: &str = ".age-key.txt";

/// The text of an age identity file (one or more `AGE-SECRET-KEY-1…` lines, comments allowed).
pub struct AgeIdentity {
    text: Zeroizing<String>,
    /// Where it came from, for messages (a path or an environment variable name).
    pub source: String,
}

impl std::fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgeIdentity(<redacted>, from {})", self.source)
    }
}

impl AgeIdentity {
    /// Wraps identity-file text; refuses text holding no `AGE-SECRET-KEY-` line.
    pub fn from_text(text: Zeroizing<String>, source: &str) -> Result<Self, IdentityError> {
        let has_key = text
            .lines()
            .any(|l| l.trim_start().starts_with("AGE-SECRET-KEY-1"));
        if !has_key {
            return Err(IdentityError::NoIdentity {
                source_name: source.to_string(),
            });
        }
        Ok(Self {
            text,
            source: source.to_string(),
        })
    }

    /// The identity file's bytes, exactly as sops and kustomize-controller read them.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

/// Why no identity was found.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no age identity: SOPS_AGE_KEY_FILE and SOPS_AGE_KEY are unset and {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read the age identity file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{source_name} holds no age identity (no line starting with AGE-SECRET-KEY-1)")]
    NoIdentity { source_name: String },
}

/// Finds the identity for the repository at `repo_root` using the process environment.
pub fn discover(repo_root: &Path) -> Result<AgeIdentity, IdentityError> {
    discover_with(repo_root, |name| std::env::var_os(name))
}

/// [`discover`] with an explicit environment (tests).
pub fn discover_with(
    repo_root: &Path,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<AgeIdentity, IdentityError> {
    if let Some(file) = env("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
        return read_file(Path::new(&file));
    }
    if let Some(text) = env("SOPS_AGE_KEY").filter(|v| !v.is_empty()) {
        let text = Zeroizing::new(text.to_string_lossy().into_owned());
        return AgeIdentity::from_text(text, "SOPS_AGE_KEY");
    }
    let path = repo_root.join(REPO_KEY_FILE);
    if !path.exists() {
        return Err(IdentityError::NotFound { path });
    }
    read_file(&path)
}

fn read_file(path: &Path) -> Result<AgeIdentity, IdentityError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    AgeIdentity::from_text(Zeroizing::new(text), &path.display().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";

    #[test]
    fn key_file_variable_wins_over_the_repository_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(REPO_KEY_FILE), format!("{KEY}\n")).unwrap();
        let other = dir.path().join("other.txt");
        std::fs::write(&other, format!("# other\n{KEY}\n")).unwrap();
        let found = discover_with(dir.path(), |n| {
            (n == "SOPS_AGE_KEY_FILE").then(|| other.clone().into_os_string())
        })
        .unwrap();
        assert!(found.expose().starts_with("# other"));
        let repo = discover_with(dir.path(), |_| None).unwrap();
        assert_eq!(repo.expose(), format!("{KEY}\n"));
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let id = AgeIdentity::from_text(Zeroizing::new(KEY.into()), "test").unwrap();
        assert!(!format!("{id:?}").contains("AGE-SECRET"));
        let err = AgeIdentity::from_text(Zeroizing::new("age1public".into()), "x").unwrap_err();
        assert!(!err.to_string().contains("age1public"));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            discover_with(dir.path(), |_| None),
            Err(IdentityError::NotFound { .. })
        ));
    }
}
