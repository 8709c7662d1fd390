//! Locating the repository's test data (`testdata/` at the workspace root) from unit tests.

use std::path::PathBuf;

/// `rel` inside the repository's test data (`testdata/` at the workspace root; see its README).
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}
