//! Schema validation for the tests: Kubernetes 1.35 local-strict schemas (with `$ref`s into the local
//! `_definitions.json`) for built-in kinds, the Flux and Kyverno CRD JSON schemas for the rest, and the
//! verdict of the real `kubernetes-validate` for built-in kinds.

use std::path::{Path, PathBuf};
use std::process::Command;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

use crate::support::shared_dir;

const K8S: &str = "schemas/kubernetes/v1.35.0-local-strict";
const CRDS: &[&str] = &[
    "schemas/crd-jsonschemas/flux",
    "schemas/crd-jsonschemas/kyverno",
];

/// Serves `https://kubernetes.io/api/…` references from the local schema directory; nothing else.
struct LocalKubernetes(PathBuf);

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
        let file = self.0.join(name);
        Ok(serde_json::from_slice(&std::fs::read(&file)?)?)
    }
}

/// Which schema applies to an object, and whether it is a built-in kind.
pub fn schema_path(object: &Value) -> (PathBuf, bool) {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind").to_lowercase();
    let shared = shared_dir();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    for dir in CRDS {
        let path = shared
            .join(dir)
            .join(format!("{group}_{kind}_{version}.json"));
        if !group.is_empty() && path.is_file() {
            return (path, false);
        }
    }
    let first_label = group.split('.').next().unwrap_or("");
    let name = if group.is_empty() {
        format!("{kind}-{version}.json")
    } else {
        format!("{kind}-{first_label}-{version}.json")
    };
    (shared.join(K8S).join(name), true)
}

/// A validator for an object's kind; panics (fails the test) when no schema exists for it.
pub fn validator(object: &Value) -> (Validator, bool) {
    let (path, builtin) = schema_path(object);
    let text = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "no schema for {}: {} ({e})",
            crate::support::id(object),
            path.display()
        )
    });
    let schema: Value = serde_json::from_slice(&text).expect("schema is JSON");
    let options = if builtin {
        jsonschema::options().with_retriever(LocalKubernetes(shared_dir().join(K8S)))
    } else {
        // kubeconform's CRD schemas carry no $schema; kubeconform compiles them as draft 4.
        jsonschema::options().with_draft(Draft::Draft4)
    };
    let validator = options
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {} compiles: {e}", path.display()));
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
