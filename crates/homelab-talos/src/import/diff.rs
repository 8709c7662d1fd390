//! What a render of an imported homelab.yaml still differs in from the config a node runs, as Talos strategic
//! merge patches that make the render equal to it: a first patch of `$patch: delete` selectors (keys the
//! render has and the node does not, and lists or values whose type changed, which a merge would append to or
//! could not replace), then a patch setting every value the node has and the render does not.
//!
//! Lists are compared and replaced whole: Talos appends to most lists and merges keyed ones, so only
//! deleting and setting again reproduces a list exactly. Zero values (`0`, `""`, `null`, empty lists and
//! maps) are not replaced by a strategic merge; a difference that needs one is reported by the caller's
//! check of the patched render, not guessed here.

use serde_json::{Map, Value, json};

use crate::machine_config::RenderedConfig;
use crate::machine_config::patch::{doc_kind, doc_name};

/// The patches that turn a render into the running config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDiff {
    /// Delete selectors, applied first.
    pub deletes: Vec<Value>,
    /// Values to set, applied after the deletes.
    pub sets: Vec<Value>,
    /// The fields that differ, `KIND[ NAME] /json/pointer`, for the import report.
    pub fields: Vec<String>,
}

impl ConfigDiff {
    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.sets.is_empty()
    }

    /// Whether a patch would carry a secret (a key, token or certificate the redaction masks): such a patch
    /// must not be written in plain text next to homelab.yaml.
    pub fn holds_secrets(&self) -> bool {
        let docs = RenderedConfig::from_documents(self.sets.clone());
        docs.redacted().documents() != docs.documents()
    }
}

/// The identity of a document in a multi-document config.
fn identity(doc: &Value) -> (String, Option<String>) {
    (doc_kind(doc).to_string(), doc_name(doc).map(str::to_string))
}

fn label(doc: &Value) -> String {
    match identity(doc) {
        (kind, Some(name)) => format!("{kind} {name}"),
        (kind, None) => kind,
    }
}

/// The keys that name a document in a patch (none for the v1alpha1 document).
fn header(doc: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if doc.get("kind").is_none() {
        return out;
    }
    for key in ["apiVersion", "kind", "name"] {
        if let Some(v) = doc.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    out
}

fn is_header_key(doc: &Value, key: &str) -> bool {
    if doc.get("kind").is_none() {
        key == "version"
    } else {
        matches!(key, "apiVersion" | "kind" | "name")
    }
}

fn delete_marker() -> Value {
    json!({"$patch": "delete"})
}

/// `value` without empty lists, empty maps and nulls: Talos writes a config it patched without them (Go's
/// `omitempty`) and reads their absence as the same thing, so they are no difference.
fn normalized(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| normalized(i).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), normalized(v)?)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

fn normalized_all(documents: &[Value]) -> Vec<Value> {
    documents.iter().filter_map(normalized).collect()
}

/// The patches that make `rendered` equal to `running` (both as parsed multi-document configs); empty
/// lists, maps and nulls count as absent.
pub fn config_diff(rendered: &[Value], running: &[Value]) -> ConfigDiff {
    let (rendered, running) = (&normalized_all(rendered), &normalized_all(running));
    let mut diff = ConfigDiff::default();
    for have in running {
        let id = identity(have);
        match rendered.iter().find(|d| identity(d) == id) {
            None => {
                diff.sets.push(have.clone());
                diff.fields
                    .push(format!("{} (whole document)", label(have)));
            }
            Some(want) if want == have => {}
            Some(want) => {
                let (Some(w), Some(h)) = (want.as_object(), have.as_object()) else {
                    continue;
                };
                let mut set = Map::new();
                let mut del = Map::new();
                let mut fields = Vec::new();
                diff_maps(w, h, "", &mut set, &mut del, &mut fields, &|k| {
                    is_header_key(have, k)
                });
                let doc_label = label(have);
                diff.fields
                    .extend(fields.into_iter().map(|f| format!("{doc_label} {f}")));
                if !del.is_empty() {
                    let mut d = header(have);
                    d.extend(del);
                    diff.deletes.push(Value::Object(d));
                }
                if !set.is_empty() {
                    let mut s = header(have);
                    s.extend(set);
                    diff.sets.push(Value::Object(s));
                }
            }
        }
    }
    for want in rendered {
        let id = identity(want);
        if running.iter().any(|d| identity(d) == id) {
            continue;
        }
        diff.fields
            .push(format!("{} (not in the running config)", label(want)));
        if want.get("kind").is_some() {
            let mut d = header(want);
            d.insert("$patch".into(), "delete".into());
            diff.deletes.push(Value::Object(d));
        }
    }
    diff
}

