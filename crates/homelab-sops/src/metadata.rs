//! The `sops` metadata block: reading it from any store's tree and writing it back in sops 3.11's field order
//! (key sources, `lastmodified`, `mac`, the crypt rule, `mac_only_encrypted`, `version`).

use crate::crypt::CryptRule;
use crate::error::SopsError;
use crate::value::{Map, Value};

/// The sops version we write; sops requires a valid semver here.
pub const SOPS_VERSION: &str = "3.11.0";

/// One age recipient and the data key wrapped for it (ASCII-armored age file).
#[derive(Debug, Clone, PartialEq)]
pub struct AgeKey {
    /// `age1…` recipient.
    pub recipient: String,
    /// Armored age ciphertext of the 32-byte data key.
    pub enc: String,
}

/// The parsed `sops` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// age recipients (from the top level or from a single key group).
    pub age: Vec<AgeKey>,
    /// Other key sources (kms, pgp, …) kept verbatim so re-writing a file preserves them.
    pub other_keys: Vec<(String, Value)>,
    /// `lastmodified` as written.
    pub lastmodified: String,
    /// `mac` (an `ENC[…]` value).
    pub mac: String,
    /// The crypt rule (`unencrypted_suffix: _unencrypted` when none is present).
    pub crypt: Option<CryptRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
    /// `version`.
    pub version: String,
}

const KEY_SOURCES_BEFORE_AGE: [&str; 4] = ["kms", "gcp_kms", "azure_kv", "hc_vault"];
const KEY_SOURCES_AFTER_MAC: [&str; 1] = ["pgp"];

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Time(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::value::go_float_plain(*f)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Metadata {
    /// Reads the metadata map.
    pub fn from_map(map: &Map, file: &str) -> Result<Metadata, SopsError> {
        let mut age = Vec::new();
        let mut other_keys = Vec::new();
        let mut crypt = None;
        let md = |m: &str| SopsError::metadata(file, m.to_string());
        if let Some(groups) = map.get("key_groups") {
            let Value::Seq(groups) = groups else {
                return Err(md("key_groups is not a list"));
            };
            let groups: Vec<&Value> = groups
                .iter()
                .filter(|g| !matches!(g, Value::Comment(_)))
                .collect();
            if groups.len() > 1 {
                return Err(SopsError::unsupported(
                    file,
                    "files with several key groups (Shamir secret sharing) are not supported; decrypt them with sops",
                ));
            }
            if let Some(Value::Map(g)) = groups.first()
                && let Some(a) = g.get("age")
            {
                age.extend(read_age(a, file)?);
            }
        }
        for (k, v) in map.items() {
            match k {
                "age" => age.extend(read_age(v, file)?),
                "key_groups" | "lastmodified" | "mac" | "mac_only_encrypted" | "version"
                | "shamir_threshold" => {}
                _ if CryptRule::FIELDS.contains(&k) => {
                    if crypt.is_some() {
                        return Err(md(
                            "more than one of unencrypted_suffix/encrypted_suffix/…_regex is set",
                        ));
                    }
                    let t = text(v).ok_or_else(|| md(&format!("{k} is not a string")))?;
                    crypt = CryptRule::from_field(k, t);
                }
                _ => {
                    let empty =
                        matches!(v, Value::Seq(s) if s.is_empty()) || matches!(v, Value::Null);
                    if !empty {
                        other_keys.push((k.to_string(), v.clone()));
                    }
                }
            }
        }
        let lastmodified = map
            .get("lastmodified")
            .and_then(text)
            .ok_or_else(|| md("lastmodified is missing"))?;
        let mac = map.get("mac").and_then(text).unwrap_or_default();
        let version = map.get("version").and_then(text).unwrap_or_default();
        let mac_only_encrypted = match map.get("mac_only_encrypted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            _ => false,
        };
        Ok(Metadata {
            age,
            other_keys,
            lastmodified,
            mac,
            crypt,
            mac_only_encrypted,
            version,
        })
    }

    /// The crypt rule in effect (sops assumes `unencrypted_suffix: _unencrypted` when none is written).
    pub fn effective_rule(&self) -> CryptRule {
        self.crypt.clone().unwrap_or_default()
    }

    /// Writes the metadata map in sops 3.11 order.
    pub fn to_map(&self) -> Map {
        let mut m = Map::default();
        let other = |name: &str| {
            self.other_keys
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        for name in KEY_SOURCES_BEFORE_AGE {
            if let Some(v) = other(name) {
                m.push(name, v);
            }
        }
        if !self.age.is_empty() {
            let items = self
                .age
                .iter()
                .map(|a| {
                    let mut e = Map::default();
                    e.push("recipient", Value::Str(a.recipient.clone()));
                    e.push("enc", Value::Str(a.enc.clone()));
                    Value::Map(e)
                })
                .collect();
            m.push("age", Value::Seq(items));
        }
        m.push("lastmodified", Value::Str(self.lastmodified.clone()));
        m.push("mac", Value::Str(self.mac.clone()));
        for name in KEY_SOURCES_AFTER_MAC {
            if let Some(v) = other(name) {
                m.push(name, v);
            }
        }
        for (k, v) in &self.other_keys {
            if !KEY_SOURCES_BEFORE_AGE.contains(&k.as_str())
                && !KEY_SOURCES_AFTER_MAC.contains(&k.as_str())
            {
                m.push(k.clone(), v.clone());
            }
        }
        if let Some(rule) = &self.crypt {
            m.push(rule.field(), Value::Str(rule.text().to_string()));
        }
        if self.mac_only_encrypted {
            m.push("mac_only_encrypted", Value::Bool(true));
        }
        m.push("version", Value::Str(self.version.clone()));
        m
    }
}

fn read_age(v: &Value, file: &str) -> Result<Vec<AgeKey>, SopsError> {
    let Value::Seq(items) = v else {
        return Err(SopsError::metadata(file, "age is not a list"));
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(m) = item else { continue };
        let recipient = m.get("recipient").and_then(text).unwrap_or_default();
        let enc = m.get("enc").and_then(text).unwrap_or_default();
        out.push(AgeKey {
            recipient: recipient.trim().to_string(),
            enc,
        });
    }
    Ok(out)
}
