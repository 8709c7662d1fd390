//! Integration tests of the kustomize build: differential against `kubectl kustomize`, fixtures, and
//! property tests of the YAML reader.

mod differential;
mod errors;
mod generated;
mod yaml_props;

use std::path::{Path, PathBuf};

/// `../shared` per HELPERS.md: `HOMELAB_SHARED`, else `<workspace>/../shared`, else `/work/shared`.
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("HOMELAB_SHARED") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let beside = ws.join("../shared");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared")
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