fn diff_maps(
    want: &Map<String, Value>,
    have: &Map<String, Value>,
    path: &str,
    set: &mut Map<String, Value>,
    del: &mut Map<String, Value>,
    fields: &mut Vec<String>,
    skip: &dyn Fn(&str) -> bool,
) {
    for (key, h) in have {
        if skip(key) {
            continue;
        }
        let here = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
        match want.get(key) {
            None => {
                set.insert(key.clone(), h.clone());
                fields.push(here);
            }
            Some(w) if w == h => {}
            Some(Value::Object(w)) if h.is_object() => {
                let mut s = Map::new();
                let mut d = Map::new();
                if let Some(h) = h.as_object() {
                    diff_maps(w, h, &here, &mut s, &mut d, fields, &|_| false);
                }
                if !s.is_empty() {
                    set.insert(key.clone(), Value::Object(s));
                }
                if !d.is_empty() {
                    del.insert(key.clone(), Value::Object(d));
                }
            }
            Some(w) => {
                // A list, or a value whose type changed: a merge would append or fail, so delete, then set.
                if h.is_array() || h.is_object() || w.is_array() || w.is_object() {
                    del.insert(key.clone(), delete_marker());
                }
                set.insert(key.clone(), h.clone());
                fields.push(here);
            }
        }
    }
    for key in want.keys() {
        if skip(key) || have.contains_key(key) {
            continue;
        }
        del.insert(key.clone(), delete_marker());
        fields.push(format!(
            "{path}/{} (removed)",
            key.replace('~', "~0").replace('/', "~1")
        ));
    }
}

/// Whether two multi-document configs hold the same documents (in any order; empty lists, maps and nulls
/// count as absent).
pub fn same_documents(a: &[Value], b: &[Value]) -> bool {
    let (a, b) = (normalized_all(a), normalized_all(b));
    a.len() == b.len()
        && a.iter().all(|d| {
            let id = identity(d);
            b.iter().any(|e| identity(e) == id && e == d)
        })
}

/// Documents as a YAML patch file (`---` between documents).
pub fn patch_yaml(documents: &[Value]) -> Result<String, crate::machine_config::ConfigError> {
    RenderedConfig::from_documents(documents.to_vec())
        .to_yaml()
        .map(|y| y.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Value> {
        RenderedConfig::from_yaml(text)
            .expect("yaml")
            .documents()
            .to_vec()
    }

    const RENDER: &str = "version: v1alpha1\nmachine:\n    type: controlplane\n    certSANs:\n        - a\n    kubelet:\n        image: k:v1\n        extraArgs:\n            rotate: \"true\"\ncluster:\n    clusterName: homelab\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n    - address: 1.1.1.1\n";

    #[test]
    fn an_identical_config_needs_no_patch() {
        let d = config_diff(&docs(RENDER), &docs(RENDER));
        assert!(d.is_empty(), "{d:?}");
        assert!(same_documents(&docs(RENDER), &docs(RENDER)));
    }

    #[test]
    fn added_changed_and_removed_values_become_sets_and_deletes() {
        let running = RENDER
            .replace(
                "        - a\n",
                "        - a\n        - b\n",
            )
            .replace("            rotate: \"true\"\n", "")
            .replace(
                "    type: controlplane\n",
                "    type: controlplane\n    sysctls:\n        vm.max_map_count: \"262144\"\n",
            )
            .replace("clusterName: homelab", "clusterName: lab")
            .replace(
                "---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n    - address: 1.1.1.1\n",
                "",
            );
        let d = config_diff(&docs(RENDER), &docs(&running));
        let sets = patch_yaml(&d.sets).expect("yaml");
        let deletes = patch_yaml(&d.deletes).expect("yaml");
        assert!(sets.contains("vm.max_map_count: \"262144\""), "{sets}");
        assert!(sets.contains("clusterName: lab"), "{sets}");
        assert!(sets.contains("- b"), "{sets}");
        assert!(!sets.contains("hostname"), "{sets}");
        // The list is deleted and set again; the emptied extraArgs and the dropped document are deleted.
        assert!(
            deletes.contains("certSANs:\n        $patch: delete"),
            "{deletes}"
        );
        assert!(
            deletes.contains("extraArgs:\n            $patch: delete"),
            "{deletes}"
        );
        assert!(
            deletes.contains("kind: ResolverConfig\n$patch: delete"),
            "{deletes}"
        );
        assert!(
            d.fields.iter().any(|f| f == "v1alpha1 /machine/sysctls"),
            "{:?}",
            d.fields
        );
        assert!(!d.holds_secrets());
    }

    #[test]
    fn empty_lists_and_maps_are_no_difference() {
        let running = RENDER.replace(
            "cluster:\n",
            "cluster:\n    extraManifests: []\n    inlineManifests: []\n    proxy: {}\n",
        );
        assert!(config_diff(&docs(RENDER), &docs(&running)).is_empty());
        assert!(same_documents(&docs(RENDER), &docs(&running)));
    }

    #[test]
    fn a_differing_secret_is_flagged() {
        let running = RENDER.replace("cluster:\n", "cluster:\n    secret: c2VjcmV0\n");
        let d = config_diff(&docs(RENDER), &docs(&running));
        assert!(d.holds_secrets());
    }
}
