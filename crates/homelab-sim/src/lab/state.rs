//! `lab.json`: a lab's whole durable state in its state directory — the Proxmox simulator (identity, VMs,
//! volumes, leases), the Image Factory (address, schematics), the lab's DHCP leases and each Talos node's disk —
//! plus `blobs/<sha256>` for the bytes of ISO volumes and `etcd/<vmid>.json` for a control plane's Kubernetes
//! objects. Written atomically with mode 0600: it holds the
//! simulator's token secret and certificate key (simulator credentials, never real ones).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kube::StoreSnapshot;
use crate::proxmox::ProxmoxSnapshot;
use crate::sim_file::write_private;
use crate::talos::NodeSnapshot;

/// The file format version.
pub const LAB_STATE_VERSION: u32 = 1;
/// The file name in the state directory.
pub const LAB_STATE_FILE: &str = "lab.json";
const BLOBS: &str = "blobs";
const ETCD: &str = "etcd";

/// Everything a stopped lab needs to come back as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    pub version: u32,
    pub proxmox: ProxmoxSnapshot,
    pub factory: FactoryState,
    /// The first address the lab's "DHCP" hands out.
    pub dhcp_first: Ipv4Addr,
    /// `lower-case MAC → address`, in the order they were handed out.
    pub leases: BTreeMap<String, Ipv4Addr>,
    /// `vmid → node`.
    pub nodes: BTreeMap<u32, SavedNode>,
}

/// The Image Factory simulator: where it listens and the schematics it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryState {
    pub addr: SocketAddr,
    pub schematics: BTreeMap<String, String>,
}

/// A VM's Talos node: its maintenance (DHCP) address and, once configured, its disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedNode {
    pub maintenance_addr: SocketAddr,
    pub disk: Option<NodeSnapshot>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a lab state file: {reason}; remove the directory to start an empty lab")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "{dir} is in use by another running simulator (`homelabctl sim` or `demo`); stop it first"
    )]
    Busy { dir: PathBuf },
}

impl LabState {
    /// Reads `dir/lab.json` (and the ISO bytes it names); `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, StateError> {
        let path = dir.join(LAB_STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let parse = |reason: String| StateError::Parse {
            path: path.clone(),
            reason,
        };
        let mut state: LabState = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        if state.version != LAB_STATE_VERSION {
            return Err(parse(format!("unknown version {}", state.version)));
        }
        state.check_loopback().map_err(parse)?;
        state.load_blobs(dir)?;
        state.load_etcd(dir)?;
        Ok(Some(state))
    }

    /// Every address a lab would listen on must be in 127.0.0.0/8.
    fn check_loopback(&self) -> Result<(), String> {
        let mut addrs = vec![self.proxmox.bind, self.dhcp_first];
        addrs.extend(self.leases.values());
        let mut ips: Vec<std::net::IpAddr> = addrs.into_iter().map(Into::into).collect();
        ips.push(self.factory.addr.ip());
        ips.extend(self.nodes.values().map(|n| n.maintenance_addr.ip()));
        match ips.into_iter().find(|ip| !ip.is_loopback()) {
            Some(ip) => Err(format!("{ip} is not a loopback address (127.0.0.0/8)")),
            None => Ok(()),
        }
    }

    fn load_blobs(&mut self, dir: &Path) -> Result<(), StateError> {
        for vol in self
            .proxmox
            .volumes
            .values_mut()
            .flat_map(|v| v.values_mut())
        {
            let Some(blob) = &vol.blob else { continue };
            let path = blob_path(dir, blob).ok_or_else(|| StateError::Parse {
                path: dir.join(LAB_STATE_FILE),
                reason: format!("bad blob name {blob:?}"),
            })?;
            let data = std::fs::read(&path).map_err(|source| StateError::Read { path, source })?;
            vol.data = Some(Arc::new(data));
        }
        Ok(())
    }

    fn load_etcd(&mut self, dir: &Path) -> Result<(), StateError> {
        for (vmid, node) in &mut self.nodes {
            let Some(disk) = node.disk.as_mut().filter(|d| d.etcd.is_some()) else {
                continue;
            };
            let path = etcd_path(dir, *vmid);
            let text = std::fs::read_to_string(&path).map_err(|source| StateError::Read {
                path: path.clone(),
                source,
            })?;
            let data = serde_json::from_str(&text).map_err(|e| StateError::Parse {
                path,
                reason: e.to_string(),
            })?;
            disk.etcd_data = Some(data);
        }
        Ok(())
    }

    /// The file's bytes (what [`LabState::write`] puts in `lab.json`).
    pub fn to_bytes(&self, dir: &Path) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec_pretty(self).map_err(|e| StateError::Write {
            path: dir.join(LAB_STATE_FILE),
            source: std::io::Error::other(e),
        })
    }

    /// Writes the ISO bytes not yet in `dir/blobs`.
    pub fn write_blobs(&self, dir: &Path) -> Result<(), StateError> {
        for vol in self.proxmox.volumes.values().flat_map(|v| v.values()) {
            let (Some(blob), Some(data)) = (&vol.blob, &vol.data) else {
                continue;
            };
            let Some(path) = blob_path(dir, blob) else {
                continue;
            };
            if !path.exists() {
                write_private(&path, data).map_err(|source| StateError::Write { path, source })?;
            }
        }
        Ok(())
    }

    /// Writes `dir/lab.json` (`bytes` from [`LabState::to_bytes`]), after the blobs and etcd data it names.
    pub fn write(dir: &Path, bytes: &[u8]) -> Result<(), StateError> {
        let path = dir.join(LAB_STATE_FILE);
        write_private(&path, bytes).map_err(|source| StateError::Write { path, source })
    }
}

/// Writes a node's etcd objects to `dir/etcd/<vmid>.json`.
pub fn write_etcd(dir: &Path, vmid: u32, data: &StoreSnapshot) -> Result<(), StateError> {
    let path = etcd_path(dir, vmid);
    let bytes = serde_json::to_vec(data).map_err(|e| StateError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_private(&path, &bytes).map_err(|source| StateError::Write { path, source })
}

fn etcd_path(dir: &Path, vmid: u32) -> PathBuf {
    dir.join(ETCD).join(format!("{vmid}.json"))
}

/// Creates the state directory (and its parents) and makes it private to the user (0700 on Unix).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Holds `dir/lab.lock` exclusively while a lab runs on `dir`, so two labs never share a state directory
/// (the lock goes with the returned file, also when the process is killed).
pub(crate) fn lock_dir(dir: &Path) -> Result<std::fs::File, StateError> {
    let path = dir.join("lab.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StateError::Write {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Busy {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StateError::Write { path, source }),
    }
}

/// `dir/blobs/<hex>`, for a name that is lower-case hex only (never a path).
fn blob_path(dir: &Path, blob: &str) -> Option<PathBuf> {
    let hex = !blob.is_empty()
        && blob
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| dir.join(BLOBS).join(blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_never_leave_the_blob_directory() {
        let dir = Path::new("/s");
        assert_eq!(blob_path(dir, "ab01"), Some(PathBuf::from("/s/blobs/ab01")));
        assert_eq!(blob_path(dir, "../lab.json"), None);
        assert_eq!(blob_path(dir, ""), None);
    }

    #[test]
    fn a_missing_state_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(LabState::read(dir.path()).expect("read").is_none());
        std::fs::write(dir.path().join(LAB_STATE_FILE), "{nope").expect("write");
        let err = LabState::read(dir.path()).expect_err("garbage");
        assert!(err.to_string().contains("is not a lab state file"), "{err}");
    }
}
