//! The age identity handed to Flux (the `sops-age` Secret's payload). Where identities come from is
//! `homelab-sops`' one lookup (`Identities::discover`); the caller picks the repository's keys from it.
//! The text is held in zeroizing memory and never shown: `Debug` prints a placeholder.

use zeroize::Zeroizing;

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

/// Identity text that holds no identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{source_name} holds no age identity (no line starting with AGE-SECRET-KEY-1)")]
    NoIdentity { source_name: String },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let id = AgeIdentity::from_text(Zeroizing::new(KEY.into()), "test").unwrap();
        assert!(!format!("{id:?}").contains("AGE-SECRET"));
        let err = AgeIdentity::from_text(Zeroizing::new("age1public".into()), "x").unwrap_err();
        assert!(!err.to_string().contains("age1public"));
    }
}
