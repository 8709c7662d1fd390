//! User patches: Talos strategic merge patches (multi-document, `$patch: delete`) and RFC 6902 JSON patches,
//! read from files and applied in order to the generated documents.
//!
//! Strategic merge follows Talos' `configpatcher`: a patch document targets the document with the same
//! `kind` (and `name`), or the v1alpha1 document when it has no `kind`; unmatched documents are appended.
//! Maps merge key by key, lists append, except lists Talos merges by a key (`machine.network.interfaces`
//! by `interface`, `vlans` by `vlanId`, `configFiles` by `mountPath`, `cluster.inlineManifests` and
//! `cluster.apiServer.admissionControl` by `name`) and fields Talos replaces whole (pod/service subnets,
//! `auditPolicy`, `validSubnets`, etcd subnets). `$patch: delete` removes a document, a key or the list
//! items it matches.
//!
//! JSON patches apply to the v1alpha1 document (Talos itself refuses JSON patches on multi-document
//! configs, and every 1.12 config is multi-document).

use std::path::Path;

use serde_json::{Map, Value};

/// Why a patch could not be read or applied. Messages name the patch and the path, not the values.
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
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("{source_name}: operation {index} (`{op} {path}`) failed: {reason}")]
    Operation {
        source_name: String,
        index: usize,
        op: String,
        path: String,
        reason: String,
    },
}

/// A patch and where it came from (a file path, for messages).
#[derive(Clone, PartialEq, Eq)]
pub enum Patch {
    /// Strategic merge patch documents.
    StrategicMerge {
        source: String,
        documents: Vec<Value>,
    },
    /// RFC 6902 operations, applied to the v1alpha1 document.
    Json6902 {
        source: String,
        operations: Vec<Value>,
    },
}

impl std::fmt::Debug for Patch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Patch::StrategicMerge { source, .. } => write!(f, "StrategicMerge({source})"),
            Patch::Json6902 { source, .. } => write!(f, "Json6902({source})"),
        }
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

    /// Parse patch text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, PatchError> {
        let documents = parse_documents(text, source)?;
        if let [Value::Array(ops)] = documents.as_slice() {
            if ops
                .iter()
                .all(|op| op.get("op").is_some_and(Value::is_string))
            {
                return Ok(Patch::Json6902 {
                    source: source.to_string(),
                    operations: ops.clone(),
                });
            }
            return Err(PatchError::Invalid {
                source_name: source.to_string(),
                reason: "a list is only valid as a JSON patch, and every item needs an `op`".into(),
            });
        }
        if let Some(i) = documents.iter().position(|d| !d.is_object()) {
            return Err(PatchError::Invalid {
                source_name: source.to_string(),
                reason: format!("document {} is not a mapping", i + 1),
            });
        }
        Ok(Patch::StrategicMerge {
            source: source.to_string(),
            documents,
        })
    }

    /// Apply to a config's documents.
    pub fn apply(&self, mut docs: Vec<Value>) -> Result<Vec<Value>, PatchError> {
        match self {
            Patch::StrategicMerge { documents, .. } => {
                for patch in documents {
                    apply_strategic(&mut docs, patch);
                }
                Ok(docs)
            }
            Patch::Json6902 { source, operations } => {
                let Some(target) = docs.iter_mut().find(|d| doc_kind(d) == "v1alpha1") else {
                    return Err(PatchError::Invalid {
                        source_name: source.clone(),
                        reason: "a JSON patch needs the v1alpha1 document, and the config has none"
                            .into(),
                    });
                };
                for (index, op) in operations.iter().enumerate() {
                    json6902(target, op).map_err(|(op, path, reason)| PatchError::Operation {
                        source_name: source.clone(),
                        index: index + 1,
                        op,
                        path,
                        reason,
                    })?;
                }
                Ok(docs)
            }
        }
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

fn is_delete(v: &Value) -> bool {
    v.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn apply_strategic(docs: &mut Vec<Value>, patch: &Value) {
    let kind = doc_kind(patch);
    let name = doc_name(patch);
    let position = docs
        .iter()
        .position(|d| doc_kind(d) == kind && (kind == "v1alpha1" || doc_name(d) == name));
    match (position, is_delete(patch)) {
        (Some(i), true) => {
            docs.remove(i);
        }
        (None, true) => {}
        (Some(i), false) => merge(&mut docs[i], patch, ""),
        (None, false) => docs.push(clean(patch)),
    }
}

const REPLACE_PATHS: &[&str] = &[
    "cluster.network.podSubnets",
    "cluster.network.serviceSubnets",
    "cluster.apiServer.auditPolicy",
    "cluster.etcd.advertisedSubnets",
    "cluster.etcd.listenSubnets",
    "machine.kubelet.nodeIP.validSubnets",
];

fn list_key(path: &str) -> Option<&'static str> {
    match path {
        "machine.network.interfaces" => Some("interface"),
        "machine.network.interfaces.vlans" => Some("vlanId"),
        "configFiles" => Some("mountPath"),
        "cluster.inlineManifests" | "cluster.apiServer.admissionControl" => Some("name"),
        _ => None,
    }
}

fn merge(target: &mut Value, patch: &Value, path: &str) {
    if REPLACE_PATHS.contains(&path) {
        *target = clean(patch);
        return;
    }
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, pv) in p {
                if key == "$patch" {
                    continue;
                }
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if pv.is_object() && is_delete(pv) {
                    t.shift_remove(key);
                } else if let Some(tv) = t.get_mut(key) {
                    merge(tv, pv, &child);
                } else {
                    t.insert(key.clone(), clean(pv));
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            let key = list_key(path);
            for item in p {
                if is_delete(item) {
                    t.retain(|existing| !matches_selector(existing, item));
                    continue;
                }
                let slot = key.and_then(|k| {
                    let id = item.get(k)?;
                    t.iter_mut().find(|e| e.get(k) == Some(id))
                });
                match slot {
                    Some(existing) => merge(existing, item, path),
                    None => t.push(clean(item)),
                }
            }
        }
        (target, patch) => *target = clean(patch),
    }
}

