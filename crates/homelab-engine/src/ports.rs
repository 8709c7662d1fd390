//! What the engine needs from the outside world, as narrow traits: a hypervisor (Proxmox), the Image
//! Factory, each node's Talos API, and the Kubernetes API. Adapters over the real clients implement them;
//! tests can implement them in memory. Keeping the engine on these traits keeps the flow readable and the
//! client crates free of any knowledge of the flow.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// A failure from an adapter, already phrased for the operator.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// Worth retrying (a timeout, a 5xx, a reset connection, a lock held for a moment).
    pub transient: bool,
}

impl PortError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// A VM as the engine wants it, in hypervisor-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmWanted {
    pub proxmox_node: String,
    pub vm_id: u32,
    pub name: String,
    pub cores: u32,
    pub memory_mib: u64,
    pub disk_storage: String,
    pub disk_gib: u64,
    pub bridge: String,
    pub vlan: Option<u16>,
    /// Upper-case colon form, `BC:24:11:CA:FE:01`.
    pub mac: String,
    /// `storage:iso/file.iso`.
    pub iso_volume: String,
    pub tpm: bool,
    pub tags: Vec<String>,
}

/// A VM as the hypervisor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VmLive {
    pub name: Option<String>,
    pub cores: Option<u32>,
    pub memory_mib: Option<u64>,
    pub disk_gib: Option<u64>,
    pub bridge: Option<String>,
    pub vlan: Option<u16>,
    pub mac: Option<String>,
    pub iso_volume: Option<String>,
    pub bios: Option<String>,
    pub machine: Option<String>,
    /// `efitype` and whether keys were pre-enrolled, e.g. ("4m", false).
    pub efidisk: Option<(String, bool)>,
    pub tpm_version: Option<String>,
    pub running: bool,
    /// A hypervisor lock on the VM (a create still running): its config is not final and says nothing
    /// about drift until the lock clears.
    pub lock: Option<VmLock>,
}

/// A lock on a VM and the task holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmLock {
    /// `create`, `clone`, `backup`, `migrate`, …
    pub kind: String,
    /// The running task that holds it (a Proxmox UPID); `None` when no running task does (stale).
    pub task: Option<String>,
}

pub trait Hypervisor: Send + Sync {
    fn iso_exists(
        &self,
        node: &str,
        storage: &str,
        file: &str,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// Downloads `url` into `storage` as `file` and waits for the task.
    fn download_iso(
        &self,
        node: &str,
        storage: &str,
        file: &str,
        url: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn delete_iso(
        &self,
        node: &str,
        storage: &str,
        file: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The VM as it is now, with its lock (and the task holding it) when it is locked.
    fn vm(&self, node: &str, vm_id: u32)
    -> impl Future<Output = PortResult<Option<VmLive>>> + Send;
    /// Waits until the VM has no lock (the task holding it ended); a VM that is gone counts as unlocked.
    /// Fails permanently on a lock that no running task holds.
    fn wait_unlocked(&self, node: &str, vm_id: u32) -> impl Future<Output = PortResult<()>> + Send;
    fn create_vm(&self, wanted: &VmWanted) -> impl Future<Output = PortResult<()>> + Send;
    /// Sets config keys in place (cores, memory, net0) with their hypervisor-level values.
    fn update_vm(
        &self,
        wanted: &VmWanted,
        fields: &[String],
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn start_vm(&self, node: &str, vm_id: u32) -> impl Future<Output = PortResult<()>> + Send;
    fn stop_vm(&self, node: &str, vm_id: u32) -> impl Future<Output = PortResult<()>> + Send;
    /// Deletes the VM and its disks.
    fn delete_vm(&self, node: &str, vm_id: u32) -> impl Future<Output = PortResult<()>> + Send;
    /// The IPv4 address the guest agent reports on the NIC with `mac`; None while the agent is not up or
    /// the NIC has no address yet.
    fn guest_ipv4(
        &self,
        node: &str,
        vm_id: u32,
        mac: &str,
    ) -> impl Future<Output = PortResult<Option<IpAddr>>> + Send;
}

pub trait ImageFactory: Send + Sync {
    /// Registers the schematic for these extensions (idempotent) and returns its id.
    fn schematic(&self, extensions: &[String]) -> impl Future<Output = PortResult<String>> + Send;
    /// The ISO's download URL for a schematic.
    fn iso_url(&self, schematic: &str) -> String;
    /// The installer image reference for a schematic.
    fn installer_image(&self, schematic: &str) -> String;
}

/// Whether bootstrap did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrapped {
    Now,
    Already,
}

/// One Talos service as `talosctl services` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    pub id: String,
    /// `Running`, `Preparing`, `Finished`, …
    pub state: String,
    /// The health check's verdict; `None` when the service has none.
    pub healthy: Option<bool>,
}

impl ServiceHealth {
    /// Running, and not failing its health check.
    pub fn ok(&self) -> bool {
        self.state == "Running" && self.healthy != Some(false)
    }
}

pub trait TalosApi: Send + Sync {
    /// Applies a config to a node in maintenance mode (TLS, no client certificate).
    fn apply_in_maintenance(
        &self,
        at: SocketAddr,
        config: &[u8],
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Applies a config to an installed node (mutual TLS), letting Talos decide whether to reboot.
    fn apply_installed(
        &self,
        at: SocketAddr,
        config: &[u8],
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The Talos version if the node answers with mutual TLS (installed and configured), else None.
    fn installed_version(
        &self,
        at: SocketAddr,
    ) -> impl Future<Output = PortResult<Option<String>>> + Send;
    fn bootstrap(&self, at: SocketAddr) -> impl Future<Output = PortResult<Bootstrapped>> + Send;
    fn etcd_members(&self, at: SocketAddr) -> impl Future<Output = PortResult<Vec<String>>> + Send;
    fn kubeconfig(&self, at: SocketAddr) -> impl Future<Output = PortResult<Vec<u8>>> + Send;
    /// The node's services and their health (mutual TLS).
    fn services(
        &self,
        at: SocketAddr,
    ) -> impl Future<Output = PortResult<Vec<ServiceHealth>>> + Send;
    /// Wipes STATE and EPHEMERAL and returns the node to maintenance mode.
    fn reset(&self, at: SocketAddr) -> impl Future<Output = PortResult<()>> + Send;
}

/// Kubernetes health as `status` and `apply` need it.
pub trait KubeApi: Send + Sync {
    fn api_ready(&self, kubeconfig: &[u8]) -> impl Future<Output = PortResult<bool>> + Send;
    fn node_ready(
        &self,
        kubeconfig: &[u8],
        node: &str,
    ) -> impl Future<Output = PortResult<bool>> + Send;
}
