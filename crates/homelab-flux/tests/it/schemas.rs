//! Schema validation for the tests: Kubernetes 1.35 local-strict schemas (with `$ref`s into
//! `_definitions.json`) for built-in kinds, the Flux and Kyverno CRD JSON schemas for the rest (all from
//! the store built into the binary, `homelab-schemas`), and the verdict of the real `kubernetes-validate`
//! for built-in kinds.

use std::path::Path;
use std::process::Command;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

const K8S: &str = "kubernetes/v1.35.0-local-strict";

/// Serves `https://kubernetes.io/api/…` references from the built-in Kubernetes schemas; nothing else.
struct LocalKubernetes;

impl Retrieve for LocalKubernetes {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path
            .strip_prefix("/api/")
            .filter(|_| uri.authority().map(|a| a.as_str()) == Some("kubernetes.io"))
            .ok_or_else(|| format!("refusing to fetch {uri}: only local schemas are used"))?;
        let bytes = homelab_schemas::get(&format!("{K8S}/{name}"))?
            .ok_or_else(|| format!("no built-in schema {name}"))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Which built-in schema applies to an object (its name in `homelab-schemas`), and whether it is a
/// built-in kind.
pub fn schema_path(object: &Value) -> (String, bool) {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind").to_lowercase();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let crd = format!("crds/{group}/{kind}_{version}.json");
    if !group.is_empty() && homelab_schemas::contains(&crd) {
        return (crd, false);
    }
    let first_label = group.split('.').next().unwrap_or("");
    let name = if group.is_empty() {
        format!("{kind}-{version}.json")
    } else {
        format!("{kind}-{first_label}-{version}.json")
    };
    (format!("{K8S}/{name}"), true)
}

/// A validator for an object's kind; panics (fails the test) when no schema exists for it.
pub fn validator(object: &Value) -> (Validator, bool) {
    let (path, builtin) = schema_path(object);
    let text = homelab_schemas::get(&path)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no schema for {}: {path}", crate::support::id(object)));
    let schema: Value = serde_json::from_slice(&text).expect("schema is JSON");
    let options = if builtin {
        jsonschema::options().with_retriever(LocalKubernetes)
    } else {
        // kubeconform's CRD schemas carry no $schema; kubeconform compiles them as draft 4.
        jsonschema::options().with_draft(Draft::Draft4)
    };
    let validator = options
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {path} compiles: {e}"));
    (validator, builtin)
}

/// Our verdict: every schema error for `object`.
pub fn errors(object: &Value) -> Vec<String> {
    let (validator, _) = validator(object);
    validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

pub fn is_builtin(object: &Value) -> bool {
    schema_path(object).1
}

/// The verdict of `kubernetes-validate -k 1.35.0 --strict` on `object`, written to a file in `dir`.
pub fn kubernetes_validate(object: &Value, dir: &Path, file_name: &str) -> bool {
    let path = dir.join(file_name);
    std::fs::write(&path, serde_json::to_string(object).expect("json")).expect("write");
    let out = Command::new("kubernetes-validate")
        .args(["-k", "1.35.0", "--strict", "--quiet"])
        .arg(&path)
        .output()
        .expect("kubernetes-validate is installed (pip install kubernetes-validate==1.37.0)");
    out.status.success()
}
