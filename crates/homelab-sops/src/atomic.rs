//! Atomic file replacement: write a temporary file beside the target, then rename it over the target, so a
//! failure never leaves a half-written or truncated file.

use std::io::Write;
use std::path::Path;

use crate::error::SopsError;

/// Writes `bytes` to `path` atomically. `mode` sets Unix permissions (e.g. `0o600` for plaintext); otherwise
/// an existing file's permissions are kept.
pub fn write(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), SopsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".homelab-sops-")
        .tempfile_in(dir)
        .map_err(|e| SopsError::io(dir, "creating a temporary file in", e))?;
    tmp.write_all(bytes)
        .map_err(|e| SopsError::io(tmp.path(), "writing", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| SopsError::io(tmp.path(), "syncing", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perm = match (mode, std::fs::metadata(path)) {
            (Some(m), _) => Some(std::fs::Permissions::from_mode(m)),
            (None, Ok(meta)) => Some(meta.permissions()),
            (None, Err(_)) => Some(std::fs::Permissions::from_mode(0o644)),
        };
        if let Some(p) = perm {
            std::fs::set_permissions(tmp.path(), p)
                .map_err(|e| SopsError::io(tmp.path(), "setting permissions on", e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path)
        .map_err(|e| SopsError::io(path, "replacing", e.error))?;
    Ok(())
}
