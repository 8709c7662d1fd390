//! Strategic-merge facts of the built-in Kubernetes kinds (merge keys, patch strategies, nested types),
//! generated from the Kubernetes 1.35 schemas by `scripts/gen-smp-schema.py`. CRDs have none, so their lists
//! are replaced wholesale, as in kustomize.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct Field {
    pub reference: Option<String>,
    pub strategy: Option<String>,
    pub key: Option<String>,
}

struct Schema {
    gvk: HashMap<String, String>,
    defs: HashMap<String, HashMap<String, Field>>,
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(include_str!("../data/smp-schema.json"))
            .unwrap_or(serde_json::Value::Null);
        let gvk = v["gvk"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, d)| (k.clone(), d.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let defs = v["defs"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(name, props)| {
                        let fields = props
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(f, e)| {
                                        let s = |k: &str| e[k].as_str().map(str::to_string);
                                        (
                                            f.clone(),
                                            Field {
                                                reference: s("ref"),
                                                strategy: s("strategy"),
                                                key: s("key"),
                                            },
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        (name.clone(), fields)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Schema { gvk, defs }
    })
}

/// The definition name for a kind (`apps/v1`, `Deployment`).
pub fn def_for(api_version: &str, kind: &str) -> Option<&'static str> {
    schema()
        .gvk
        .get(&format!("{api_version}/{kind}"))
        .map(String::as_str)
}

/// Facts of `field` inside definition `def`.
pub fn field(def: &str, field: &str) -> Option<&'static Field> {
    schema().defs.get(def)?.get(field)
}
