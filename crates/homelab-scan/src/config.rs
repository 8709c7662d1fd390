//! Reading gitleaks.toml configurations (rules, allowlists, `[extend]`) into a compiled [`Config`].
//!
//! Key names are matched the way gitleaks (through viper) reads them, case-insensitively for the common
//! spellings. `[extend] useDefault = true` means homelabctl's own default rules, not gitleaks'.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::bytes::Regex;
use serde::Deserialize;

use crate::allowlist::{Allowlist, Condition, RegexTarget};
use crate::goregex::{self, GoRegexError, LazyRegex};

/// homelabctl's default rule set, in gitleaks.toml form.
const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// gitleaks allows two levels of `[extend]`.
const MAX_EXTEND_DEPTH: usize = 2;

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read scan configuration {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scan configuration {origin} is not valid TOML: {message}")]
    Toml { origin: String, message: String },
    #[error("scan configuration {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("scan configuration {origin}: {source}")]
    Regex {
        origin: String,
        #[source]
        source: GoRegexError,
    },
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable identifier (`age-secret-key`, `generic-api-key`, …).
    pub id: String,
    /// What a finding of this rule means.
    pub description: String,
    pub(crate) regex: Option<LazyRegex>,
    pub(crate) path: Option<Regex>,
    /// Capture group holding the secret (0: the first non-empty group, or the whole match).
    pub secret_group: usize,
    /// Minimum Shannon entropy of the secret (0: no check); a finding needs strictly more.
    pub entropy: f64,
    /// Lower-cased keywords; the rule only runs on fragments that contain one of them.
    pub keywords: Vec<String>,
    /// Free-form tags copied to findings.
    pub tags: Vec<String>,
    pub(crate) allowlists: Vec<Allowlist>,
    pub(crate) skip_report: bool,
}

/// A compiled configuration: ordered rules and global allowlists.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `title` of the configuration.
    pub title: String,
    pub(crate) rules: Vec<Rule>,
    pub(crate) allowlists: Vec<Allowlist>,
    /// The file the configuration came from, which scans skip.
    pub(crate) path: Option<PathBuf>,
    /// homelabctl's built-in rules, which already recognise the encoded forms that matter here (base64
    /// PEM keys in Talos bundles and Secrets): a decoded finding on a line they reported adds nothing.
    pub(crate) built_in: bool,
}

impl Config {
    /// homelabctl's default rules: the domain's secrets (age, Proxmox, Talos, kubeconfig, PEM keys) and the
    /// common cloud and forge tokens.
    pub fn homelab_default() -> Self {
        // The embedded rule set is tested below; failing to parse it is a build defect.
        #[allow(clippy::expect_used)]
        let mut config = Self::from_toml_str(DEFAULT_RULES, "<built-in rules>", None)
            .expect("built-in rules are valid");
        config.built_in = true;
        config
    }

    /// Reads a gitleaks.toml file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml_str(&text, &path.display().to_string(), path.parent())?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Parses gitleaks.toml text. `base_dir` resolves a relative `[extend] path`.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        base_dir: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        load(text, origin, base_dir, 0)
    }

    /// The rules, in configuration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule whose pattern a scan needed and could not compile (its automaton exceeds the size
    /// limit): that scan missed what the rule would have found, so it must fail.
    pub fn unusable_rule(&self) -> Option<ConfigError> {
        let failed = self.rules.iter().find_map(|r| r.regex.as_ref()?.failed())?;
        Some(ConfigError::Regex {
            origin: self.path.as_ref().map_or_else(
                || "<built-in rules>".to_owned(),
                |p| p.display().to_string(),
            ),
            source: failed.clone(),
        })
    }

    /// Finds a rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    title: String,
    #[serde(default)]
    extend: Option<RawExtend>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Debug, Default, Deserialize)]
