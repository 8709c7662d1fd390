//! What other tools ask of SOPS without decrypting anything, so `check` and `scan` need no crypto:
//! whether content is SOPS-encrypted (a whole file by its MAC line, or one `ENC[AES256_GCM,…]`
//! value), and which files the `.sops.yaml` creation rules cover. [`crate::SopsConfig`] uses the
//! same rule matching when it picks a rule to encrypt with, so both answer alike. Compiled with or
//! without the `crypto` feature.

use std::path::Path;

use regex::Regex;

use crate::error::SopsError;
use crate::value::{Map, Value};

const ENC_PREFIX: &[u8] = b"ENC[AES256_GCM,";

/// The MAC line every SOPS file carries, in each of its formats (YAML, JSON and binary-as-JSON,
/// dotenv, INI).
const MAC_MARKERS: [&[u8]; 4] = [
    b"mac: ENC[AES256_GCM,",
    b"\"mac\": \"ENC[AES256_GCM,",
    b"sops_mac=ENC[AES256_GCM,",
    b"mac = ENC[AES256_GCM,",
];

/// True when `content` (a whole file, or the added lines of one file's diff) carries SOPS metadata.
pub fn is_sops_content(content: &[u8]) -> bool {
    MAC_MARKERS.iter().any(|m| find(content, m, 0).is_some())
}

/// True when the byte range `start..end` of `raw` lies inside an `ENC[…]` token.
pub fn inside_encrypted_value(raw: &[u8], start: usize, end: usize) -> bool {
    // Look back for the nearest `ENC[` on the same line and check its `]` closes at or after `end`.
    let line_start = raw[..start.min(raw.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let mut from = line_start;
    while let Some(pos) = find(raw, ENC_PREFIX, from) {
        if pos > start {
            return false;
        }
        let close = raw[pos..]
            .iter()
            .position(|&b| b == b']' || b == b'\n')
            .map(|p| pos + p);
        match close {
            Some(c) if raw[c] == b']' && c + 1 >= end => return true,
            Some(c) => from = c + 1,
            None => return false,
        }
    }
    false
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.len() > hay.len() - from {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The `path_regex` of each `.sops.yaml` creation rule, in order (`None`: the rule matches any file).
#[derive(Debug, Clone, Default)]
pub struct PathRules {
    rules: Vec<Option<Regex>>,
}

impl PathRules {
    /// Reads the creation rules of a `.sops.yaml` (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, SopsError> {
        let docs = crate::store::yaml::read_documents(text, &path.display().to_string())?;
        let doc = docs.into_iter().next().unwrap_or_default();
        Self::from_doc(&doc, path)
    }

    pub(crate) fn from_doc(doc: &Map, path: &Path) -> Result<Self, SopsError> {
        let rules = creation_rules(doc, path)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| path_regex(m, path, i))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The rule sops encrypts `rel` (a `/`-separated path relative to the config's directory) with:
    /// the first whose `path_regex` matches, or that has none.
    pub fn first_match(&self, rel: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|re| re.as_ref().is_none_or(|re| re.is_match(rel)))
    }

    /// Whether some rule's `path_regex` names `rel`: the file is meant to be stored encrypted (a
    /// rule without `path_regex` is a default for new files, not a claim about every file).
    pub fn covers(&self, rel: &str) -> bool {
        self.rules.iter().flatten().any(|re| re.is_match(rel))
    }

    /// How many creation rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no creation rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The `creation_rules` mappings of a `.sops.yaml` document (comments skipped).
pub(crate) fn creation_rules<'a>(doc: &'a Map, path: &Path) -> Result<Vec<&'a Map>, SopsError> {
    let Some(v) = doc.get("creation_rules") else {
        return Ok(Vec::new());
    };
    let Value::Seq(items) = v else {
        return Err(config_err(path, "creation_rules is not a list"));
    };
    items
        .iter()
        .filter(|v| !matches!(v, Value::Comment(_)))
        .enumerate()
        .map(|(i, item)| match item {
            Value::Map(m) => Ok(m),
            _ => Err(config_err(
                path,
                &format!("creation rule {i} is not a mapping"),
            )),
        })
        .collect()
}

fn path_regex(m: &Map, path: &Path, i: usize) -> Result<Option<Regex>, SopsError> {
    match m.get("path_regex") {
        Some(Value::Str(r)) => Regex::new(r).map(Some).map_err(|e| {
            config_err(
                path,
                &format!("creation rule {i}: invalid path_regex {r:?}: {e}"),
            )
        }),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(config_err(
            path,
            &format!("creation rule {i}: path_regex is not a string"),
        )),
    }
}

pub(crate) fn config_err(path: &Path, m: &str) -> SopsError {
    SopsError::Config {
        path: path.to_path_buf(),
        message: m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/sops/enc")
            .join(name);
        match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}", p.display()),
        }
    }

    #[test]
    fn real_sops_files_are_recognised() {
        for name in [
            "basic.yaml",
            "basic.json",
            "basic.env",
            "multidoc.yaml",
            "types.yaml",
            "blob.bin",
        ] {
            assert!(is_sops_content(&testdata(name)), "{name}");
        }
        assert!(!is_sops_content(b"apiVersion: v1\nkind: Secret\n"));
        assert!(!is_sops_content(b"data: plain\nsops:\n  version: 3.11.0\n"));
        assert!(!is_sops_content(b"password: hunter2\n"));
    }

    #[test]
    fn encrypted_value_span() {
        let raw = b"a: ENC[AES256_GCM,data:abcd,iv:x,tag:y,type:str]\nb: data:abcd\n";
        assert!(inside_encrypted_value(raw, 18, 27));
        assert!(!inside_encrypted_value(raw, 52, 61));
        assert!(!inside_encrypted_value(raw, 0, 2));
    }

    #[test]
    fn rules_without_path_regex_match_first_but_cover_nothing() {
        let r = PathRules::parse(
            "creation_rules:\n  - path_regex: \\.enc\\.yaml$\n  - age: x\n",
            Path::new(".sops.yaml"),
        )
        .expect("valid");
        assert_eq!(r.len(), 2);
        assert!(r.covers("secrets.enc.yaml"));
        assert!(!r.covers("values.yaml"));
        assert_eq!(r.first_match("secrets.enc.yaml"), Some(0));
        assert_eq!(r.first_match("values.yaml"), Some(1));
    }

    #[test]
    fn a_bad_path_regex_names_the_rule() {
        let err = PathRules::parse(
            "creation_rules:\n  - path_regex: '('\n",
            Path::new(".sops.yaml"),
        )
        .expect_err("invalid regex");
        assert!(
            err.to_string()
                .contains("creation rule 0: invalid path_regex"),
            "{err}"
        );
    }
}