/// A `$patch: delete` list item matches the elements that have all its other fields with equal values.
fn matches_selector(existing: &Value, selector: &Value) -> bool {
    let (Some(e), Some(s)) = (existing.as_object(), selector.as_object()) else {
        return false;
    };
    s.iter()
        .filter(|(k, _)| *k != "$patch")
        .all(|(k, v)| e.get(k) == Some(v))
}

/// A copy without `$patch` directives.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "$patch")
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().filter(|i| !is_delete(i)).map(clean).collect()),
        other => other.clone(),
    }
}

type OpError = (String, String, String);

fn json6902(doc: &mut Value, op: &Value) -> Result<(), OpError> {
    let name = op
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let fail = |reason: String| (name.clone(), path.clone(), reason);
    if op.get("path").and_then(Value::as_str).is_none() {
        return Err(fail("`path` is missing".into()));
    }
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| fail("`value` is missing".into()))
    };
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fail("`from` is missing".into()))
    };
    match name.as_str() {
        "add" => pointer_add(doc, &path, value()?).map_err(fail),
        "remove" => pointer_remove(doc, &path).map(drop).map_err(fail),
        "replace" => {
            let v = value()?;
            let slot = doc
                .pointer_mut(&path)
                .ok_or_else(|| fail("the path does not exist".into()))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let from = from()?;
            if path.starts_with(&format!("{from}/")) {
                return Err(fail("cannot move a value into itself".into()));
            }
            let v = pointer_remove(doc, &from).map_err(&fail)?;
            pointer_add(doc, &path, v).map_err(fail)
        }
        "copy" => {
            let from = from()?;
            let v = doc
                .pointer(&from)
                .cloned()
                .ok_or_else(|| fail("`from` does not exist".into()))?;
            pointer_add(doc, &path, v).map_err(fail)
        }
        "test" => {
            let v = value()?;
            if doc.pointer(&path) == Some(&v) {
                Ok(())
            } else {
                Err(fail("the value differs".into()))
            }
        }
        _ => Err(fail(
            "unknown op (expected add, remove, replace, move, copy or test)".into(),
        )),
    }
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("the whole document cannot be replaced".into());
    }
    if !path.starts_with('/') {
        return Err("a JSON pointer starts with `/`".into());
    }
    let cut = path.rfind('/').unwrap_or(0);
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..cut].to_string(), last))
}

fn pointer_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    let parent = doc
        .pointer_mut(&parent)
        .ok_or_else(|| "the parent of the path does not exist".to_string())?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| "not an array index".to_string())?;
            if i > a.len() {
                return Err("array index out of range".into());
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err("the parent of the path is not an object or array".into()),
    }
}

fn pointer_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let parent = doc
        .pointer_mut(&parent)
        .ok_or_else(|| "the parent of the path does not exist".to_string())?;
    match parent {
        Value::Object(m) => m
            .shift_remove(&last)
            .ok_or_else(|| "the path does not exist".into()),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| "not an array index".to_string())?;
            if i >= a.len() {
                return Err("array index out of range".into());
            }
            Ok(a.remove(i))
        }
        _ => Err("the parent of the path is not an object or array".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_of_ops_is_a_json_patch_and_a_mapping_is_strategic() {
        let p = Patch::parse(
            "- op: add\n  path: /machine/certSANs/-\n  value: a\n",
            "p.yaml",
        )
        .unwrap();
        assert!(matches!(p, Patch::Json6902 { .. }));
        let p = Patch::parse("machine:\n  certSANs: [a]\n", "p.yaml").unwrap();
        assert!(matches!(p, Patch::StrategicMerge { .. }));
        assert!(Patch::parse("- a\n- b\n", "p.yaml").is_err());
    }

    #[test]
    fn json_patch_ops_follow_rfc6902() {
        let mut doc = json!({"a": {"b": [1, 2]}, "c": 1});
        for op in [
            json!({"op": "add", "path": "/a/b/1", "value": 9}),
            json!({"op": "add", "path": "/a/b/-", "value": 3}),
            json!({"op": "replace", "path": "/c", "value": 2}),
            json!({"op": "copy", "from": "/c", "path": "/d"}),
            json!({"op": "move", "from": "/d", "path": "/a/e"}),
            json!({"op": "remove", "path": "/a/b/0"}),
            json!({"op": "test", "path": "/a/e", "value": 2}),
        ] {
            json6902(&mut doc, &op).unwrap();
        }
        assert_eq!(doc, json!({"a": {"b": [9, 2, 3], "e": 2}, "c": 2}));
        assert!(
            json6902(
                &mut doc,
                &json!({"op": "replace", "path": "/zz", "value": 1})
            )
            .is_err()
        );
        assert!(json6902(&mut doc, &json!({"op": "test", "path": "/c", "value": 5})).is_err());
        assert!(json6902(&mut doc, &json!({"op": "remove", "path": "/a/b/9"})).is_err());
    }

    #[test]
    fn replace_paths_replace_and_other_lists_append() {
        let mut doc = json!({"cluster": {"network": {"podSubnets": ["a"]}, "x": ["a"]}});
        merge(
            &mut doc,
            &json!({"cluster": {"network": {"podSubnets": ["b"]}, "x": ["b"]}}),
            "",
        );
        assert_eq!(
            doc,
            json!({"cluster": {"network": {"podSubnets": ["b"]}, "x": ["a", "b"]}})
        );
    }
}
