//! The desired state, derived from homelab.yaml: the image, each node's VM, and where each node is reached.

use std::net::{IpAddr, SocketAddr};

use homelab_config::{Config, Node, Role};
use zeroize::Zeroizing;

use crate::ports::{DiskWanted, NicWanted, StaticAddress, VmWanted};

/// Talos apid's port, in maintenance mode and installed.
pub const APID_PORT: u16 = 50000;

/// The Talos image wanted for the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWanted {
    pub proxmox_node: String,
    pub storage: String,
    pub extensions: Vec<String>,
}

impl ImageWanted {
    pub fn from_config(config: &Config) -> Self {
        let mut extensions = config.image.extensions.clone();
        extensions.sort();
        extensions.dedup();
        Self {
            proxmox_node: config.proxmox.node.clone(),
            storage: config.proxmox.iso_storage.clone(),
            extensions,
        }
    }
}

/// The ISO file name in Proxmox storage: version, platform, SecureBoot and schematic all in the name, so a
/// changed image is a new file and an existing file is known to be the right one.
pub fn iso_file_name(config: &Config, schematic: &str) -> String {
    let short = schematic.get(..12).unwrap_or(schematic);
    let secureboot = if config.image.secureboot {
        "-secureboot"
    } else {
        ""
    };
    format!(
        "talos-{}-{}-amd64{secureboot}-{short}.iso",
        config.image.talos_version.with_v(),
        config.image.platform.as_str()
    )
}

/// The VM wanted for `node`, booting `iso_volume`.
pub fn vm_wanted(config: &Config, node: &Node, iso_volume: &str) -> VmWanted {
    VmWanted {
        proxmox_node: node.proxmox_node.clone(),
        vm_id: node.vm_id,
        name: node.name.clone(),
        cores: node.cores,
        memory_mib: node.memory_mib,
        disk_storage: node.disk.storage.clone(),
        disk_gib: node.disk.size_gib,
        bridge: node.network.bridge.clone(),
        vlan: node.network.vlan,
        mac: node.network.mac.to_string(),
        iso_volume: iso_volume.to_string(),
        tpm: true,
        tags: vec![
            "homelabctl".into(),
            format!("cluster-{}", config.cluster.name),
        ],
        static_address: static_address(node),
        extra_disks: node
            .extra_disks
            .iter()
            .map(|d| DiskWanted {
                storage: d.storage.clone(),
                size_gib: d.size_gib,
                serial: d.name.clone(),
            })
            .collect(),
        extra_nics: node
            .extra_nics
            .iter()
            .map(|n| NicWanted {
                bridge: n.bridge.clone(),
                vlan: n.vlan,
                mac: n.mac.as_ref().map(|m| m.to_string()),
            })
            .collect(),
    }
}

/// The cloud-init network config of a node without DHCP: its address, gateway and nameservers.
pub fn static_address(node: &Node) -> Option<StaticAddress> {
    node.addressing.is_static().then(|| StaticAddress {
        cidr: node.network.address.to_string(),
        gateway: node.network.gateway,
        nameservers: node.network.nameservers.clone(),
        search_domain: node.addressing.search_domain.clone(),
    })
}

/// Where a node answers once installed: its static address.
pub fn installed_address(node: &Node) -> SocketAddr {
    SocketAddr::new(node.network.address.address, APID_PORT)
}

/// The node that bootstraps etcd: the first control plane.
pub fn bootstrap_node(config: &Config) -> Option<&Node> {
    config.nodes.iter().find(|n| n.role == Role::Controlplane)
}

/// The control planes, in homelab.yaml order (the bootstrap node first).
pub fn control_planes(config: &Config) -> impl Iterator<Item = &Node> {
    config.nodes.iter().filter(|n| n.role == Role::Controlplane)
}

/// The order nodes get their machine config: control planes first (the bootstrap node leading),
/// then workers, whose apid certificate comes from trustd on an installed control plane.
pub fn config_order(config: &Config) -> Vec<&Node> {
    let workers = config.nodes.iter().filter(|n| n.role != Role::Controlplane);
    control_planes(config).chain(workers).collect()
}

/// A node's rendered machine config: the bytes to apply (secret) and a redacted copy for plans.
pub struct RenderedNode {
    pub config: Zeroizing<Vec<u8>>,
    pub redacted: String,
}

/// Renders machine configs; the Talos-backed implementation lives in [`crate::talos_render`].
pub trait ConfigRenderer: Send + Sync {
    fn render(
        &self,
        config: &Config,
        node: &Node,
        installer_image: &str,
    ) -> Result<RenderedNode, String>;

    /// The config of the node named `node` at a stage of a Kubernetes upgrade (the components not yet
    /// upgraded keep the old version). Only the Talos-backed renderer knows how.
    fn render_staged(
        &self,
        config: &Config,
        node: &str,
        installer_image: &str,
        versions: &crate::kubernetes_upgrade::StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let _ = (config, node, installer_image, versions);
        Err("this renderer cannot render the stages of a Kubernetes upgrade".into())
    }
}

/// The address a fresh node is reached at in maintenance mode when the guest agent cannot say. A node
/// with a static address on its cloud-init drive comes up on exactly that address.
pub fn maintenance_fallback(node: &Node) -> IpAddr {
    if node.addressing.is_static() {
        return node.network.address.address;
    }
    node.maintenance_address
        .unwrap_or(node.network.address.address)
}