struct RawExtend {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(
        default,
        rename = "useDefault",
        alias = "usedefault",
        alias = "UseDefault"
    )]
    use_default: bool,
    #[serde(
        default,
        rename = "disabledRules",
        alias = "disabledrules",
        alias = "DisabledRules"
    )]
    disabled_rules: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRule {
    #[serde(default)]
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(
        default,
        rename = "secretGroup",
        alias = "secretgroup",
        alias = "SecretGroup"
    )]
    secret_group: Option<i64>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
    #[serde(default)]
    required: Vec<toml::Value>,
    #[serde(default, rename = "skipReport", alias = "skipreport")]
    skip_report: bool,
}

#[derive(Debug, Default, Deserialize)]
struct RawAllowlist {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(
        default,
        rename = "regexTarget",
        alias = "regextarget",
        alias = "RegexTarget"
    )]
    regex_target: String,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default, alias = "stopWords", alias = "StopWords")]
    stopwords: Vec<String>,
    #[serde(
        default,
        rename = "targetRules",
        alias = "targetrules",
        alias = "TargetRules"
    )]
    target_rules: Vec<String>,
}

fn load(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    depth: usize,
) -> Result<Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let regex_error = |source| ConfigError::Regex {
        origin: origin.to_owned(),
        source,
    };
    let compile = |pattern: &str| goregex::compile(pattern).map_err(regex_error);
    let check = |pattern: &str| goregex::check(pattern).map(|_| ()).map_err(regex_error);

    let mut rules = Vec::with_capacity(raw.rules.len());
    for r in raw.rules {
        if r.id.is_empty() {
            return Err(invalid("a [[rules]] entry has no `id`".into()));
        }
        if !r.required.is_empty() {
            return Err(invalid(format!(
                "rule {}: [[rules.required]] (composite rules) is not supported by homelabctl; remove it or split the rule",
                r.id
            )));
        }
        if r.allowlist.is_some() && !r.allowlists.is_empty() {
            return Err(invalid(format!(
                "rule {}: [rules.allowlist] cannot be used alongside [[rules.allowlists]]",
                r.id
            )));
        }
        let secret_group = usize::try_from(r.secret_group.unwrap_or(0))
            .map_err(|_| invalid(format!("rule {}: secretGroup must not be negative", r.id)))?;
        let mut allowlists = Vec::new();
        for a in r.allowlist.into_iter().chain(r.allowlists) {
            allowlists.push(allowlist(a, &check, &|m| {
                invalid(format!("rule {}: {m}", r.id))
            })?);
        }
        rules.push(Rule {
            regex: r
                .regex
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| LazyRegex::new(p).map_err(regex_error))
                .transpose()?,
            path: r
                .path
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(compile)
                .transpose()?,
            id: r.id,
            description: r.description,
            secret_group,
            entropy: r.entropy.unwrap_or(0.0),
            keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
            tags: r.tags,
            allowlists,
            skip_report: r.skip_report,
        });
    }

    let mut global = Vec::new();
    let mut targeted: Vec<(String, Allowlist)> = Vec::new();
    if raw.allowlist.is_some() && !raw.allowlists.is_empty() {
        return Err(invalid(
            "[allowlist] cannot be used alongside [[allowlists]]".into(),
        ));
    }
    for a in raw.allowlist.into_iter().chain(raw.allowlists) {
        let targets = a.target_rules.clone();
        let compiled = allowlist(a, &check, &|m| invalid(format!("[[allowlists]]: {m}")))?;
        if targets.is_empty() {
            global.push(compiled);
        } else {
            targeted.extend(targets.into_iter().map(|t| (t, compiled.clone())));
        }
    }

    let mut config = Config {
        title: raw.title,
        rules,
        allowlists: global,
        path: None,
        built_in: false,
    };

    if let Some(extend) = raw.extend {
        if extend.url.as_deref().is_some_and(|u| !u.is_empty()) {
            return Err(invalid(
                "[extend] url is not supported; download the file and use `path`".into(),
            ));
        }
        let path = extend.path.filter(|p| !p.is_empty());
        if path.is_some() && extend.use_default {
            return Err(invalid(
                "[extend] cannot set both `path` and `useDefault`".into(),
            ));
        }
        if depth < MAX_EXTEND_DEPTH && (extend.use_default || path.is_some()) {
            let base = match &path {
                Some(p) => {
                    let full = base_dir.map_or_else(|| PathBuf::from(p), |d| d.join(p));
                    let text =
                        std::fs::read_to_string(&full).map_err(|source| ConfigError::Read {
                            path: full.clone(),
                            source,
                        })?;
                    load(&text, &full.display().to_string(), full.parent(), depth + 1)?
                }
                None => load(DEFAULT_RULES, "<built-in rules>", None, depth + 1)?,
            };
            merge(&mut config, base, &extend.disabled_rules);
        }
    }

    if depth == 0 {
        for (target, a) in targeted {
            let rule = config
                .rules
                .iter_mut()
                .find(|r| r.id == target)
                .ok_or_else(|| {
                    invalid(format!(
                        "[[allowlists]] targets rule `{target}`, which does not exist"
                    ))
                })?;
            rule.allowlists.push(a);
        }
        for rule in &config.rules {
            validate(rule).map_err(invalid)?;
        }
    }
    Ok(config)
}

