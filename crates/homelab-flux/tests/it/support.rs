//! Test helpers: the reference configuration, writing a tree to disk, and the real `kubectl kustomize`.

use std::path::{Path, PathBuf};
use std::process::Command;

use homelab_config::Config;
use homelab_config::template::{self, InitValues};
use serde_json::Value;

/// The configuration `homelabctl init` writes for `values`, parsed the way init parses it.
pub fn config_for(values: &InitValues) -> Config {
    let text = template::homelab_yaml(values);
    homelab_config::parse(&text, None)
        .expect("the init template is valid")
        .config
}

pub fn reference_config() -> Config {
    config_for(&InitValues::reference())
}

/// Writes the tree for `config` under `dir` and returns the tree root (`dir/<gitops.path>`).
pub fn write_tree(config: &Config, dir: &Path) -> PathBuf {
    for file in homelab_flux::tree(config).expect("tree") {
        let path = dir.join(&file.path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &file.contents).expect("write");
    }
    dir.join(&config.gitops.as_ref().expect("gitops").path)
}

/// Every directory under `root` holding a kustomization.yaml, sorted.
pub fn kustomization_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("kustomization.yaml").is_file() {
            out.push(dir.clone());
        }
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The objects `kubectl kustomize DIR` renders (the real kustomize, v5.5.0 on this machine).
pub fn kustomize_build(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("kustomize output parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `kind/namespace/name` of an object, for comparing sets.
pub fn id(object: &Value) -> String {
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or(""),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or("")
    )
}
