//! `.sops.yaml`: finding it the way sops does (from a start directory upwards, only that exact name), and
//! choosing the creation rule for a file (path relative to the config's directory, first match wins).

use std::path::{Path, PathBuf};

use crate::crypt::CryptRule;
use crate::detect::{PathRules, config_err, creation_rules};
use crate::error::SopsError;
use crate::store::Style;
use crate::value::{Map, Value};

/// What to encrypt a new file to, and how.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreationRule {
    /// age recipients (`age1…`).
    pub recipients: Vec<String>,
    /// Which values to encrypt (`None`: sops's default, `unencrypted_suffix: _unencrypted`).
    pub crypt: Option<CryptRule>,
    /// Whether the MAC covers only encrypted values.
    pub mac_only_encrypted: bool,
}

impl CreationRule {
    /// A rule that encrypts everything to `recipients`.
    pub fn for_recipients<S: AsRef<str>>(recipients: &[S]) -> CreationRule {
        CreationRule {
            recipients: recipients
                .iter()
                .map(|r| r.as_ref().trim().to_string())
                .collect(),
            ..Default::default()
        }
    }
}

/// A parsed `.sops.yaml`.
#[derive(Debug, Clone)]
pub struct SopsConfig {
    /// Where it was found.
    pub path: PathBuf,
    /// Which rule applies to which file.
    paths: PathRules,
    /// What each creation rule encrypts to, in the order of `paths`.
    rules: Vec<CreationRule>,
    /// `stores:` settings.
    pub style: Style,
}

impl SopsConfig {
    /// Looks for `.sops.yaml` in `start` and up to 100 parent directories (sops starts at the working
    /// directory). A `.sops.yml` is ignored, as sops ignores it. Returns `None` when none is found.
    pub fn find(start: &Path) -> Result<Option<SopsConfig>, SopsError> {
        let start = std::path::absolute(start).map_err(|e| SopsError::io(start, "resolving", e))?;
        let mut dir = Some(start.as_path());
        for _ in 0..100 {
            let Some(d) = dir else { break };
            let candidate = d.join(".sops.yaml");
            if candidate.is_file() {
                return SopsConfig::load(&candidate).map(Some);
            }
            dir = d.parent();
        }
        Ok(None)
    }

    /// Loads one `.sops.yaml`.
    pub fn load(path: &Path) -> Result<SopsConfig, SopsError> {
        let bytes = std::fs::read(path).map_err(|e| SopsError::io(path, "reading", e))?;
        let text = String::from_utf8(bytes).map_err(|_| config_err(path, "not UTF-8"))?;
        let docs = crate::store::yaml::read_documents(&text, &path.display().to_string())?;
        let doc = docs.into_iter().next().unwrap_or_default();
        let paths = PathRules::from_doc(&doc, path)?;
        let rules = creation_rules(&doc, path)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| parse_rule(m, path, i))
            .collect::<Result<_, _>>()?;
        let mut style = Style::default();
        if let Some(Value::Map(stores)) = doc.get("stores") {
            let indent = |name: &str| match stores.get(name) {
                Some(Value::Map(m)) => match m.get("indent") {
                    Some(Value::Int(n)) if *n >= 0 => Some(*n as usize),
                    _ => None,
                },
                _ => None,
            };
            if let Some(n) = indent("yaml") {
                style.yaml_indent = n;
            }
            style.json_indent = indent("json");
            style.binary_indent = indent("json_binary");
        }
        Ok(SopsConfig {
            path: path.to_path_buf(),
            paths,
            rules,
            style,
        })
    }

    /// Whether the config has any creation rule (sops treats a config without them as absent).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Every age recipient any creation rule encrypts to, each once, in rule order.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for r in self.rules.iter().flat_map(|r| &r.recipients) {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        all
    }

    /// The first creation rule whose `path_regex` matches `file` (made relative to the config's directory).
    pub fn rule_for(&self, file: &Path) -> Result<CreationRule, SopsError> {
        let abs = std::path::absolute(file).map_err(|e| SopsError::io(file, "resolving", e))?;
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let rel = abs
            .strip_prefix(dir)
            .map(Path::to_path_buf)
            .unwrap_or(abs.clone());
        let rel = rel.to_string_lossy().replace('\\', "/");
        if let Some(rule) = self.paths.first_match(&rel).and_then(|i| self.rules.get(i)) {
            return Ok(rule.clone());
        }
        Err(SopsError::NoCreationRule {
            file: file.display().to_string(),
            config: self.path.clone(),
        })
    }
}

fn age_list(v: &Value, path: &Path) -> Result<Vec<String>, SopsError> {
    let mut out = Vec::new();
    match v {
        Value::Str(s) => out.extend(
            s.split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
        ),
        Value::Seq(items) => {
            for i in items {
                match i {
                    Value::Str(s) => out.extend(
                        s.split(',')
                            .map(|r| r.trim().to_string())
                            .filter(|r| !r.is_empty()),
                    ),
                    Value::Comment(_) => {}
                    _ => return Err(config_err(path, "age recipients must be strings")),
                }
            }
        }
        Value::Null => {}
        _ => {
            return Err(config_err(
                path,
                "age must be a string or a list of strings",
            ));
        }
    }
    Ok(out)
}

/// The encryption settings of one creation rule (its `path_regex` is [`PathRules`]' business).
fn parse_rule(m: &Map, path: &Path, i: usize) -> Result<CreationRule, SopsError> {
    let mut rule = CreationRule::default();
    if let Some(v) = m.get("age") {
        rule.recipients = age_list(v, path)?;
    }
    if let Some(Value::Seq(groups)) = m.get("key_groups") {
        let groups: Vec<&Value> = groups
            .iter()
            .filter(|g| !matches!(g, Value::Comment(_)))
            .collect();
        if groups.len() > 1 {
            return Err(config_err(
                path,
                &format!("creation rule {i}: several key_groups (Shamir) are not supported"),
            ));
        }
        if let Some(Value::Map(g)) = groups.first()
            && let Some(v) = g.get("age")
        {
            for r in age_list(v, path)? {
                if !rule.recipients.contains(&r) {
                    rule.recipients.push(r);
                }
            }
        }
    }
    for field in CryptRule::FIELDS {
        if let Some(v) = m.get(field) {
            let Value::Str(s) = v else { continue };
            if rule.crypt.is_some() {
                return Err(config_err(
                    path,
                    &format!("creation rule {i}: more than one encryption rule (…_suffix/…_regex)"),
                ));
            }
            rule.crypt = CryptRule::from_field(field, s.clone());
        }
    }
    rule.mac_only_encrypted = matches!(m.get("mac_only_encrypted"), Some(Value::Bool(true)));
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_relative_to_config_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(".sops.yaml"),
            "creation_rules:\n  - path_regex: ^sub/.*\\.yaml$\n    encrypted_regex: ^data$\n    age: a1, a2\n  - age: [b1]\n",
        )
        .expect("write");
        let nested = dir.path().join("sub/deeper");
        std::fs::create_dir_all(&nested).expect("mkdir");
        let cfg = SopsConfig::find(&nested).expect("find").expect("found");
        let r = cfg.rule_for(&dir.path().join("sub/x.yaml")).expect("rule");
        assert_eq!(r.recipients, vec!["a1", "a2"]);
        assert_eq!(r.crypt, Some(CryptRule::EncryptedRegex("^data$".into())));
        let r = cfg.rule_for(&dir.path().join("other.json")).expect("rule");
        assert_eq!(r.recipients, vec!["b1"]);
    }
}
