//! Finds the project's shared data directory (schemas, test vectors): `HOMELAB_SHARED`, else
//! `<workspace root>/../shared`, else `/work/shared`.

use std::path::PathBuf;

/// The shared data directory, or `None` when none of the candidates exists.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOMELAB_SHARED") {
        return Some(PathBuf::from(dir));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    [workspace.join("../shared"), PathBuf::from("/work/shared")]
        .into_iter()
        .find(|p| p.is_dir())
}
