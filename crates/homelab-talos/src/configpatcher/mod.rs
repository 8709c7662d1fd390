//! Talos' `configpatcher`, reproduced: loading a machine configuration and patches the way `configloader`
//! does (strict, one typed document per kind), strategic merge patches (document selection by
//! apiVersion/kind/name, Talos' merge rules, keyed lists such as network interfaces by `interface` or
//! `deviceSelector`, `$patch: delete`), RFC 6902 JSON patches, and writing the result as talosctl does
//! (go-yaml v3, 4-space indent, struct field order, `omitempty`). Every node keeps the file and line it came
//! from, so a field a patch introduced can be named by that patch's `FILE:LINE`.
//!
//! The cases of Talos' own `configpatcher/testdata` reproduce byte for byte (see the crate's tests).

mod encode;
mod json6902;
mod strategic;
pub mod tree;
pub mod types;

use std::sync::Arc;

pub use tree::{Node, Origin, Tag, Value};
pub use types::Registry;
use types::{LEGACY, Ty};

/// Why a config or patch could not be loaded or applied. Messages name the source and line, not values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("{source_name}:{line}: {message}")]
    At {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl PatchError {
    fn at(origin: Option<&Origin>, source: &str, message: impl Into<String>) -> Self {
        match origin {
            Some(o) => PatchError::At {
                source_name: o.source.to_string(),
                line: o.line,
                message: message.into(),
            },
            None => PatchError::At {
                source_name: source.to_string(),
                line: 0,
                message: message.into(),
            },
        }
    }
}

/// One typed document of a machine configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The Go type (e.g. `v1alpha1.Config`, `network.LinkConfigV1Alpha1`).
    pub type_name: String,
    pub node: Node,
}

impl Document {
    pub fn api_version(&self) -> &str {
        self.node
            .get("apiVersion")
            .and_then(Node::as_str)
            .unwrap_or("")
    }

    /// `v1alpha1` for the legacy document.
    pub fn kind(&self) -> &str {
        if self.type_name == LEGACY {
            return "v1alpha1";
        }
        self.node.get("kind").and_then(Node::as_str).unwrap_or("")
    }

    /// Talos' document identity: `apiVersion/kind[/name]`.
    pub fn id(&self, reg: &Registry) -> String {
        let mut id = format!("{}/{}", self.api_version(), self.kind());
        if reg.is_named(&self.type_name) {
            id.push('/');
            id.push_str(self.node.get("name").and_then(Node::as_str).unwrap_or(""));
        }
        id
    }
}

/// A machine configuration: its documents in order, and the type table of its Talos release.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub documents: Vec<Document>,
    pub registry: &'static Registry,
}

/// A loaded patch.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// Documents to merge and delete selectors, in the order Talos applies them.
    Strategic(Vec<strategic::Item>),
    /// RFC 6902 operations.
    Json6902 { source: Arc<str>, ops: Vec<Node> },
}

/// What a JSON patch applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonTarget {
    /// As Talos: the whole config, refused when it has more than one document.
    WholeConfig,
    /// The v1alpha1 document alone (homelabctl's configs are always multi-document).
    Legacy,
}

impl Config {
    /// Load a config as Talos 1.12's `configloader` does (unknown fields and duplicate documents are
    /// refused).
    pub fn load(text: &str, source: &str) -> Result<Config, PatchError> {
        Self::load_for(text, source, Registry::v1_12())
    }

    /// [`Config::load`] with the types of another Talos release (see [`Registry::for_talos`]).
    pub fn load_for(
        text: &str,
        source: &str,
        reg: &'static Registry,
    ) -> Result<Config, PatchError> {
        let src: Arc<str> = Arc::from(source);
        let docs = parse(text, &src)?;
        let mut out = Vec::new();
        for doc in docs {
            if doc.is_null() {
                continue;
            }
            out.push(decode_document(reg, doc, source)?);
        }
        if out.is_empty() {
            return Err(PatchError::Other(format!("{source}: config not found")));
        }
        check_duplicates(reg, &out, source)?;
        Ok(Config {
            documents: out,
            registry: reg,
        })
    }

