//! The typed configuration and the defaults that reproduce the original single-node deployment.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::net::{Cidr, Mac};
pub use crate::patches::{PatchSource, PatchTree, PatchValue, RolePatches};
use crate::version::Version;

/// A whole `homelab.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub proxmox: Proxmox,
    pub image: Image,
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    /// Absent when the repository has no Flux tree.
    pub gitops: Option<Gitops>,
}

impl Config {
    pub fn control_planes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Controlplane)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proxmox {
    /// `https://HOST:8006`, without the `/api2/json` suffix.
    pub endpoint: String,
    /// The Proxmox node (host) VMs are created on unless a node says otherwise.
    pub node: String,
    /// `USER@REALM!TOKENID`; the token's secret lives in `secrets.enc.yaml`.
    pub token_id: String,
    pub tls: Tls,
    /// Storage that holds the Talos ISO (content type `iso`).
    pub iso_storage: String,
}

/// How the Proxmox server certificate is trusted. At most one of the three is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint as Proxmox prints it (`AB:CD:…`, 32 octets).
    pub fingerprint: Option<String>,
    pub insecure: bool,
}

/// The trust decision that follows from [`Tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    SystemRoots,
    CaFile(PathBuf),
    Fingerprint(String),
    Insecure,
}

impl Tls {
    pub fn trust(&self) -> TlsTrust {
        if self.insecure {
            TlsTrust::Insecure
        } else if let Some(fp) = &self.fingerprint {
            TlsTrust::Fingerprint(fp.clone())
        } else if let Some(ca) = &self.ca_file {
            TlsTrust::CaFile(ca.clone())
        } else {
            TlsTrust::SystemRoots
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    pub factory: String,
    pub talos_version: Version,
    pub platform: Platform,
    pub secureboot: bool,
    /// Official system extensions, e.g. `siderolabs/qemu-guest-agent`.
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Metal,
    Nocloud,
}

impl Platform {
    pub const NAMES: &'static [&'static str] = &["metal", "nocloud"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Platform::Metal => "metal",
            Platform::Nocloud => "nocloud",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    /// Kubernetes API endpoint, `https://HOST:6443`.
    pub endpoint: String,
    pub kubernetes_version: Version,
    pub pod_subnets: Vec<Cidr>,
    pub service_subnets: Vec<Cidr>,
    pub allow_scheduling_on_control_planes: bool,
    /// A shared virtual IP for several control planes (Talos Layer2 VIP).
    pub vip: Option<IpAddr>,
    /// The user's own Talos config patches for every node, applied first of the user's patches
    /// (files relative to homelab.yaml, or inline).
    pub patches: Vec<PatchSource>,
    /// Patches for the control planes or the workers, applied after `patches`.
    pub role_patches: RolePatches,
    /// Seconds to keep asking Talos to bootstrap etcd while it waits for CRI and time sync
    /// (`None`: the engine's default).
    pub bootstrap_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Controlplane,
    Worker,
}

impl Role {
    pub const NAMES: &'static [&'static str] = &["controlplane", "worker"];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// LUKS2 for STATE and EPHEMERAL, keys sealed by the VM's TPM 2.0.
    Tpm,
    None,
}

impl Encryption {
    pub const NAMES: &'static [&'static str] = &["tpm", "none"];
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub vm_id: u32,
    /// The Proxmox node this VM lives on; defaults to `proxmox.node`.
    pub proxmox_node: String,
    pub cores: u32,
    pub memory_mib: u64,
    pub disk: Disk,
    pub network: NodeNetwork,
    pub install_disk: String,
    pub encryption: Encryption,
    /// Where to reach the node in maintenance mode when the guest agent cannot tell (talos#11651).
    pub maintenance_address: Option<IpAddr>,
    /// This node's own patches, applied last.
    pub patches: Vec<PatchSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disk {
    pub size_gib: u64,
    pub storage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeNetwork {
    pub bridge: String,
    pub vlan: Option<u16>,
    pub mac: Mac,
    pub address: Cidr,
    pub gateway: IpAddr,
    pub nameservers: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gitops {
    /// The Flux tree, relative to the repository root.
    pub path: PathBuf,
    pub repository: Repository,
    pub nfs: Option<Nfs>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repository {
    pub url: String,
    pub branch: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nfs {
    pub server: String,
    pub export: String,
}

/// Defaults, chosen to reproduce the original deployment.
pub mod defaults {
    use crate::version::Version;

    pub const PROXMOX_NODE: &str = "pve";
    pub const ISO_STORAGE: &str = "local";
    pub const FACTORY: &str = "https://factory.talos.dev";
    pub const TALOS_VERSION: Version = Version::new(1, 12, 4);
    pub const EXTENSIONS: &[&str] = &["siderolabs/qemu-guest-agent", "siderolabs/nfs-utils"];
    pub const POD_SUBNET: &str = "10.244.0.0/16";
    pub const SERVICE_SUBNET: &str = "10.96.0.0/12";
    pub const CORES: u32 = 4;
    pub const MEMORY_MIB: u64 = 8 * 1024;
    pub const DISK_GIB: u64 = 64;
    pub const DISK_STORAGE: &str = "local-lvm";
    pub const BRIDGE: &str = "vmbr0";
    pub const INSTALL_DISK: &str = "/dev/sda";
    pub const GITOPS_PATH: &str = "kubernetes";
    pub const GIT_BRANCH: &str = "main";
}
