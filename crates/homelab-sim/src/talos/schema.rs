//! Validates an applied multi-document machine config the way Talos's strict decoder and
//! validator do: each document against its kind in the official JSON Schema, unknown keys
//! reported as "unknown keys found during decoding".

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use homelab_schemas::talos::KindValidators;
use serde_json::{Map, Value};

/// The Talos version whose config schema the simulator enforces by default: the newest embedded patch of
/// this minor version applies (see [`homelab_schemas::talos::pick`]).
pub const DEFAULT_TALOS_VERSION: &str = "v1.12.4";

/// The official Talos config schema, compiled per document kind.
pub struct ConfigSchema {
    validators: KindValidators,
    /// Deprecated v1alpha1 subtrees this version's schema no longer lists but Talos still decodes.
    hidden: Vec<&'static [&'static str]>,
    /// which schema this is (`built-in v1.13.9`, or a file path)
    source_name: String,
}

impl std::fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSchema")
            .field("source", &self.source_name)
            .field("kinds", &self.validators.kinds())
            .finish()
    }
}

/// Why the schema could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("Talos config schema {source_name}: {reason}")]
pub struct SchemaError {
    /// which schema (`built-in v1.12.11`, or a file path)
    pub source_name: String,
    /// what failed
    pub reason: String,
}

/// The documents of a config that passed validation.
#[derive(Debug, Clone)]
pub struct Documents {
    /// the legacy `version: v1alpha1` document
    pub v1alpha1: Value,
    /// the other documents, each with `apiVersion` and `kind`
    pub others: Vec<Value>,
}

/// Fields Talos still accepts but that the schema no longer lists (deprecated, hidden).
const DEPRECATED_V1ALPHA1: &[&[&str]] = &[
    &["persist"],
    &["machine", "network", "hostname"],
    &["machine", "network", "interfaces"],
    &["machine", "network", "nameservers"],
    &["machine", "network", "extraHostEntries"],
    &["machine", "time"],
    &["machine", "registries"],
    &["machine", "systemDiskEncryption"],
    &["machine", "disks"],
    &["machine", "features", "rbac"],
    &["machine", "features", "stableHostname"],
    &["machine", "features", "apidCheckExtKeyUsage"],
    &["cluster", "apiServer", "disablePodSecurityPolicy"],
];

/// Whole v1alpha1 subtrees Talos 1.13 hid from its schema (`docgen:nodoc`, deprecated for the
/// multi-document configs) but still decodes: skipped only where the schema does not list them, so a
/// 1.12 schema still checks their content.
const HIDDEN_SINCE_1_13: &[&[&str]] = &[&["machine", "network"], &["machine", "env"]];

impl ConfigSchema {
    /// The built-in (embedded) schema for Talos `talos_version`: the newest embedded patch of its minor.
    pub fn builtin(talos_version: &str) -> Result<Arc<Self>, SchemaError> {
        let (version, bytes) =
            homelab_schemas::talos::config_schema(talos_version).map_err(|e| SchemaError {
                source_name: format!("for Talos {talos_version}"),
                reason: e.to_string(),
            })?;
        Self::from_json(&bytes, &format!("built-in {version}")).map(Arc::new)
    }