    /// A config from documents as JSON values (e.g. what homelabctl renders); no origins.
    pub fn from_json(
        documents: &[serde_json::Value],
        source: &str,
        reg: &'static Registry,
    ) -> Result<Config, PatchError> {
        let documents = documents
            .iter()
            .map(|d| decode_document(reg, Node::from_json(d), source))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            documents,
            registry: reg,
        })
    }

    /// Each document as written out, as JSON values (field order kept).
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.normalized().iter().map(Node::to_json).collect()
    }

    /// Apply patches in order (Talos' `configpatcher.Apply`).
    pub fn apply(mut self, patches: &[Patch], json: JsonTarget) -> Result<Config, PatchError> {
        let reg = self.registry;
        for patch in patches {
            match patch {
                Patch::Strategic(items) => strategic::apply(reg, &mut self.documents, items)?,
                Patch::Json6902 { source, ops } => {
                    let index = match json {
                        JsonTarget::WholeConfig if self.documents.len() != 1 => {
                            return Err(PatchError::Other(
                                "JSON6902 patches are not supported for multi-document machine configuration"
                                    .into(),
                            ));
                        }
                        JsonTarget::WholeConfig => 0,
                        JsonTarget::Legacy => self
                            .documents
                            .iter()
                            .position(|d| d.type_name == LEGACY)
                            .ok_or_else(|| {
                                PatchError::Other(format!(
                                    "{source}: a JSON patch needs the v1alpha1 document, and the config has none"
                                ))
                            })?,
                    };
                    let doc = &mut self.documents[index];
                    // Talos applies JSON patches to the config as written out, zero-valued fields included.
                    let mut node =
                        encode::normalize(reg, Some(&doc.node), &Ty::Struct(doc.type_name.clone()));
                    json6902::apply(&mut node, ops, source)?;
                    *doc = decode_document(reg, node, source)?;
                }
            }
        }
        Ok(self)
    }

    /// The config as talosctl writes it (`---` between documents).
    pub fn to_yaml(&self) -> String {
        let reg = self.registry;
        let mut out = String::new();
        for (i, doc) in self.documents.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            let node = encode::normalize(reg, Some(&doc.node), &Ty::Struct(doc.type_name.clone()));
            out.push_str(&encode::emit(&node));
        }
        out
    }

    /// Each document as written out (field order and zero values as talosctl has them).
    pub fn normalized(&self) -> Vec<Node> {
        let reg = self.registry;
        self.documents
            .iter()
            .map(|d| encode::normalize(reg, Some(&d.node), &Ty::Struct(d.type_name.clone())))
            .collect()
    }

    /// Where the node at a JSON pointer inside document `index` was written; walks up to the nearest
    /// ancestor that has an origin.
    pub fn origin_of(&self, index: usize, pointer: &str) -> Option<&Origin> {
        let mut node = &self.documents.get(index)?.node;
        let mut best = node.origin.as_ref();
        for part in pointer.split('/').skip(1) {
            let part = part.replace("~1", "/").replace("~0", "~");
            let next = match &node.value {
                Value::Map(m) => m.iter().find(|(k, _)| *k == part).map(|(_, v)| v),
                Value::Seq(s) => part.parse::<usize>().ok().and_then(|i| s.get(i)),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    if n.origin.is_some() {
                        best = n.origin.as_ref();
                    }
                }
                None => break,
            }
        }
        best
    }
}

impl Patch {
    /// Load a patch (Talos' `LoadPatch`): a list of `{op, path, …}` is a JSON patch, anything else a strategic
    /// merge patch (which may hold several documents and `$patch: delete`).
    pub fn load(text: &str, source: &str) -> Result<Patch, PatchError> {
        Self::load_for(text, source, Registry::v1_12())
    }

    /// [`Patch::load`] with the types of another Talos release.
    pub fn load_for(text: &str, source: &str, reg: &'static Registry) -> Result<Patch, PatchError> {
        let src: Arc<str> = Arc::from(source);
        let docs = parse(text, &src)?;
        Self::from_nodes(docs, source, reg)
    }

    /// A patch from parsed documents (e.g. one written inline in another file, lines already set).
    pub fn from_nodes(
        docs: Vec<Node>,
        source: &str,
        reg: &'static Registry,
    ) -> Result<Patch, PatchError> {
        let src: Arc<str> = Arc::from(source);
        let non_null: Vec<&Node> = docs.iter().filter(|d| !d.is_null()).collect();
        if let [one] = non_null.as_slice()
            && let Value::Seq(ops) = &one.value
        {
            for op in ops {
                if op.get("op").and_then(Node::as_str).is_none() {
                    return Err(PatchError::at(
                        op.origin.as_ref(),
                        source,
                        "a list is only valid as a JSON patch, and every item needs an `op`",
                    ));
                }
            }
            return Ok(Patch::Json6902 {
                source: src,
                ops: ops.clone(),
            });
        }
        let items = strategic::load(reg, docs, source)?;
        if items.is_empty() {
            return Err(PatchError::Other(format!("{source}: config not found")));
        }
        Ok(Patch::Strategic(items))
    }
}

fn parse(text: &str, src: &Arc<str>) -> Result<Vec<Node>, PatchError> {
    tree::parse_documents(text, src).map_err(|e| PatchError::At {
        source_name: src.to_string(),
        line: e.line,
        message: e.message,
    })
}

