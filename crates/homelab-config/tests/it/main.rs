//! Integration tests of homelab.yaml validation: invalid fixtures with exact positions, the shipped example,
//! the init template, and a property test that validation never panics.

mod fixtures;
mod never_panics;
mod valid;

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository (`rel` from the workspace root) that a test needs: a missing or empty
/// one fails the test instead of quietly giving it nothing to check.
pub fn fixture(rel: &str) -> String {
    let path = workspace_root().join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => text,
        Ok(_) => panic!("fixture {} is empty", path.display()),
        Err(e) => panic!("fixture {}: {e}", path.display()),
    }
}