    /// The built-in schema a node running Talos `running` validates with: that exact version's when it is
    /// embedded, else the newest embedded patch of its minor; `None` when no schema of that minor is
    /// embedded. Compiled once per process and version (nodes of every lab share them).
    pub fn for_running(running: &str) -> Option<Arc<Self>> {
        use std::sync::{Mutex, OnceLock};
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<ConfigSchema>>>> = OnceLock::new();
        let exact = homelab_schemas::talos::versions()
            .into_iter()
            .find(|v| v.to_string() == format!("v{}", running.trim_start_matches('v')));
        let version = match exact {
            Some(v) => v,
            None => homelab_schemas::talos::pick(running).ok()?,
        };
        let name = version.to_string();
        let cache = CACHE.get_or_init(Mutex::default);
        if let Some(found) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&name)
        {
            return Some(found.clone());
        }
        // Compiled outside the lock: a few hundred milliseconds that other nodes need not wait for.
        let bytes = homelab_schemas::get(&format!("talos/config.schema.{name}.json"))
            .ok()
            .flatten()?;
        let compiled = Arc::new(Self::from_json(&bytes, &format!("built-in {name}")).ok()?);
        Some(
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(name)
                .or_insert(compiled)
                .clone(),
        )
    }

    /// Loads and compiles a schema file.
    pub fn load(path: &Path) -> Result<Self, SchemaError> {
        let bytes = std::fs::read(path).map_err(|e| SchemaError {
            source_name: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    /// Compiles the schema JSON `bytes`; `source_name` names it in errors.
    pub fn from_json(bytes: &[u8], source_name: &str) -> Result<Self, SchemaError> {
        let fail = |reason: String| SchemaError {
            source_name: source_name.to_owned(),
            reason,
        };
        let schema: Value = serde_json::from_slice(bytes).map_err(|e| fail(e.to_string()))?;
        let validators = KindValidators::compile(&schema).map_err(fail)?;
        let machine_properties = schema
            .pointer("/$defs/v1alpha1.MachineConfig/properties")
            .and_then(Value::as_object);
        let hidden = HIDDEN_SINCE_1_13
            .iter()
            .copied()
            .filter(|path| {
                path.last()
                    .is_some_and(|key| machine_properties.is_none_or(|p| !p.contains_key(*key)))
            })
            .collect();
        Ok(Self {
            validators,
            hidden,
            source_name: source_name.to_owned(),
        })
    }

    /// Which schema this is: `built-in v1.13.9`, or the file it was loaded from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Decodes and validates a multi-document config. The error text follows Talos.
    pub fn validate(&self, data: &[u8]) -> Result<Documents, String> {
        let text = std::str::from_utf8(data)
            .map_err(|_| "failed to parse config: not UTF-8 text".to_owned())?;
        // Talos decodes with go-yaml v3, whose alias limit refuses a "billion laughs".
        homelab_goyaml::alias::check(text).map_err(|e| format!("failed to parse config: {e}"))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| format!("failed to parse config: {e}"))?;
        let mut v1alpha1 = None;
        let mut others = Vec::new();
        for (index, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let Some(obj) = doc.as_object() else {
                return Err(format!(
                    "failed to parse config: document {} is not a mapping",
                    index + 1
                ));
            };
            if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
                let validator = self.validators.kind(kind).ok_or_else(|| {
                    format!("failed to parse config: unknown document kind {kind:?}")
                })?;
                check(validator, &doc)?;
                others.push(doc);
            } else if obj.get("version").and_then(Value::as_str) == Some("v1alpha1") {
                if v1alpha1.is_some() {
                    return Err("failed to parse config: duplicate v1alpha1 document".into());
                }
                check_persist(obj)?;
                let mut stripped = doc.clone();
                for path in DEPRECATED_V1ALPHA1.iter().chain(&self.hidden) {
                    remove_path(&mut stripped, path);
                }
                check(self.validators.v1alpha1(), &stripped)?;
                v1alpha1 = Some(doc);
            } else {
                return Err(format!(
                    "failed to parse config: document {} has neither `kind` nor `version: v1alpha1`",
                    index + 1
                ));
            }
        }
        let v1alpha1 = v1alpha1
            .ok_or_else(|| "the configuration doesn't contain v1alpha1 config".to_owned())?;
        Ok(Documents { v1alpha1, others })
    }
}

fn check_persist(obj: &Map<String, Value>) -> Result<(), String> {
    match obj.get("persist") {
        Some(Value::Bool(false)) => {
            Err("1 error occurred:\n\t* .persist should be enabled\n".into())
        }
        _ => Ok(()),
    }
}

