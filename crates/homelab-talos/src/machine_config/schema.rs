//! Validation of machine config documents against the official Talos JSON Schema
//! (`config.schema.v1.12.4.json`), one document at a time as Talos decodes them: each document is checked
//! against the definition of its own kind, so errors point at the offending field.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Why a document failed the schema (or the schema could not be loaded). Values are never quoted.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read the Talos schema {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("document {index} has kind `{kind}`, which Talos 1.12 does not know")]
    UnknownKind { index: usize, kind: String },
    #[error("document {index} ({kind}) does not match the Talos schema: {errors}")]
    Invalid {
        index: usize,
        kind: String,
        errors: String,
    },
}

/// A compiled Talos config schema: one validator per document kind.
pub struct TalosSchema {
    by_kind: BTreeMap<String, jsonschema::Validator>,
}

impl TalosSchema {
    /// The schema built into the binary for Talos `talos_version` (`v1.12.4`): the newest embedded patch
    /// of that minor version (see `homelab_schemas::talos::pick`).
    pub fn builtin(talos_version: &str) -> Result<Self, SchemaError> {
        let load = |reason: String| SchemaError::Load {
            path: format!("built-in schema for Talos {talos_version}"),
            reason,
        };
        let (_, bytes) = homelab_schemas::talos::config_schema(talos_version)
            .map_err(|e| load(e.to_string()))?;
        let schema: Value = serde_json::from_slice(&bytes).map_err(|e| load(e.to_string()))?;
        Self::from_value(&schema).map_err(|e| load(e.to_string()))
    }

    /// Load the schema from a file (a `config.schema.json` of a Talos release).
    pub fn from_file(path: &Path) -> Result<Self, SchemaError> {
        let load = |reason: String| SchemaError::Load {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| load(e.to_string()))?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| load(e.to_string()))?;
        Self::from_value(&schema).map_err(|e| load(e.to_string()))
    }

    /// Compile a schema value (the whole Talos config schema with its `oneOf` over document kinds).
    pub fn from_value(schema: &Value) -> Result<Self, SchemaError> {
        let load = |reason: String| SchemaError::Load {
            path: "(schema)".into(),
            reason,
        };
        let defs = schema
            .get("$defs")
            .ok_or_else(|| load("no `$defs`".into()))?;
        let branches = schema
            .get("oneOf")
            .and_then(Value::as_array)
            .ok_or_else(|| load("no top-level `oneOf`".into()))?;
        let mut by_kind = BTreeMap::new();
        for branch in branches {
            let Some(reference) = branch.get("$ref").and_then(Value::as_str) else {
                continue;
            };
            let def_name = reference.trim_start_matches("#/$defs/");
            let def = defs
                .get(def_name)
                .ok_or_else(|| load(format!("missing definition {def_name}")))?;
            let kind = match def
                .pointer("/properties/kind/enum/0")
                .and_then(Value::as_str)
            {
                Some(kind) => kind.to_string(),
                None if def_name == "v1alpha1.Config" => "v1alpha1".to_string(),
                None => continue,
            };
            let single = json!({
                "$schema": schema.get("$schema").cloned().unwrap_or(Value::Null),
                "$defs": defs,
                "$ref": reference,
            });
            let validator = jsonschema::options()
                .should_validate_formats(false)
                .build(&single)
                .map_err(|e| load(format!("{def_name}: {}", e.masked())))?;
            by_kind.insert(kind, validator);
        }
        if !by_kind.contains_key("v1alpha1") {
            return Err(load("no v1alpha1.Config definition".into()));
        }
        Ok(Self { by_kind })
    }

    /// Every schema error as `(document index, JSON pointer in it, message)`, at most `limit`.
    pub fn errors(&self, documents: &[Value], limit: usize) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        for (i, doc) in documents.iter().enumerate() {
            let kind = super::patch::doc_kind(doc);
            let Some(validator) = self.by_kind.get(kind) else {
                out.push((
                    i,
                    String::new(),
                    format!("kind `{kind}` is not a Talos document kind"),
                ));
                continue;
            };
            for e in validator.iter_errors(doc) {
                out.push((i, e.instance_path().to_string(), e.masked().to_string()));
            }
        }
        out.truncate(limit);
        out
    }

    /// Validate every document; the error lists where the first bad document breaks the schema.
    pub fn validate(&self, documents: &[Value]) -> Result<(), SchemaError> {
        for (i, doc) in documents.iter().enumerate() {
            let kind = super::patch::doc_kind(doc).to_string();
            let validator = self
                .by_kind
                .get(&kind)
                .ok_or_else(|| SchemaError::UnknownKind {
                    index: i + 1,
                    kind: kind.clone(),
                })?;
            let errors: Vec<String> = validator
                .iter_errors(doc)
                .map(|e| format!("at `{}`: {}", e.instance_path(), e.masked()))
                .take(5)
                .collect();
            if !errors.is_empty() {
                return Err(SchemaError::Invalid {
                    index: i + 1,
                    kind,
                    errors: errors.join("; "),
                });
            }
        }
        Ok(())
    }
}
