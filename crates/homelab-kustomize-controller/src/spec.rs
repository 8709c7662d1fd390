//! The Flux `Kustomization` object (kustomize.toolkit.fluxcd.io/v1) as one typed [`Spec`]: read from a
//! manifest in the repository ([`Spec::from_map`]) and written into the sync objects ([`Spec::to_json`]),
//! so its API version, kind and field names are spelled here only.

use homelab_kustomize::kustomization::{ImageEntry, Selector};
use homelab_kustomize::yaml::{Map, Value};
use serde_json::json;

use crate::FluxError;

/// The API group of Flux's `Kustomization`.
pub const API_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The API version written, listed and patched.
pub const API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";
/// The kind (the same word as kustomize's own file kind, in another API group).
pub const KIND: &str = "Kustomization";
/// The label or annotation that turns postBuild substitution off for one object.
pub const SUBSTITUTE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Whether `api_version`/`kind` name a Flux Kustomization (any version of the group).
pub fn is_flux_kustomization(api_version: &str, kind: &str) -> bool {
    api_version
        .strip_prefix(API_GROUP)
        .is_some_and(|v| v.starts_with('/'))
        && kind == KIND
}

/// `spec.sourceRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub kind: String,
    pub name: String,
}

/// `spec.decryption`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decryption {
    /// `sops`.
    pub provider: String,
    /// The Secret holding the keys (`secretRef.name`).
    pub secret: Option<String>,
}

/// One of `spec.patches`: an inline patch and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub patch: Option<String>,
    pub target: Option<Selector>,
}

/// One of `spec.postBuild.substituteFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstituteFrom {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    pub name: String,
    pub optional: bool,
}

/// `spec.postBuild`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostBuild {
    /// `substitute`, in file order (values as their scalar text).
    pub substitute: Vec<(String, String)>,
    pub substitute_from: Vec<SubstituteFrom>,
}

/// The spec fields homelabctl reads or writes (others are ignored when read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub interval: Option<String>,
    pub depends_on: Vec<String>,
    /// `./dir` in the source; `None` is the source's root.
    pub path: Option<String>,
    pub prune: bool,
    pub wait: bool,
    pub timeout: Option<String>,
    pub source_ref: Option<SourceRef>,
    pub decryption: Option<Decryption>,
    pub target_namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub patches: Vec<Patch>,
    pub components: Vec<String>,
    pub ignore_missing_components: bool,
    pub images: Vec<ImageEntry>,
    pub post_build: Option<PostBuild>,
}

/// A non-empty string field.
fn text(m: &Map, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

fn flag(m: &Map, k: &str) -> bool {
    matches!(m.get(k), Some(Value::Bool(true)))
}

fn maps<'a>(m: &'a Map, k: &str) -> impl Iterator<Item = &'a Map> {
    match m.get(k) {
        Some(Value::Seq(items)) => items.as_slice(),
        _ => &[],
    }
    .iter()
    .filter_map(Value::as_map)
}

fn selector(v: &Value) -> Result<Selector, FluxError> {
    let m = v
        .as_map()
        .ok_or_else(|| FluxError::Invalid("patch target must be a mapping".into()))?;
    Ok(Selector {
        group: text(m, "group"),
        version: text(m, "version"),
        kind: text(m, "kind"),
        name: text(m, "name"),
        namespace: text(m, "namespace"),
        label_selector: text(m, "labelSelector"),
        annotation_selector: text(m, "annotationSelector"),
    })
}

