//! Flux emulation: find the Flux `Kustomization` objects in the tree and build each `spec.path` the way
//! kustomize-controller does (generate a kustomization when there is none; add targetNamespace,
//! namePrefix/nameSuffix, patches, components and images; build with LoadRestrictionsNone; then postBuild
//! substitution from `substitute` and `substituteFrom` ConfigMaps/Secrets found in the repository).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use homelab_kustomize::kustomization::{self, ImageEntry, Kustomization, PatchEntry};
use homelab_kustomize::yaml::{Map, Value, parse_value, to_yaml};
use homelab_kustomize::{LoadRestrictor, Options, Output, build_kustomization};

use crate::envsubst::{Vars, substitute};
use crate::repo::Repo;

/// A Flux `Kustomization` (kustomize.toolkit.fluxcd.io) found in the tree.
#[derive(Debug, Clone)]
pub struct FluxKustomization {
    pub name: String,
    pub namespace: String,
    /// Repository-relative file and line of its definition.
    pub file: String,
    pub line: usize,
    pub spec: Map,
}

/// Why a Flux build failed.
#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Kustomize(#[from] homelab_kustomize::Error),
}

/// Every Flux Kustomization in the Flux tree, in file order.
pub fn discover(repo: &Repo) -> Vec<FluxKustomization> {
    let mut out = Vec::new();
    for f in repo.tree_files() {
        let Some(Ok(docs)) = &f.yaml else { continue };
        for d in docs {
            let Some(m) = d.value.as_map() else { continue };
            let av = m
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !av.starts_with("kustomize.toolkit.fluxcd.io/")
                || m.get("kind").and_then(Value::as_str) != Some("Kustomization")
            {
                continue;
            }
            let meta = |k: &str| {
                d.value
                    .get_path(&["metadata", k])
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            out.push(FluxKustomization {
                name: meta("name"),
                namespace: meta("namespace"),
                file: f.rel.clone(),
                line: d.line,
                spec: m
                    .get("spec")
                    .and_then(Value::as_map)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
    out
}

fn is_kustomization_dir(dir: &Path) -> bool {
    kustomization::FILE_NAMES
        .iter()
        .any(|n| dir.join(n).is_file())
}

/// kustomize-controller's generated kustomization: every `.yaml`/`.yml` below `dir`, except that a
/// subdirectory holding a kustomization file is one resource.
fn generate(dir: &Path) -> Result<Kustomization, FluxError> {
    let mut resources = Vec::new();
    scan(dir, dir, &mut resources)?;
    Ok(Kustomization {
        file: dir.join("kustomization.yaml"),
        dir: dir.to_path_buf(),
        resources,
        ..Default::default()
    })
}

fn scan(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), FluxError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| FluxError::Invalid(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(base)
            .unwrap_or(&p)
            .to_string_lossy()
            .to_string();
        if p.is_dir() {
            if is_kustomization_dir(&p) {
                out.push(rel);
            } else {
                scan(base, &p, out)?;
            }
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(rel);
        }
    }
    Ok(())
}

fn str_of(m: &Map, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// The kustomization kustomize-controller would build for `fk`.
pub fn kustomization_for(repo: &Repo, fk: &FluxKustomization) -> Result<Kustomization, FluxError> {
    let path = str_of(&fk.spec, "path").unwrap_or_else(|| "./".into());
    let dir: PathBuf = repo.root.join(path.trim_start_matches("./"));
    if !dir.is_dir() {
        return Err(FluxError::Invalid(format!(
            "spec.path {path:?} is not a directory in the repository"
        )));
    }
    let mut k = if is_kustomization_dir(&dir) {
        kustomization::load(&dir)?
    } else {
        generate(&dir)?
    };
    if let Some(ns) = str_of(&fk.spec, "targetNamespace") {
        k.namespace = Some(ns);
    }
    if let Some(p) = str_of(&fk.spec, "namePrefix") {
        k.name_prefix = Some(p);
    }
    if let Some(s) = str_of(&fk.spec, "nameSuffix") {
        k.name_suffix = Some(s);
    }
    if let Some(Value::Seq(patches)) = fk.spec.get("patches") {
        for p in patches {
            let m = p.as_map().ok_or_else(|| {
                FluxError::Invalid("spec.patches entries must be mappings".into())
            })?;
            let target = match m.get("target") {
                Some(t) => Some(selector(t)?),
                None => None,
            };
            k.patches.push(PatchEntry {
                patch: str_of(m, "patch"),
                path: None,
                target,
            });
        }
    }
    let ignore_missing = matches!(
        fk.spec.get("ignoreMissingComponents"),
        Some(Value::Bool(true))
    );
    if let Some(Value::Seq(components)) = fk.spec.get("components") {
        for c in components.iter().filter_map(Value::as_str) {
            if c.contains("://") || Path::new(c).is_absolute() {
                return Err(FluxError::Invalid(format!(
                    "component {c:?} must be a local relative path"
                )));
            }
            if !dir.join(c).is_dir() && ignore_missing {
                continue;
            }
            k.components.push(c.to_string());
        }
    }
    if let Some(Value::Seq(images)) = fk.spec.get("images") {
        for i in images.iter().filter_map(Value::as_map) {
            let e = ImageEntry {
                name: str_of(i, "name").unwrap_or_default(),
                new_name: str_of(i, "newName"),
                new_tag: i
                    .get("newTag")
                    .and_then(Value::scalar_string)
                    .filter(|s| !s.is_empty()),
                digest: str_of(i, "digest"),
            };
            match k.images.iter_mut().find(|x| x.name == e.name) {
                Some(x) => *x = e,
                None => k.images.push(e),
            }
        }
    }
    Ok(k)
}

fn selector(v: &Value) -> Result<kustomization::Selector, FluxError> {
    let m = v
        .as_map()
        .ok_or_else(|| FluxError::Invalid("patch target must be a mapping".into()))?;
    Ok(kustomization::Selector {
        group: str_of(m, "group"),
        version: str_of(m, "version"),
        kind: str_of(m, "kind"),
        name: str_of(m, "name"),
        namespace: str_of(m, "namespace"),
        label_selector: str_of(m, "labelSelector"),
        annotation_selector: str_of(m, "annotationSelector"),
    })
}

/// Variables for `substituteFrom`, looked up among the ConfigMaps/Secrets defined in the repository.
struct VarSource {
    values: HashMap<String, String>,
    opaque: Vec<String>,
}

fn find_var_source(repo: &Repo, kind: &str, name: &str, namespace: &str) -> Option<VarSource> {
    let mut fallback = None;
    for f in repo.tree_files() {
        let Some(Ok(docs)) = &f.yaml else { continue };
        for d in docs {
            let Some(m) = d.value.as_map() else { continue };
            if m.get("kind").and_then(Value::as_str) != Some(kind)
                || d.value
                    .get_path(&["metadata", "name"])
                    .and_then(Value::as_str)
                    != Some(name)
            {
                continue;
            }
            let ns = d
                .value
                .get_path(&["metadata", "namespace"])
                .and_then(Value::as_str)
                .unwrap_or_default();
            let src = var_source(m);
            if ns == namespace {
                return Some(src);
            }
            if fallback.is_none() {
                fallback = Some(src);
            }
        }
    }
    fallback
}

fn var_source(m: &Map) -> VarSource {
    let mut values = HashMap::new();
    let mut opaque = Vec::new();
    let encrypted = m.contains_key("sops");
    let secret = m.get("kind").and_then(Value::as_str) == Some("Secret");
    for field in ["data", "stringData"] {
        let Some(Value::Map(d)) = m.get(field) else {
            continue;
        };
        for (k, v) in d {
            let s = v.scalar_string().unwrap_or_default();
            if encrypted && s.starts_with("ENC[") {
                opaque.push(k.clone());
                continue;
            }
            let val = if secret && field == "data" {
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()
            } else {
                s
            };
            values.insert(k.clone(), val);
        }
    }
    VarSource { values, opaque }
}

/// A Flux build: the rendered objects plus notes (e.g. variables from encrypted Secrets left in place).
pub struct FluxBuild {
    pub output: Output,
    pub notes: Vec<String>,
}

/// Builds `fk` like kustomize-controller, including postBuild substitution.
pub fn build(repo: &Repo, fk: &FluxKustomization) -> Result<FluxBuild, FluxError> {
    let k = kustomization_for(repo, fk)?;
    let mut output = build_kustomization(
        &k,
        &Options {
            load_restrictor: LoadRestrictor::None,
        },
    )?;
    let mut notes = Vec::new();
    let Some(post) = fk.spec.get("postBuild").and_then(Value::as_map) else {
        return Ok(FluxBuild { output, notes });
    };
    let mut values: HashMap<String, String> = HashMap::new();
    let mut opaque: Vec<String> = Vec::new();
    if let Some(Value::Seq(from)) = post.get("substituteFrom") {
        for s in from.iter().filter_map(Value::as_map) {
            let kind = str_of(s, "kind").unwrap_or_default();
            let name = str_of(s, "name").unwrap_or_default();
            let optional = matches!(s.get("optional"), Some(Value::Bool(true)));
            match find_var_source(repo, &kind, &name, &fk.namespace) {
                Some(src) => {
                    if !src.opaque.is_empty() {
                        notes.push(format!(
                            "{kind}/{name} is SOPS-encrypted: ${{{}}} left unsubstituted",
                            src.opaque.join("}, ${")
                        ));
                    }
                    values.extend(src.values);
                    opaque.extend(src.opaque);
                }
                None if optional => {}
                None => notes.push(format!(
                    "substituteFrom {kind}/{name} is not defined in the repository (it may exist only in the cluster)"
                )),
            }
        }
    }
    if let Some(Value::Map(sub)) = post.get("substitute") {
        for (k, v) in sub {
            values.insert(
                k.clone(),
                v.scalar_string().unwrap_or_default().replace('\n', ""),
            );
            opaque.retain(|o| o != k);
        }
    }
    let name_ok = regex::Regex::new("^[_[:alpha:]][_[:alpha:][:digit:]]*$")
        .map_err(|e| FluxError::Invalid(e.to_string()))?;
    if let Some(bad) = values.keys().find(|k| !name_ok.is_match(k)) {
        return Err(FluxError::Invalid(format!(
            "'{bad}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
        )));
    }
    if values.is_empty() && opaque.is_empty() {
        return Ok(FluxBuild { output, notes });
    }
    let vars = Vars {
        values: &values,
        opaque: &opaque,
        strict: false,
    };
    for r in output.resources.iter_mut() {
        let key = "kustomize.toolkit.fluxcd.io/substitute";
        let disabled = |m: Option<&Map>| {
            m.and_then(|m| m.get(key)).and_then(Value::as_str) == Some("disabled")
        };
        if disabled(r.labels()) || disabled(r.annotations()) {
            continue;
        }
        let text =
            to_yaml(&Value::Map(r.obj.clone())).map_err(|e| FluxError::Invalid(e.to_string()))?;
        let out = substitute(&text, &vars)
            .map_err(|e| FluxError::Invalid(format!("{}: {e}", r.describe())))?;
        if out != text {
            match parse_value(&out) {
                Ok(Value::Map(m)) => r.obj = m,
                Ok(_) => {
                    return Err(FluxError::Invalid(format!(
                        "{}: substitution produced a non-object",
                        r.describe()
                    )));
                }
                Err(e) => {
                    return Err(FluxError::Invalid(format!(
                        "{}: YAML after substitution is invalid: {e}",
                        r.describe()
                    )));
                }
            }
        }
    }
    Ok(FluxBuild { output, notes })
}
