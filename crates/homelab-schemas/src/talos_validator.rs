//! The Talos config schema compiled for validation, one validator per document kind, the way Talos
//! decodes a multi-document config: each document against the definition of its own kind, the
//! legacy `version: v1alpha1` document against `v1alpha1.Config`. `homelabctl validate` (through
//! homelab-talos) and the simulated nodes both compile here; how they word a failure stays theirs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The compiled validators of one Talos config schema.
pub struct KindValidators {
    by_kind: BTreeMap<String, jsonschema::Validator>,
    v1alpha1: jsonschema::Validator,
}

impl std::fmt::Debug for KindValidators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindValidators")
            .field("kinds", &self.by_kind.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KindValidators {
    /// Compiles a whole Talos `config.schema.json` value. The error says which part failed.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let defs = schema
            .get("$defs")
            .and_then(Value::as_object)
            .ok_or("no `$defs`")?;
        // Each validator is the whole `$defs` with a `$ref` to one definition, so references
        // between definitions resolve. Talos publishes draft 2020-12 schemas; `format` is not
        // asserted (Talos' own decoder does not check it).
        let compile = |def: &str| -> Result<jsonschema::Validator, String> {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/$defs/{def}"),
                "$defs": defs,
            });
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(false)
                .build(&root)
                .map_err(|e| format!("{def}: {}", e.masked()))
        };
        let mut by_kind = BTreeMap::new();
        for (name, def) in defs {
            let kinds = def
                .pointer("/properties/kind/enum")
                .and_then(Value::as_array);
            for kind in kinds.into_iter().flatten().filter_map(Value::as_str) {
                by_kind.insert(kind.to_owned(), compile(name)?);
            }
        }
        if !defs.contains_key("v1alpha1.Config") {
            return Err("no v1alpha1.Config definition".into());
        }
        let v1alpha1 = compile("v1alpha1.Config")?;
        Ok(Self { by_kind, v1alpha1 })
    }

    /// The validator of documents with `kind: <kind>` (`None`: Talos does not know the kind).
    pub fn kind(&self, kind: &str) -> Option<&jsonschema::Validator> {
        self.by_kind.get(kind)
    }

    /// The validator of the legacy `version: v1alpha1` document.
    pub fn v1alpha1(&self) -> &jsonschema::Validator {
        &self.v1alpha1
    }

    /// How many document kinds (besides v1alpha1) the schema knows.
    pub fn kinds(&self) -> usize {
        self.by_kind.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_compiles_every_kind_and_v1alpha1() {
        let bytes = match crate::talos::config_schema("v1.12") {
            Ok((_, b)) => b,
            Err(e) => panic!("{e}"),
        };
        let schema: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let v = KindValidators::compile(&schema).unwrap_or_else(|e| panic!("{e}"));
        assert!(v.kind("Layer2VIPConfig").is_some());
        assert!(v.kind("NoSuchConfig").is_none());
        assert!(v.v1alpha1().is_valid(&json!({"version": "v1alpha1"})));
        assert!(
            !v.v1alpha1()
                .is_valid(&json!({"version": "v1alpha1", "nope": 1}))
        );
    }

    #[test]
    fn a_schema_without_v1alpha1_is_refused() {
        let err = KindValidators::compile(&json!({"$defs": {}})).expect_err("no v1alpha1");
        assert!(err.contains("v1alpha1.Config"), "{err}");
    }
}