/// gitleaks' extend semantics: base rules are added; a rule with the same id overrides description,
/// entropy, secretGroup, regex and path when set, and appends tags, keywords and allowlists.
fn merge(config: &mut Config, base: Config, disabled: &[String]) {
    let disabled: BTreeSet<&str> = disabled.iter().map(String::as_str).collect();
    for mut b in base.rules {
        if disabled.contains(b.id.as_str()) {
            continue;
        }
        match config.rules.iter_mut().find(|r| r.id == b.id) {
            None => config.rules.push(b),
            Some(current) => {
                if !current.description.is_empty() {
                    b.description = std::mem::take(&mut current.description);
                }
                if current.entropy != 0.0 {
                    b.entropy = current.entropy;
                }
                if current.secret_group != 0 {
                    b.secret_group = current.secret_group;
                }
                if current.regex.is_some() {
                    b.regex = current.regex.take();
                }
                if current.path.is_some() {
                    b.path = current.path.take();
                }
                b.tags.append(&mut current.tags);
                b.keywords.append(&mut current.keywords);
                b.allowlists.append(&mut current.allowlists);
                b.skip_report |= current.skip_report;
                *current = b;
            }
        }
    }
    config.allowlists.extend(base.allowlists);
}

fn validate(rule: &Rule) -> Result<(), String> {
    match &rule.regex {
        None if rule.path.is_none() => {
            Err(format!("rule {}: needs a `regex` or a `path`", rule.id))
        }
        Some(re) if rule.secret_group > re.groups() => Err(format!(
            "rule {}: secretGroup {} but the regex has only {} capture group(s)",
            rule.id,
            rule.secret_group,
            re.groups()
        )),
        _ => Ok(()),
    }
}