fn remove_path(value: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = value;
    for p in parents {
        match cur.get_mut(*p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.remove(*last);
    }
}

/// Runs one validator; unknown keys are reported first, Talos style.
fn check(validator: &jsonschema::Validator, doc: &Value) -> Result<(), String> {
    let mut unknown = Vec::new();
    let mut other = Vec::new();
    for error in validator.iter_errors(doc) {
        let pointer = error.instance_path().as_str().to_owned();
        match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    unknown.push((pointer.clone(), key.clone()));
                }
            }
            _ => other.push(format!(
                "{}: {error}",
                if pointer.is_empty() { "/" } else { &pointer }
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "failed to parse config: unknown keys found during decoding:\n{}",
            render_unknown(doc, &unknown)
        ));
    }
    if !other.is_empty() {
        other.sort();
        other.dedup();
        let list: String = other.iter().map(|e| format!("\t* {e}\n")).collect();
        return Err(format!("{} errors occurred:\n{list}", other.len()));
    }
    Ok(())
}

/// Renders unknown keys as the nested YAML Talos prints (4-space indentation).
fn render_unknown(doc: &Value, unknown: &[(String, String)]) -> String {
    let mut out = String::new();
    for (pointer, key) in unknown {
        let segments: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        for (depth, seg) in segments.iter().enumerate() {
            out.push_str(&"    ".repeat(depth));
            out.push_str(seg);
            out.push_str(":\n");
        }
        let parent = doc.pointer(pointer).and_then(|v| v.get(key));
        let value = match parent {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v.to_string(),
            Some(v) => serde_json::to_string(v).unwrap_or_default(),
            None => String::new(),
        };
        out.push_str(&"    ".repeat(segments.len()));
        out.push_str(&format!("{key}: {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<ConfigSchema> {
        static SCHEMA: std::sync::OnceLock<Arc<ConfigSchema>> = std::sync::OnceLock::new();
        SCHEMA
            .get_or_init(|| match ConfigSchema::builtin(DEFAULT_TALOS_VERSION) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            })
            .clone()
    }

    const MINIMAL: &str = "version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  controlPlane:\n    endpoint: https://127.0.20.100:6443\n";

    #[test]
    fn unknown_key_is_reported_like_talos() {
        let s = schema();
        let bad = MINIMAL.replace(
            "  type: controlplane\n",
            "  type: controlplane\n  install:\n    bogus: true\n",
        );
        let err = s.validate(bad.as_bytes()).err().unwrap_or_default();
        assert_eq!(
            err,
            "failed to parse config: unknown keys found during decoding:\nmachine:\n    install:\n        bogus: true\n"
        );
    }

    #[test]
    fn multi_document_config_with_link_config_is_accepted() {
        let s = schema();
        let cfg = format!(
            "{MINIMAL}---\napiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses:\n  - address: 127.0.20.100/24\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp1\n"
        );
        let docs = s.validate(cfg.as_bytes());
        assert_eq!(docs.map(|d| d.others.len()).ok(), Some(2));
    }

    #[test]
    fn config_without_v1alpha1_and_unknown_kind_are_rejected() {
        let s = schema();
        let only_link = "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\n";
        assert_eq!(
            s.validate(only_link.as_bytes()).err().as_deref(),
            Some("the configuration doesn't contain v1alpha1 config")
        );
        let unknown = format!("{MINIMAL}---\napiVersion: v1alpha1\nkind: Frobnicate\n");
        assert!(
            s.validate(unknown.as_bytes())
                .err()
                .is_some_and(|e| e.contains("unknown document kind"))
        );
    }

    #[test]
    fn deprecated_persist_is_accepted_but_must_be_true() {
        let s = schema();
        assert!(
            s.validate(format!("persist: true\n{MINIMAL}").as_bytes())
                .is_ok()
        );
        assert!(
            s.validate(format!("persist: false\n{MINIMAL}").as_bytes())
                .is_err()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary applied bytes are rejected with a message (or accepted), never a panic.
        #[test]
        fn arbitrary_configs_do_not_panic(text in "\\PC{0,200}") {
            let s = schema();
            let _ = s.validate(text.as_bytes());
        }
    }
}
