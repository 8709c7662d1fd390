//! The simulator's durable state as data — what a real PVE node keeps on disk: its identity (certificates,
//! API token, node name, version, address), VM configs and power state, storage contents and DHCP leases.
//! Tasks, config locks (their tasks are gone), the ACL and the fault plan are not kept: they come from options.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::schema::PveVersion;
use super::state::{Vm, Volume, World};
use super::tls::SimIdentity;

/// Everything needed to bring the simulator back as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxmoxSnapshot {
    pub version: PveVersion,
    pub node: String,
    pub bind: Ipv4Addr,
    pub port: u16,
    pub token_id: String,
    pub token_secret: String,
    pub identity: SimIdentity,
    pub vms: Vec<VmSnapshot>,
    /// `storage → volname → volume`.
    pub volumes: BTreeMap<String, BTreeMap<String, VolumeSnapshot>>,
    /// `lower-case MAC → address`.
    pub leases: BTreeMap<String, Ipv4Addr>,
    pub next_pid: u32,
}

/// A VM: its config and whether it runs (a running VM boots again on restore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSnapshot {
    pub vmid: u32,
    /// The node it lives on (absent in snapshots of a one-node simulator: the API's node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub config: BTreeMap<String, String>,
    pub running: bool,
    pub address: Option<Ipv4Addr>,
    /// The Secure Boot state of its EFI vars (enrolled keys survive a restart).
    #[serde(default)]
    pub firmware: super::firmware::SecureBoot,
}

/// A volume; the bytes of a file-like volume (an ISO) travel beside it, named by their SHA-256 (`blob`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSnapshot {
    pub content: String,
    pub size: u64,
    pub format: String,
    pub ctime: u64,
    pub vmid: Option<u32>,
    /// Lower-case hex SHA-256 of the bytes, when the volume has bytes.
    pub blob: Option<String>,
    /// The bytes (not serialised: the caller stores them by `blob`).
    #[serde(skip)]
    pub data: Option<Arc<Vec<u8>>>,
}

impl VolumeSnapshot {
    fn of(v: &Volume) -> Self {
        VolumeSnapshot {
            content: v.content.clone(),
            size: v.size,
            format: v.format.clone(),
            ctime: v.ctime,
            vmid: v.vmid,
            blob: v
                .data
                .as_ref()
                .map(|d| hex::encode(Sha256::digest(d.as_slice()))),
            data: v.data.clone(),
        }
    }

    fn to_volume(&self) -> Volume {
        Volume {
            content: self.content.clone(),
            size: self.size,
            format: self.format.clone(),
            ctime: self.ctime,
            vmid: self.vmid,
            data: self.data.clone(),
        }
    }
}

/// The state part of a snapshot (identity and address are added by the caller, which owns them).
pub(crate) struct WorldPart {
    pub vms: Vec<VmSnapshot>,
    pub volumes: BTreeMap<String, BTreeMap<String, VolumeSnapshot>>,
    pub leases: BTreeMap<String, Ipv4Addr>,
    pub next_pid: u32,
}

impl World {
    /// The durable part of the world.
    pub(crate) fn snapshot(&self) -> WorldPart {
        WorldPart {
            vms: self
                .vms
                .values()
                .map(|vm| VmSnapshot {
                    vmid: vm.vmid,
                    node: (vm.node != self.node).then(|| vm.node.clone()),
                    config: vm.config.clone(),
                    running: vm.running,
                    address: vm.address,
                    firmware: vm.firmware.clone(),
                })
                .collect(),
            volumes: self
                .storages
                .iter()
                .map(|(id, s)| {
                    let vols = s
                        .volumes
                        .iter()
                        .map(|(n, v)| (n.clone(), VolumeSnapshot::of(v)));
                    (id.clone(), vols.collect())
                })
                .collect(),
            leases: self.leases.clone(),
            next_pid: self.next_pid,
        }
    }

    /// Puts a snapshot's VMs, volumes (of the storages that exist) and leases back. Running VMs count as
    /// just booted; locks are gone with the tasks that held them.
    pub(crate) fn restore(&mut self, snap: &ProxmoxSnapshot) {
        self.next_pid = self.next_pid.max(snap.next_pid);
        self.leases = snap.leases.clone();
        for (id, vols) in &snap.volumes {
            if let Some(storage) = self.storages.get_mut(id) {
                storage.volumes = vols
                    .iter()
                    .map(|(n, v)| (n.clone(), v.to_volume()))
                    .collect();
            }
        }
        for vm in &snap.vms {
            self.next_pid += 1;
            self.vms.insert(
                vm.vmid,
                Vm {
                    vmid: vm.vmid,
                    node: vm.node.clone().unwrap_or_else(|| self.node.clone()),
                    config: vm.config.clone(),
                    running: vm.running,
                    lock: None,
                    started_at: vm.running.then(std::time::Instant::now),
                    pid: self.next_pid,
                    address: vm.address,
                    flock: false,
                    firmware: vm.firmware.clone(),
                    boot_refused: None,
                },
            );
        }
    }
}
