//! Rendering Kubernetes objects into the YAML files of the tree.

use std::path::PathBuf;

use serde_json::Value;

/// One file of the Flux tree: a path relative to the repository root and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: PathBuf,
    pub contents: String,
}

/// The first line of every generated file.
pub(crate) const HEADER: &str =
    "# Created by homelabctl from homelab.yaml; edit freely, it is yours.\n";

/// Renders `objects` as one YAML stream (documents separated by `---`), behind the header line.
pub(crate) fn render(objects: &[Value]) -> String {
    let mut out = String::from(HEADER);
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(object));
    }
    out
}

/// Renders one value as block YAML.
pub(crate) fn to_yaml(value: &Value) -> String {
    // A JSON value always renders; should the YAML emitter ever refuse, JSON is valid YAML too.
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}\n"))
}

/// `metadata` with a name and, for namespaced objects, a namespace.
pub(crate) fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), Value::String(name.to_string()));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), Value::String(ns.to_string()));
    }
    Value::Object(m)
}
