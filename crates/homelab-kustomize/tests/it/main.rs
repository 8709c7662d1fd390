//! Integration tests of the kustomize build: differential against `kubectl kustomize`, fixtures, and
//! property tests of the YAML reader.

mod differential;
mod errors;
mod generated;
mod yaml_props;

use std::path::{Path, PathBuf};

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
