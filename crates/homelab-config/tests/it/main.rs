//! Integration tests of homelab.yaml validation: invalid fixtures with exact positions, the shipped example,
//! the init template, and a property test that validation never panics.

mod fixtures;
mod never_panics;
mod valid;

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
