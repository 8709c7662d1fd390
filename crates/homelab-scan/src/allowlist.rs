//! Allowlists: commits, path regexes, content regexes and stopwords that suppress findings (gitleaks semantics).
//!
//! With condition OR, commits and paths are checked once per fragment and regexes/stopwords once per finding;
//! with AND every configured criterion must hold.

use std::collections::HashSet;

use aho_corasick::AhoCorasick;
use regex::bytes::RegexSet;

use crate::goregex;

/// How the criteria of one allowlist combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Or,
    And,
}

/// What an allowlist's `regexes` are tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexTarget {
    Secret,
    Match,
    Line,
}

/// A compiled allowlist.
#[derive(Debug, Clone)]
pub struct Allowlist {
    condition: Condition,
    target: RegexTarget,
    commits: HashSet<String>,
    paths: Option<RegexSet>,
    regexes: Option<RegexSet>,
    stopwords: Option<AhoCorasick>,
}

/// What a per-finding check looks at.
pub(crate) struct Candidate<'a> {
    pub secret: &'a [u8],
    pub matched: &'a [u8],
    pub line: &'a [u8],
    pub path: &'a str,
    pub commit: &'a str,
}

impl Allowlist {
    pub(crate) fn new(
        condition: Condition,
        target: RegexTarget,
        commits: &[String],
        paths: &[String],
        regexes: &[String],
        stopwords: &[String],
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let set = |patterns: &[String]| -> Result<Option<RegexSet>, Box<dyn std::error::Error + Send + Sync>> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let translated = patterns.iter().map(|p| goregex::translate(p)).collect::<Result<Vec<_>, _>>()?;
            Ok(Some(regex::bytes::RegexSetBuilder::new(translated).size_limit(64 << 20).build()?))
        };
        let stopwords = if stopwords.is_empty() {
            None
        } else {
            let lowered: Vec<String> = stopwords.iter().map(|s| s.to_lowercase()).collect();
            Some(AhoCorasick::new(lowered)?)
        };
        Ok(Self {
            condition,
            target,
            commits: commits.iter().map(|c| c.trim().to_lowercase()).collect(),
            paths: set(paths)?,
            regexes: set(regexes)?,
            stopwords,
        })
    }

    fn commit_allowed(&self, commit: &str) -> bool {
        !commit.is_empty()
            && !self.commits.is_empty()
            && self.commits.contains(&commit.to_lowercase())
    }

    fn path_allowed(&self, path: &str) -> bool {
        !path.is_empty()
            && self
                .paths
                .as_ref()
                .is_some_and(|s| s.is_match(path.as_bytes()))
    }

    fn regex_allowed(&self, target: &[u8]) -> bool {
        !target.is_empty() && self.regexes.as_ref().is_some_and(|s| s.is_match(target))
    }

    fn has_stopword(&self, secret: &[u8]) -> bool {
        let Some(ac) = &self.stopwords else {
            return false;
        };
        if secret.is_empty() {
            return false;
        }
        let lowered = String::from_utf8_lossy(secret).to_lowercase();
        ac.is_match(lowered.as_bytes())
    }

    /// Fragment-level check (commit and path); AND lists with content criteria wait for the finding check.
    pub(crate) fn allows_fragment(&self, path: &str, commit: &str) -> bool {
        if path.is_empty() && commit.is_empty() {
            return false;
        }
        let commit_ok = self.commit_allowed(commit);
        let path_ok = self.path_allowed(path);
        match self.condition {
            Condition::Or => commit_ok || path_ok,
            Condition::And => {
                if self.regexes.is_some() || self.stopwords.is_some() {
                    return false;
                }
                (self.commits.is_empty() || commit_ok) && (self.paths.is_none() || path_ok)
            }
        }
    }

    /// Finding-level check (regexes against the configured target, stopwords against the secret).
    pub(crate) fn allows_finding(&self, c: &Candidate<'_>) -> bool {
        let target = match self.target {
            RegexTarget::Secret => c.secret,
            RegexTarget::Match => c.matched,
            RegexTarget::Line => c.line,
        };
        let regex_ok = self.regex_allowed(target);
        let stop_ok = self.has_stopword(c.secret);
        match self.condition {
            Condition::Or => regex_ok || stop_ok,
            Condition::And => {
                (self.commits.is_empty() || self.commit_allowed(c.commit))
                    && (self.paths.is_none() || self.path_allowed(c.path))
                    && (self.regexes.is_none() || regex_ok)
                    && (self.stopwords.is_none() || stop_ok)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(
        condition: Condition,
        commits: &[&str],
        paths: &[&str],
        regexes: &[&str],
        stop: &[&str],
    ) -> Allowlist {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Allowlist::new(
            condition,
            RegexTarget::Secret,
            &v(commits),
            &v(paths),
            &v(regexes),
            &v(stop),
        )
        .expect("allowlist")
    }

    fn cand<'a>(secret: &'a str, path: &'a str, commit: &'a str) -> Candidate<'a> {
        Candidate {
            secret: secret.as_bytes(),
            matched: secret.as_bytes(),
            line: secret.as_bytes(),
            path,
            commit,
        }
    }

    #[test]
    fn or_condition_checks_paths_per_fragment_and_content_per_finding() {
        let a = list(
            Condition::Or,
            &["ABC123"],
            &[r"\.lock$"],
            &["^EXAMPLE"],
            &["dummy"],
        );
        assert!(a.allows_fragment("yarn.lock", ""));
        assert!(a.allows_fragment("x", "abc123"));
        assert!(!a.allows_fragment("x", "def"));
        assert!(a.allows_finding(&cand("EXAMPLEKEY", "x", "")));
        assert!(a.allows_finding(&cand("my-DUMMY-key", "x", "")));
        assert!(!a.allows_finding(&cand("real", "x", "")));
    }

    #[test]
    fn and_condition_needs_every_criterion() {
        let a = list(Condition::And, &[], &[r"^test/"], &["^fake"], &[]);
        assert!(
            !a.allows_fragment("test/x", ""),
            "content criteria are pending"
        );
        assert!(a.allows_finding(&cand("fake1", "test/x", "")));
        assert!(!a.allows_finding(&cand("fake1", "src/x", "")));
        assert!(!a.allows_finding(&cand("real", "test/x", "")));
    }
}
