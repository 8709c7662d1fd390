//! The non-secret journal under `.homelab/`: what homelabctl last applied, so plans can show document
//! diffs and resumes can say where they stopped. Never required for correctness: live state decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What was last applied to one node's Talos config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedConfig {
    /// SHA-256 of the full (secret-bearing) config: a digest, not the secret.
    pub sha256: String,
    /// The config with every secret masked, for diffs.
    pub redacted: String,
    /// The installer image that config names (`machine.install.image`): the Talos version and schematic
    /// the node was last installed or upgraded with, so a schematic change shows as an upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer_image: Option<String>,
}

/// An Upgrade a node was about to be asked for, or acknowledged, whose outcome was not seen yet (the run
/// may have been killed): a rerun waits for that outcome once the node rebooted instead of asking again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRequested {
    pub from: String,
    pub image: String,
    /// The node's boot ID before it was asked: a different one means it rebooted (absent in journals
    /// written before boot IDs were read, which then wait for the node to go away and come back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// The VM settings homelabctl last applied, to tell drift (changed in Proxmox) from a changed homelab.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord(pub BTreeMap<String, String>);

impl VmRecord {
    pub fn get(&self, field: &str) -> String {
        self.0.get(field).cloned().unwrap_or_default()
    }

    /// (field, value) in a stable, readable order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        VM_FIELDS.iter().map(|f| (*f, self.get(f))).collect()
    }
}

const VM_FIELDS: &[&str] = &[
    "name", "cores", "memory", "disk", "mac", "bridge", "vlan", "iso",
];

/// The record of `wanted`, in the units the plan shows (memory MiB, disk `storage:GiB`).
pub fn vm_record(wanted: &crate::ports::VmWanted) -> VmRecord {
    let values = [
        ("name", wanted.name.clone()),
        ("cores", wanted.cores.to_string()),
        ("memory", wanted.memory_mib.to_string()),
        (
            "disk",
            format!("{}:{}G", wanted.disk_storage, wanted.disk_gib),
        ),
        ("mac", wanted.mac.to_ascii_uppercase()),
        ("bridge", wanted.bridge.clone()),
        (
            "vlan",
            wanted.vlan.map(|v| v.to_string()).unwrap_or_default(),
        ),
        ("iso", wanted.iso_volume.clone()),
    ];
    VmRecord(
        values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// Where a node homelabctl created lives, so it can still be removed once homelab.yaml no longer names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub vm_id: u32,
    pub proxmox_node: String,
    /// Its static address (where apid answers once installed).
    pub address: std::net::IpAddr,
    pub control_plane: bool,
}

/// How far a replacement asked for with `homelabctl replace` got: the old node is being retired (drained,
/// out of etcd, reset, its VM deleted), or it is gone and the normal flow builds the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplacePhase {
    Retiring,
    Rebuilding,
}

/// The record of where `node` lives.
pub fn node_record(node: &homelab_config::Node) -> NodeRecord {
    NodeRecord {
        vm_id: node.vm_id,
        proxmox_node: node.proxmox_node.clone(),
        address: node.network.address.address,
        control_plane: node.role == homelab_config::Role::Controlplane,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub vms: BTreeMap<String, VmRecord>,
    #[serde(default)]
    pub machine_configs: BTreeMap<String, AppliedConfig>,
    /// The last step a run completed, for "resuming after …" messages.
    #[serde(default)]
    pub last_step: Option<String>,
    /// Upgrades requested and not yet seen through, per node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upgrades: BTreeMap<String, UpgradeRequested>,
    /// The nodes homelabctl created, by name, with where they live.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Replacements asked for and not finished, per node: a rerun continues them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replacing: BTreeMap<String, ReplacePhase>,
}

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Journal {
    /// Forgets node `name` entirely (it was removed, or nothing was left of it).
    pub fn forget(&mut self, name: &str) {
        self.nodes.remove(name);
        self.vms.remove(name);
        self.machine_configs.remove(name);
        self.upgrades.remove(name);
        self.replacing.remove(name);
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("journal.json")
    }

    /// Reads the journal; a missing or unreadable one is empty (it is only a hint).
    pub fn load(state_dir: &Path) -> Self {
        std::fs::read_to_string(Self::path(state_dir))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Writes the journal atomically.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        homelab_fs::write(
            &Self::path(state_dir),
            &bytes,
            homelab_fs::Mode::KeepOr(0o644),
        )
        .map_err(|e| std::io::Error::new(e.source.kind(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Journal::load(dir.path()), Journal::default());
        let mut j = Journal::default();
        j.machine_configs.insert(
            "cp".into(),
            AppliedConfig {
                sha256: digest(b"x"),
                redacted: "a: '***'\n".into(),
                installer_image: None,
            },
        );
        j.save(dir.path()).expect("save");
        assert_eq!(Journal::load(dir.path()), j);
        std::fs::write(Journal::path(dir.path()), "{not json").expect("write");
        assert_eq!(Journal::load(dir.path()), Journal::default());
    }
}
