//! Accepted findings: a baseline file of fingerprints (`file:rule:line` or `commit:file:rule:line`, one per
//! line, `#` comments — the `.gitleaksignore` format) or a previous JSON report (its `Fingerprint` fields).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::finding::Finding;

/// A baseline file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("baseline {path} looks like a JSON report but is not one: {message}")]
    Json { path: PathBuf, message: String },
}

/// A set of accepted fingerprints.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

impl Baseline {
    /// Reads a fingerprint list or a JSON report.
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| BaselineError::Json {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses baseline text (see the module docs for the two formats).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fingerprints = HashSet::new();
        if text.trim_start().starts_with('[') {
            let report: Vec<serde_json::Value> =
                serde_json::from_str(text).map_err(|e| e.to_string())?;
            for entry in report {
                if let Some(fp) = entry.get("Fingerprint").and_then(|v| v.as_str()) {
                    fingerprints.insert(normalise(fp));
                }
            }
        } else {
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                fingerprints.insert(normalise(line));
            }
        }
        Ok(Self { fingerprints })
    }

    /// Adds another baseline's fingerprints.
    pub fn extend(&mut self, other: Baseline) {
        self.fingerprints.extend(other.fingerprints);
    }

    /// True when `finding` was accepted, by its own fingerprint or its commit-independent one.
    pub fn accepts(&self, finding: &Finding) -> bool {
        self.fingerprints.contains(&finding.global_fingerprint())
            || self.fingerprints.contains(&finding.fingerprint())
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// The baseline text that accepts exactly `findings`.
    pub fn render(findings: &[Finding]) -> String {
        let mut lines: Vec<String> = findings.iter().map(Finding::fingerprint).collect();
        lines.sort();
        lines.dedup();
        let mut out = String::from(
            "# homelabctl scan baseline: accepted findings (gitleaks fingerprint format)\n",
        );
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// Windows separators in the path part become `/`, as gitleaks normalises .gitleaksignore entries.
fn normalise(fp: &str) -> String {
    let parts: Vec<&str> = fp.split(':').collect();
    match parts.len() {
        3 => format!("{}:{}:{}", parts[0].replace('\\', "/"), parts[1], parts[2]),
        4 => format!(
            "{}:{}:{}:{}",
            parts[0],
            parts[1].replace('\\', "/"),
            parts[2],
            parts[3]
        ),
        _ => fp.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        let b = Baseline::parse("# c\n\nsrc\\a.txt:rule:3\nabc:b.txt:r:4\n").expect("lines");
        assert!(b.fingerprints.contains("src/a.txt:rule:3"));
        assert!(b.fingerprints.contains("abc:b.txt:r:4"));
        let j = Baseline::parse(r#"[{"Fingerprint":"x:y:1","RuleID":"y"}]"#).expect("json");
        assert!(j.fingerprints.contains("x:y:1"));
        assert!(Baseline::parse("[not json").is_err());
    }
}
