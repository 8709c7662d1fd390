//! Integration tests for homelab-talos (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clientconfig;
mod configpatcher;
mod factory;
mod import;
mod machine_config;
mod props;
mod secrets;

use std::path::PathBuf;

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn talos_fixture(rel: &str) -> String {
    let path = testdata().join("talos-v1.12.4").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One generated bundle shared by the tests (RSA-4096 generation takes seconds).
pub fn generated_bundle() -> &'static homelab_talos::secrets::SecretsBundle {
    static BUNDLE: std::sync::OnceLock<homelab_talos::secrets::SecretsBundle> =
        std::sync::OnceLock::new();
    BUNDLE
        .get_or_init(|| homelab_talos::secrets::SecretsBundle::generate().expect("generate bundle"))
}
