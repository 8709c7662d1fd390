//! A finding: which rule matched where (file, line, commit), with the secret held redacted-by-default.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroize;

/// Text that contains secret material. `Debug` and `Display` never show it; [`Sensitive::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The secret itself. Callers must not print or log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Sensitive {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

/// The commit a history finding was added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full commit id.
    pub sha: String,
    pub author: String,
    pub email: String,
    /// Author date, RFC 3339 in UTC as gitleaks prints it.
    pub date: String,
    pub message: String,
}

/// One detected secret.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule_id: String,
    pub description: String,
    /// Path relative to the scanned root, with `/` separators.
    pub file: String,
    /// 1-based line of the start of the match (0 for path-only rules).
    pub start_line: usize,
    pub end_line: usize,
    pub start_column: usize,
    pub end_column: usize,
    /// The commit for history scans.
    pub commit: Option<Arc<CommitInfo>>,
    pub entropy: f32,
    pub tags: Vec<String>,
    pub(crate) secret: Sensitive,
    pub(crate) matched: Sensitive,
}

/// The text that replaces a secret in every output.
pub const REDACTED: &str = "REDACTED";

impl Finding {
    /// The secret (for callers that must compare it; never print it).
    pub fn secret(&self) -> &Sensitive {
        &self.secret
    }

    /// The matched text with the secret replaced by `REDACTED`.
    pub fn redacted_match(&self) -> String {
        let secret = self.secret.expose();
        let matched = self.matched.expose();
        if secret.is_empty() || !matched.contains(secret) {
            if matched.starts_with("file detected: ") {
                return matched.to_owned();
            }
            return REDACTED.to_owned();
        }
        matched.replace(secret, REDACTED)
    }

    /// The commit id, or "" for tree scans.
    pub fn commit_sha(&self) -> &str {
        self.commit.as_ref().map_or("", |c| c.sha.as_str())
    }

    /// gitleaks' fingerprint: `commit:file:rule:line` for history, `file:rule:line` otherwise.
    pub fn fingerprint(&self) -> String {
        match &self.commit {
            Some(c) => format!(
                "{}:{}:{}:{}",
                c.sha, self.file, self.rule_id, self.start_line
            ),
            None => self.global_fingerprint(),
        }
    }

    /// `file:rule:line`, which also matches the same finding in every commit.
    pub fn global_fingerprint(&self) -> String {
        format!("{}:{}:{}", self.file, self.rule_id, self.start_line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let f = Finding {
            rule_id: "r".into(),
            description: String::new(),
            file: "a".into(),
            start_line: 1,
            end_line: 1,
            start_column: 1,
            end_column: 1,
            commit: None,
            entropy: 0.0,
            tags: vec![],
            secret: Sensitive::new(b"hunter2hunter2"),
            matched: Sensitive::new(b"password = hunter2hunter2"),
        };
        assert!(!format!("{f:?}").contains("hunter2"));
        assert_eq!(f.redacted_match(), "password = REDACTED");
        assert_eq!(f.fingerprint(), "a:r:1");
    }
}
