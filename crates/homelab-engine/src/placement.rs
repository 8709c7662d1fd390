//! Where the Talos ISO has to be: every Proxmox host that runs one of the nodes boots from its own ISO
//! storage, unless that storage is `shared` (NFS, Ceph), which all hosts see as one. This module turns the
//! nodes' `proxmox_node`s into the list of ISO copies to look for and download.

use std::collections::BTreeSet;

use homelab_config::Config;

use crate::ports::{Hypervisor, PortResult};

/// One copy of the ISO: the host that downloads it and the storage it lands on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoTarget {
    pub proxmox_node: String,
    pub storage: String,
}

/// The Proxmox hosts the configuration uses: `proxmox.node` first, then each node's host, each once.
pub fn hosts(config: &Config) -> Vec<String> {
    let mut seen = BTreeSet::new();
    std::iter::once(config.proxmox.node.clone())
        .chain(config.nodes.iter().map(|n| n.proxmox_node.clone()))
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

/// The hosts that boot a node (only those need the ISO), in order of first use.
fn hosts_with_nodes(config: &Config) -> Vec<String> {
    let mut seen = BTreeSet::new();
    config
        .nodes
        .iter()
        .map(|n| n.proxmox_node.clone())
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

/// The ISO copies needed: one per host that boots a node, except that a shared ISO storage needs a single
/// copy (downloaded through the first host). A host whose storage cannot be inspected counts as not shared:
/// the worst that does is look for the same file twice.
pub async fn iso_targets<H: Hypervisor>(
    config: &Config,
    hypervisor: &H,
) -> PortResult<Vec<IsoTarget>> {
    let storage = &config.proxmox.iso_storage;
    let mut hosts = hosts_with_nodes(config);
    if hosts.is_empty() {
        hosts.push(config.proxmox.node.clone());
    }
    let mut targets = Vec::new();
    for host in hosts {
        if hypervisor.storage_shared(&host, storage).await? && !targets.is_empty() {
            continue;
        }
        targets.push(IsoTarget {
            proxmox_node: host,
            storage: storage.clone(),
        });
    }
    Ok(targets)
}
