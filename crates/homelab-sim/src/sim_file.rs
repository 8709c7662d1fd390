//! `sim.json`: what `homelabctl sim` writes for clients — one section per simulator (`proxmox` now; the Image
//! Factory, Talos and Kubernetes simulators add theirs), kept as unknown keys by readers that do not know them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// File format version.
pub const SIM_FILE_VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxmox: Option<ProxmoxSection>,
    /// Sections of other simulators, kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Everything a Proxmox client needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxmoxSection {
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    pub node: String,
    /// e.g. `9.1.3`.
    pub pve_version: String,
    pub token_id: String,
    pub token_secret: String,
    /// SHA-256 of the node certificate, colon-separated upper-case hex.
    pub fingerprint: String,
    /// PEM of the simulated cluster CA.
    pub ca_file: PathBuf,
    pub iso_storage: String,
    pub vm_storage: String,
    pub bridge: String,
}

/// Why the file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SimFileError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a sim.json: {reason}")]
    Parse { path: PathBuf, reason: String },
}

impl SimFile {
    pub fn new() -> Self {
        SimFile {
            version: SIM_FILE_VERSION,
            proxmox: None,
            other: BTreeMap::new(),
        }
    }

    /// Reads a sim.json.
    pub fn read(path: &Path) -> Result<Self, SimFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimFileError::Read {
            path: path.into(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SimFileError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Writes atomically (temporary file + rename) with mode 0600: it holds the simulator's token secret.
    pub fn write(&self, path: &Path) -> Result<(), SimFileError> {
        let err = |source| SimFileError::Write {
            path: path.into(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        write_private(path, text.as_bytes()).map_err(err)
    }
}

impl Default for SimFile {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `data` to `path` atomically with mode 0600 (the simulator's files hold its token secret
/// and key material), creating the directory first.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    homelab_fs::write(path, data, homelab_fs::Mode::Private)
        .map_err(|e| std::io::Error::new(e.source.kind(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sections_survive_a_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sim.json");
        std::fs::write(
            &path,
            r#"{"version":1,"talos":{"apid":"127.0.20.100:50000"}}"#,
        )
        .expect("write");
        let mut f = SimFile::read(&path).expect("read");
        f.proxmox = Some(ProxmoxSection {
            endpoint: "https://127.0.0.1:1".into(),
            node: "pve".into(),
            pve_version: "9.1.3".into(),
            token_id: "a@pve!b".into(),
            token_secret: "s".into(),
            fingerprint: "AB".into(),
            ca_file: "ca.pem".into(),
            iso_storage: "local".into(),
            vm_storage: "local-lvm".into(),
            bridge: "vmbr0".into(),
        });
        f.write(&path).expect("write");
        let back = SimFile::read(&path).expect("read");
        assert_eq!(back.other["talos"]["apid"], "127.0.20.100:50000");
        assert_eq!(back.proxmox.map(|p| p.node).as_deref(), Some("pve"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