impl Spec {
    /// Reads `spec` of a Flux Kustomization manifest; fields of the wrong type read as absent, except
    /// patches, whose entries and targets must be mappings.
    pub fn from_map(m: &Map) -> Result<Spec, FluxError> {
        let mut patches = Vec::new();
        if let Some(Value::Seq(items)) = m.get("patches") {
            for p in items {
                let p = p.as_map().ok_or_else(|| {
                    FluxError::Invalid("spec.patches entries must be mappings".into())
                })?;
                patches.push(Patch {
                    patch: text(p, "patch"),
                    target: p.get("target").map(selector).transpose()?,
                });
            }
        }
        let components = match m.get("components") {
            Some(Value::Seq(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let images = maps(m, "images")
            .map(|i| ImageEntry {
                name: text(i, "name").unwrap_or_default(),
                new_name: text(i, "newName"),
                // A tag written as a number (`newTag: 1.2`) is still the tag.
                new_tag: i
                    .get("newTag")
                    .and_then(Value::scalar_string)
                    .filter(|s| !s.is_empty()),
                digest: text(i, "digest"),
            })
            .collect();
        let post_build = m.get("postBuild").and_then(Value::as_map).map(|p| {
            let substitute = match p.get("substitute") {
                Some(Value::Map(sub)) => sub
                    .iter()
                    .map(|(k, v)| (k.clone(), v.scalar_string().unwrap_or_default()))
                    .collect(),
                _ => Vec::new(),
            };
            let substitute_from = maps(p, "substituteFrom")
                .map(|s| SubstituteFrom {
                    kind: text(s, "kind").unwrap_or_default(),
                    name: text(s, "name").unwrap_or_default(),
                    optional: flag(s, "optional"),
                })
                .collect();
            PostBuild {
                substitute,
                substitute_from,
            }
        });
        Ok(Spec {
            interval: text(m, "interval"),
            depends_on: maps(m, "dependsOn")
                .filter_map(|d| text(d, "name"))
                .collect(),
            path: text(m, "path"),
            prune: flag(m, "prune"),
            wait: flag(m, "wait"),
            timeout: text(m, "timeout"),
            source_ref: m
                .get("sourceRef")
                .and_then(Value::as_map)
                .map(|s| SourceRef {
                    kind: text(s, "kind").unwrap_or_default(),
                    name: text(s, "name").unwrap_or_default(),
                }),
            decryption: m
                .get("decryption")
                .and_then(Value::as_map)
                .map(|d| Decryption {
                    provider: text(d, "provider").unwrap_or_default(),
                    secret: d
                        .get("secretRef")
                        .and_then(Value::as_map)
                        .and_then(|s| text(s, "name")),
                }),
            target_namespace: text(m, "targetNamespace"),
            name_prefix: text(m, "namePrefix"),
            name_suffix: text(m, "nameSuffix"),
            patches,
            components,
            ignore_missing_components: flag(m, "ignoreMissingComponents"),
            images,
            post_build,
        })
    }

    /// The `spec` of the fields the sync objects use (interval, dependsOn, path, prune, wait, timeout,
    /// sourceRef, decryption), in that order.
    pub fn to_json(&self) -> serde_json::Value {
        let mut spec = serde_json::Map::new();
        if let Some(i) = &self.interval {
            spec.insert("interval".into(), json!(i));
        }
        if !self.depends_on.is_empty() {
            let deps: Vec<_> = self.depends_on.iter().map(|d| json!({"name": d})).collect();
            spec.insert("dependsOn".into(), serde_json::Value::Array(deps));
        }
        if let Some(p) = &self.path {
            spec.insert("path".into(), json!(p));
        }
        spec.insert("prune".into(), json!(self.prune));
        if self.wait {
            spec.insert("wait".into(), json!(true));
        }
        if let Some(t) = &self.timeout {
            spec.insert("timeout".into(), json!(t));
        }
        if let Some(s) = &self.source_ref {
            spec.insert("sourceRef".into(), json!({"kind": s.kind, "name": s.name}));
        }
        if let Some(d) = &self.decryption {
            let mut dec = serde_json::Map::new();
            dec.insert("provider".into(), json!(d.provider));
            if let Some(secret) = &d.secret {
                dec.insert("secretRef".into(), json!({"name": secret}));
            }
            spec.insert("decryption".into(), serde_json::Value::Object(dec));
        }
        serde_json::Value::Object(spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use homelab_kustomize::yaml::parse_value;

    #[test]
    fn a_written_spec_reads_back_the_same() {
        let spec = Spec {
            interval: Some("10m".into()),
            depends_on: vec!["infrastructure".into()],
            path: Some("./apps".into()),
            prune: true,
            wait: true,
            timeout: Some("5m".into()),
            source_ref: Some(SourceRef {
                kind: "GitRepository".into(),
                name: "flux-system".into(),
            }),
            decryption: Some(Decryption {
                provider: "sops".into(),
                secret: Some("sops-age".into()),
            }),
            ..Spec::default()
        };
        let json = spec.to_json();
        let text = serde_json::to_string(&json).unwrap();
        let Value::Map(m) = parse_value(&text).unwrap() else {
            panic!("not a map")
        };
        assert_eq!(Spec::from_map(&m).unwrap(), spec);
    }

    #[test]
    fn only_the_flux_group_is_a_flux_kustomization() {
        assert!(is_flux_kustomization(API_VERSION, KIND));
        assert!(is_flux_kustomization(
            "kustomize.toolkit.fluxcd.io/v1beta2",
            KIND
        ));
        assert!(!is_flux_kustomization(
            "kustomize.config.k8s.io/v1beta1",
            KIND
        ));
        assert!(!is_flux_kustomization(
            "kustomize.toolkit.fluxcd.io.evil/v1",
            KIND
        ));
    }
}
