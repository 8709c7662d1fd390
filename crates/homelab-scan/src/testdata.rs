//! Locating the shared test data (`../shared` beside the workspace) from unit tests.

use std::path::PathBuf;

/// `HOMELAB_SHARED`, else `<workspace>/../shared`, else `/work/shared`, joined with `rel`.
pub fn shared_path(rel: &str) -> PathBuf {
    let base = std::env::var_os("HOMELAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
            if ws.is_dir() {
                ws
            } else {
                PathBuf::from("/work/shared")
            }
        });
    base.join(rel)
}