fn check_duplicates(reg: &Registry, docs: &[Document], source: &str) -> Result<(), PatchError> {
    let mut seen = std::collections::HashSet::new();
    for d in docs {
        if !seen.insert(d.id(reg)) {
            return Err(PatchError::at(
                d.node.origin.as_ref(),
                source,
                format!("duplicate document {} is not allowed", d.id(reg)),
            ));
        }
    }
    Ok(())
}

/// Decode one document: find its type, refuse unknown fields and wrong shapes, normalise what Talos'
/// unmarshallers normalise.
pub(crate) fn decode_document(
    reg: &Registry,
    mut node: Node,
    source: &str,
) -> Result<Document, PatchError> {
    let Value::Map(entries) = &node.value else {
        return Err(PatchError::at(
            node.origin.as_ref(),
            source,
            "expected a YAML document (a mapping)",
        ));
    };
    let (mut version, mut kind) = (String::new(), String::new());
    for (k, v) in entries {
        match k.as_str() {
            "kind" => kind = v.as_str().unwrap_or("").to_string(),
            "apiVersion" => version = v.as_str().unwrap_or("").to_string(),
            "machine" | "cluster" | "debug" | "persist" => version = "v1alpha1".into(),
            _ => {}
        }
    }
    let type_name = if version == "v1alpha1" && kind.is_empty() {
        LEGACY.to_string()
    } else if kind.is_empty() {
        return Err(PatchError::at(node.origin.as_ref(), source, "missing kind"));
    } else {
        reg.doc_type(&version, &kind)
            .map(|d| d.type_name.clone())
            .ok_or_else(|| {
                PatchError::at(
                    node.origin.as_ref(),
                    source,
                    format!("unknown document kind {version}/{kind}"),
                )
            })?
    };
    check(
        reg,
        &mut node,
        &Ty::Struct(type_name.clone()),
        source,
        &type_name,
    )?;
    Ok(Document { type_name, node })
}

fn check(
    reg: &Registry,
    node: &mut Node,
    ty: &Ty,
    source: &str,
    path: &str,
) -> Result<(), PatchError> {
    let origin = node.origin.clone();
    let wrong =
        |what: &str| PatchError::at(origin.as_ref(), source, format!("`{path}` must be {what}"));
    if node.is_null() {
        return Ok(());
    }
    match ty {
        Ty::Ptr(inner) => check(reg, node, inner, source, path),
        Ty::Struct(name) => {
            let Value::Map(entries) = &mut node.value else {
                return Err(wrong("a mapping"));
            };
            let fields = reg.fields(name);
            for (k, v) in entries.iter_mut() {
                let Some(f) = fields.iter().find(|f| f.name == *k) else {
                    return Err(PatchError::at(
                        v.origin.as_ref().or(origin.as_ref()),
                        source,
                        format!("unknown field `{k}` in `{path}` (Talos has no such field)"),
                    ));
                };
                check(reg, v, &f.ty, source, &format!("{path}.{k}"))?;
                if name == "v1alpha1.ClusterInlineManifest"
                    && k == "contents"
                    && let Value::Scalar(s, _) = &mut v.value
                {
                    // Talos' ClusterInlineManifests unmarshaller drops leading blank lines.
                    *s = s
                        .trim_start_matches(['\t', '\n', '\u{b}', '\u{c}', '\r'])
                        .to_string();
                }
            }
            Ok(())
        }
        Ty::Slice(elem, _) => {
            let Value::Seq(items) = &mut node.value else {
                return Err(wrong("a list"));
            };
            for (i, item) in items.iter_mut().enumerate() {
                check(reg, item, elem, source, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Ty::Map(elem) => {
            let Value::Map(entries) = &mut node.value else {
                return Err(wrong("a mapping"));
            };
            for (k, v) in entries.iter_mut() {
                check(reg, v, elem, source, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        Ty::Unstructured => match node.value {
            Value::Map(_) => Ok(()),
            _ => Err(wrong("a mapping")),
        },
        Ty::Duration => match &node.value {
            Value::Scalar(s, _) if homelab_goyaml::duration::parse(s).is_some() => Ok(()),
            _ => Err(wrong("a duration such as 30s, 1m30s or 2h")),
        },
        Ty::Str | Ty::Bytes => match &mut node.value {
            // go-yaml decodes any scalar into a string field as its text.
            Value::Scalar(_, tag) => {
                *tag = Tag::Str;
                Ok(())
            }
            _ => Err(wrong("a string")),
        },
        Ty::Bool => match node.value {
            Value::Scalar(_, Tag::Bool) => Ok(()),
            _ => Err(wrong("true or false")),
        },
        Ty::Int => match node.value {
            Value::Scalar(_, Tag::Int) => Ok(()),
            _ => Err(wrong("an integer")),
        },
        Ty::Float => match node.value {
            Value::Scalar(_, Tag::Int | Tag::Float) => Ok(()),
            _ => Err(wrong("a number")),
        },
        Ty::Opaque | Ty::Any => Ok(()),
    }
}
