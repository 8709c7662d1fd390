//! User patches on a rendered config: each is a [`configpatcher`](crate::configpatcher) patch (Talos'
//! strategic merge with `$patch: delete`, or RFC 6902), read from a file or built from an inline tree, and
//! applied in order as Talos applies them. JSON patches apply to the v1alpha1 document (Talos refuses JSON
//! patches on multi-document configs, and every config homelabctl renders is multi-document).
//!
//! Also the small helpers the other modules use to read documents (`doc_kind`, `doc_name`).

use std::path::Path;

use serde_json::Value;

use crate::configpatcher;

/// Why a patch could not be read or applied. Messages name the patch file and line, not the values.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot read patch {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: not valid YAML/JSON: {reason}")]
    Parse { source_name: String, reason: String },
    #[error(transparent)]
    Patch(#[from] configpatcher::PatchError),
}

/// A patch, where it came from, and the Talos release whose types it was read with.
#[derive(Clone, PartialEq)]
pub struct Patch {
    pub source: String,
    pub patch: configpatcher::Patch,
    pub registry: &'static configpatcher::Registry,
}

impl std::fmt::Debug for Patch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Patch({})", self.source)
    }
}

impl Patch {
    /// Read a patch file; a YAML/JSON list of `{op, path, …}` is a JSON patch, anything else strategic merge.
    pub fn from_file(path: &Path) -> Result<Self, PatchError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            PatchError::Read {
                path: path.display().to_string(),
                source,
            }
        })?);
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse patch text (Talos 1.12 types); `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, PatchError> {
        Self::parse_for(text, source, "v1.12.4")
    }

    /// Parse patch text with the config types of Talos `talos_version`.
    pub fn parse_for(text: &str, source: &str, talos_version: &str) -> Result<Self, PatchError> {
        let registry = configpatcher::Registry::for_talos(talos_version);
        Ok(Self {
            source: source.to_string(),
            patch: configpatcher::Patch::load_for(text, source, registry)?,
            registry,
        })
    }

    /// A patch from an already parsed tree (an inline patch, with its lines in `source`).
    pub fn from_tree(
        root: configpatcher::Node,
        source: &str,
        talos_version: &str,
    ) -> Result<Self, PatchError> {
        let registry = configpatcher::Registry::for_talos(talos_version);
        Ok(Self {
            source: source.to_string(),
            patch: configpatcher::Patch::from_nodes(vec![root], source, registry)?,
            registry,
        })
    }
}

/// Parse multi-document YAML (or JSON) into values, skipping empty documents.
pub(crate) fn parse_documents(text: &str, source: &str) -> Result<Vec<Value>, PatchError> {
    // serde-saphyr has its own alias limits; go-yaml's (what talosctl applies) is the one users meet.
    homelab_goyaml::alias::check(text).map_err(|e| PatchError::Parse {
        source_name: source.to_string(),
        reason: e.to_string(),
    })?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| PatchError::Parse {
        source_name: source.to_string(),
        reason: e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid")
            .to_string(),
    })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The kind of a document; the legacy document (no `kind`) is `v1alpha1`.
pub(crate) fn doc_kind(doc: &Value) -> &str {
    doc.get("kind")
        .and_then(Value::as_str)
        .unwrap_or("v1alpha1")
}

/// The `name` of a named document.
pub(crate) fn doc_name(doc: &Value) -> Option<&str> {
    doc.get("name").and_then(Value::as_str)
}