fn allowlist(
    a: RawAllowlist,
    check: &dyn Fn(&str) -> Result<(), ConfigError>,
    invalid: &dyn Fn(String) -> ConfigError,
) -> Result<Allowlist, ConfigError> {
    let condition = match a.condition.to_uppercase().as_str() {
        "" | "OR" | "||" => Condition::Or,
        "AND" | "&&" => Condition::And,
        other => {
            return Err(invalid(format!(
                "unknown allowlist condition `{other}` (expected AND or OR)"
            )));
        }
    };
    let target = match a.regex_target.as_str() {
        "" | "secret" => RegexTarget::Secret,
        "match" => RegexTarget::Match,
        "line" => RegexTarget::Line,
        other => {
            return Err(invalid(format!(
                "unknown allowlist regexTarget `{other}` (expected secret, match or line)"
            )));
        }
    };
    if a.commits.is_empty() && a.paths.is_empty() && a.regexes.is_empty() && a.stopwords.is_empty()
    {
        return Err(invalid(
            "an allowlist must contain at least one of commits, paths, regexes or stopwords".into(),
        ));
    }
    // Each pattern is checked alone first so an error names it, then they are combined into a set.
    for p in a.paths.iter().chain(&a.regexes) {
        check(p)?;
    }
    Allowlist::new(
        condition,
        target,
        &a.commits,
        &a.paths,
        &a.regexes,
        &a.stopwords,
    )
    .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_rules_parse() {
        let c = Config::homelab_default();
        assert!(c.rule("age-secret-key").is_some());
        assert!(c.rules().len() >= 15);
    }

    #[test]
    fn private_key_rule_needs_a_pem_body_not_just_a_header() {
        let d = crate::detect::Detector::new(
            Config::homelab_default(),
            crate::detect::Options::default(),
        );
        let scan = |text: &str| {
            let frag = crate::detect::Fragment {
                raw: text.as_bytes(),
                path: "x",
                start_line: 1,
                commit: None,
            };
            d.detect(&frag)
                .into_iter()
                .map(|f| f.rule_id)
                .collect::<Vec<_>>()
        };
        let begin = ["-----BEGIN", "ED25519", "PRIVATE", "KEY-----"].join(" ");
        let end = ["-----END", "ED25519", "PRIVATE", "KEY-----"].join(" ");
        let body = "MC4CAQAwBQYDK2VwBCIEIFq0vX9l2mB5cKpQ7wRj3nT8yZ4hU6sD1fG0aE9bL2kN";
        assert_eq!(
            scan(&format!("{begin}\n{body}\n{end}\n")),
            vec!["private-key"]
        );
        assert_eq!(
            scan(&format!("key: |\n    {begin}\n    {body}\n    {end}\n")),
            vec!["private-key"]
        );
        assert_eq!(
            scan(&format!("{{\"k\": \"{begin}\\n{body}\\n{end}\\n\"}}")),
            vec!["private-key"]
        );
        let code = format!(
            "assert!(k.starts_with(\"{begin}\"));\n    // {}\n assert!(k.ends_with(\"{end}\"));\n",
            "x".repeat(80)
        );
        assert!(scan(&code).is_empty(), "{:?}", scan(&code));
    }

    #[test]
    fn gitleaks_default_config_loads_all_rules() {
        let path = crate::testdata::path("gitleaks/gitleaks-default.toml");
        let c = Config::from_file(&path).expect("gitleaks default config");
        assert_eq!(c.rules().len(), 222);
        assert_eq!(c.allowlists.len(), 1);
        assert_eq!(c.rule("github-pat").map(|r| r.allowlists.len()), Some(1));
    }

    #[test]
    fn extend_use_default_means_our_rules_and_overrides_merge() {
        let text = r#"
            title = "mine"
            [extend]
            useDefault = true
            disabledRules = ["github-pat"]
            [[rules]]
            id = "age-secret-key"
            keywords = ["extra"]
            [[rules]]
            id = "my-token"
            regex = '''mytok_[a-z]{8}'''
            [[allowlists]]
            targetRules = ["my-token"]
            stopwords = ["example"]
        "#;
        let c = Config::from_toml_str(text, "test", None).expect("config");
        let age = c.rule("age-secret-key").expect("merged");
        assert!(age.regex.is_some(), "regex comes from the base rule");
        assert!(age.keywords.contains(&"extra".to_string()));
        assert!(age.keywords.contains(&"age-secret-key-1".to_string()));
        assert!(c.rule("github-pat").is_none());
        assert_eq!(c.rule("my-token").map(|r| r.allowlists.len()), Some(1));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Config::from_toml_str("[[rules]]\nid = 'x'\nregex = '''(a'''", "cfg.toml", None)
            .expect_err("must fail");
        assert!(e.to_string().contains("cfg.toml"), "{e}");
        let e = Config::from_toml_str("[[rules]]\nid = 'x'\n", "cfg.toml", None)
            .expect_err("must fail");
        assert!(e.to_string().contains("needs a `regex`"), "{e}");
        let e = Config::from_toml_str("[[rules]]\nid = 'x'\nregex='a'\nsecretGroup = 2", "c", None)
            .expect_err("must fail");
        assert!(e.to_string().contains("secretGroup"), "{e}");
        let e = Config::from_toml_str("[extend]\nuseDefault = true\npath = 'x.toml'", "c", None)
            .expect_err("must fail");
        assert!(e.to_string().contains("both"), "{e}");
    }
}
