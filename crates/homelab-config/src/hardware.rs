//! A node's VM beyond the basics: how it gets its address (a DHCP reservation or a static address through a
//! cloud-init drive), extra data disks and extra NICs; their reading from `homelab.yaml` and their checks,
//! including where the control planes are placed across Proxmox hosts.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::model::{Config, Platform, Role};
use crate::net::Mac;

/// How a node gets its address in maintenance mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Addressing {
    /// `true` (the default): a DHCP reservation for the node's MAC hands out its address. `false`: the VM
    /// gets a cloud-init (NoCloud) drive with the address, gateway and nameservers, which Talos' `nocloud`
    /// platform reads, so no DHCP server is involved.
    pub dhcp: bool,
    /// DNS search domain for the cloud-init drive (`searchdomain`).
    pub search_domain: Option<String>,
}

impl Default for Addressing {
    fn default() -> Self {
        Self {
            dhcp: true,
            search_domain: None,
        }
    }
}

impl Addressing {
    /// Whether the address comes from a cloud-init drive.
    pub fn is_static(&self) -> bool {
        !self.dhcp
    }
}

/// An extra data disk: a `scsiN` volume on the VM and a Talos `UserVolumeConfig` that formats and mounts it
/// at `/var/mnt/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraDisk {
    /// The user volume's name (`/var/mnt/<name>`).
    pub name: String,
    pub size_gib: u64,
    /// Proxmox storage with content type `images`.
    pub storage: String,
}

/// An extra NIC (`net1`, `net2`, … in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtraNic {
    pub bridge: String,
    /// VLAN tag 1–4094.
    pub vlan: Option<u16>,
    /// A fixed MAC; `None` lets Proxmox pick one.
    pub mac: Option<Mac>,
}

/// Keys of `nodes[].disks[]`.
pub const EXTRA_DISK_KEYS: &[&str] = &["name", "size", "storage"];
/// Keys of `nodes[].nics[]`.
pub const EXTRA_NIC_KEYS: &[&str] = &["bridge", "vlan", "mac"];

/// The highest number of extra disks: `scsi1`…`scsi30` (PVE's `scsi[n]` goes up to 30; `scsi0` is the system
/// disk).
pub const MAX_EXTRA_DISKS: usize = 30;
/// The highest number of extra NICs: `net1`…`net31`.
pub const MAX_EXTRA_NICS: usize = 31;

/// Whether `name` is a valid user volume name: Talos mounts it as `/var/mnt/<name>` and labels the
/// partition `u-<name>`, so it is a short lower-case label.
pub fn is_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 34
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Findings about addressing, extra hardware and placement; each is `(path, is_error, message, hint)`.
pub(crate) fn findings(config: &Config) -> Vec<(String, bool, String, String)> {
    let mut out = Vec::new();
    for (i, node) in config.nodes.iter().enumerate() {
        if node.addressing.is_static() && config.image.platform == Platform::Metal {
            out.push((
                format!("nodes[{i}].network.dhcp"),
                true,
                "a static address without DHCP needs the nocloud platform: the metal image never reads \
                 the cloud-init drive"
                    .to_string(),
                "set `image.platform: nocloud` (the default), or keep `dhcp: true` with a DHCP reservation"
                    .to_string(),
            ));
        }
        if node.extra_disks.len() > MAX_EXTRA_DISKS {
            out.push((
                format!("nodes[{i}].disks"),
                true,
                format!(
                    "{} extra disks; a VM has room for {MAX_EXTRA_DISKS} (scsi1–scsi30)",
                    node.extra_disks.len()
                ),
                "remove some disks".to_string(),
            ));
        }
        if node.extra_nics.len() > MAX_EXTRA_NICS {
            out.push((
                format!("nodes[{i}].nics"),
                true,
                format!(
                    "{} extra NICs; a VM has room for {MAX_EXTRA_NICS} (net1–net31)",
                    node.extra_nics.len()
                ),
                "remove some NICs".to_string(),
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (j, disk) in node.extra_disks.iter().enumerate() {
            if !is_volume_name(&disk.name) {
                out.push((
                    format!("nodes[{i}].disks[{j}].name"),
                    true,
                    format!("`{}` is not a valid volume name", disk.name),
                    "use lower-case letters, digits and `-`, at most 34 characters (it is mounted at /var/mnt/NAME)"
                        .to_string(),
                ));
            }
            if let Some(first) = names.insert(&disk.name, j) {
                out.push((
                    format!("nodes[{i}].disks[{j}].name"),
                    true,
                    format!("volume name `{}` is used twice on this node", disk.name),
                    format!("disks[{first}] has it too; each volume needs its own name"),
                ));
            }
        }
    }
    let mut macs: HashMap<String, String> = HashMap::new();
    for (i, node) in config.nodes.iter().enumerate() {
        macs.insert(
            node.network.mac.to_string(),
            format!("nodes[{i}].network.mac"),
        );
    }
    for (i, node) in config.nodes.iter().enumerate() {
        for (j, nic) in node.extra_nics.iter().enumerate() {
            let Some(mac) = &nic.mac else { continue };
            let path = format!("nodes[{i}].nics[{j}].mac");
            if !mac.is_unicast() {
                out.push((
                    path.clone(),
                    true,
                    format!("MAC {mac} is a multicast address"),
                    "the first octet must be even".to_string(),
                ));
            }
            if let Some(first) = macs.insert(mac.to_string(), path.clone()) {
                out.push((
                    path,
                    true,
                    format!("MAC {mac} is used twice"),
                    format!("{first} has it too; each NIC needs its own"),
                ));
            }
        }
    }
    out.extend(placement_findings(config));
    out
}

/// Control planes that share a Proxmox host: that host going down takes several etcd members with it.
fn placement_findings(config: &Config) -> Vec<(String, bool, String, String)> {
    let cps = config.control_planes().count();
    if cps < 2 {
        return Vec::new();
    }
    let mut by_host: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for (i, node) in config.nodes.iter().enumerate() {
        if node.role == Role::Controlplane {
            by_host
                .entry(node.proxmox_node.as_str())
                .or_default()
                .push((i, node.name.as_str()));
        }
    }
    let quorum = cps / 2 + 1;
    by_host
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(host, members)| {
            let names: Vec<&str> = members.iter().map(|(_, n)| *n).collect();
            let breaks = if cps - members.len() < quorum {
                "losing that host loses etcd quorum"
            } else {
                "losing that host takes several etcd members at once"
            };
            (
                // Reported at the second control plane on the host: the first one placed there is fine.
                format!("nodes[{}].proxmox_node", members[1].0),
                false,
                format!(
                    "control planes {} share the Proxmox host `{host}`: {breaks}",
                    names.join(", ")
                ),
                "place each control plane on its own Proxmox host with `proxmox_node`".to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_are_short_lower_case_labels() {
        assert!(is_volume_name("data"));
        assert!(is_volume_name("local-path-1"));
        assert!(!is_volume_name("Data"));
        assert!(!is_volume_name("-data"));
        assert!(!is_volume_name(""));
        assert!(!is_volume_name(&"a".repeat(35)));
    }
}
