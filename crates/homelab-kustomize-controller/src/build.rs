//! Building a Flux `Kustomization` the way kustomize-controller does: find them among the repository's
//! manifests, build each `spec.path` (generate a kustomization when there is none; add targetNamespace,
//! namePrefix/nameSuffix, patches, components and images; build with LoadRestrictionsNone), then postBuild
//! substitution from `substitute` and the `substituteFrom` ConfigMaps/Secrets found in the repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use homelab_kustomize::kustomization::{self, Kustomization, PatchEntry};
use homelab_kustomize::yaml::{Document, Map, Value, parse_value, to_yaml};
use homelab_kustomize::{LoadRestrictor, Options, Output, build_kustomization};

use crate::FluxError;
use crate::envsubst::{Vars, substitute};
use crate::spec::{self, Spec};

/// One parsed YAML document of the repository, with the repository-relative file it is in.
#[derive(Clone, Copy)]
pub struct TreeDoc<'a> {
    pub file: &'a str,
    pub doc: &'a Document,
}

/// A Flux `Kustomization` found in the tree.
#[derive(Debug, Clone)]
pub struct FluxKustomization {
    pub name: String,
    pub namespace: String,
    /// Repository-relative file and line of its definition.
    pub file: String,
    pub line: usize,
    /// Its `spec`, as written.
    pub spec: Map,
}

/// Every Flux Kustomization among `docs`, in their order.
pub fn discover<'a>(docs: impl IntoIterator<Item = TreeDoc<'a>>) -> Vec<FluxKustomization> {
    let mut out = Vec::new();
    for TreeDoc { file, doc: d } in docs {
        let Some(m) = d.value.as_map() else { continue };
        let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
        if !spec::is_flux_kustomization(field("apiVersion"), field("kind")) {
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
            file: file.to_string(),
            line: d.line,
            spec: m
                .get("spec")
                .and_then(Value::as_map)
                .cloned()
                .unwrap_or_default(),
        });
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

/// The kustomization kustomize-controller would build for `fk`, the repository checked out at `root`.
pub fn kustomization_for(root: &Path, fk: &FluxKustomization) -> Result<Kustomization, FluxError> {
    let spec = Spec::from_map(&fk.spec)?;
    kustomization_of(root, &spec)
}

fn kustomization_of(root: &Path, spec: &Spec) -> Result<Kustomization, FluxError> {
    let path = spec.path.clone().unwrap_or_else(|| "./".into());
    let dir: PathBuf = root.join(path.trim_start_matches("./"));
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
    if let Some(ns) = &spec.target_namespace {
        k.namespace = Some(ns.clone());
    }
    if let Some(p) = &spec.name_prefix {
        k.name_prefix = Some(p.clone());
    }
    if let Some(s) = &spec.name_suffix {
        k.name_suffix = Some(s.clone());
    }
    for p in &spec.patches {
        k.patches.push(PatchEntry {
            patch: p.patch.clone(),
            path: None,
            target: p.target.clone(),
        });
    }
    for c in &spec.components {
        if c.contains("://") || Path::new(c).is_absolute() {
            return Err(FluxError::Invalid(format!(
                "component {c:?} must be a local relative path"
            )));
        }
        if !dir.join(c).is_dir() && spec.ignore_missing_components {
            continue;
        }
        k.components.push(c.clone());
    }
    for e in &spec.images {
        match k.images.iter_mut().find(|x| x.name == e.name) {
            Some(x) => *x = e.clone(),
            None => k.images.push(e.clone()),
        }
    }
    Ok(k)
}

/// Variables for `substituteFrom`, looked up among the ConfigMaps/Secrets defined in the repository.
struct VarSource {
    values: HashMap<String, String>,
    opaque: Vec<String>,
}

fn find_var_source(
    docs: &[TreeDoc<'_>],
    kind: &str,
    name: &str,
    namespace: &str,
) -> Option<VarSource> {
    let mut fallback = None;
    for TreeDoc { doc: d, .. } in docs {
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

/// Builds `fk` like kustomize-controller, including postBuild substitution: the repository is checked out
/// at `root`, and `docs` are its manifests (where `substituteFrom` ConfigMaps and Secrets are looked up).
pub fn build(
    root: &Path,
    docs: &[TreeDoc<'_>],
    fk: &FluxKustomization,
) -> Result<FluxBuild, FluxError> {
    let spec = Spec::from_map(&fk.spec)?;
    let k = kustomization_of(root, &spec)?;
    let mut output = build_kustomization(
        &k,
        &Options {
            load_restrictor: LoadRestrictor::None,
        },
    )?;
    let mut notes = Vec::new();
    let Some(post) = &spec.post_build else {
        return Ok(FluxBuild { output, notes });
    };
    let mut values: HashMap<String, String> = HashMap::new();
    let mut opaque: Vec<String> = Vec::new();
    for s in &post.substitute_from {
        let (kind, name, optional) = (&s.kind, &s.name, s.optional);
        match find_var_source(docs, kind, name, &fk.namespace) {
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
    for (k, v) in &post.substitute {
        values.insert(k.clone(), v.replace('\n', ""));
        opaque.retain(|o| o != k);
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
        let key = spec::SUBSTITUTE_KEY;
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
