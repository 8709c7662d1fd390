//! What the engine needs from the outside world, as narrow traits: a hypervisor (Proxmox), the Image
//! Factory, each node's Talos API, and the Kubernetes API. Adapters over the real clients implement them;
//! tests can implement them in memory. Keeping the engine on these traits keeps the flow readable and the
//! client crates free of any knowledge of the flow.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// What kind of failure a port met: the operator's next step depends on it (run again, fix a credential,
/// fix homelab.yaml), so it travels with the error up to the CLI instead of being lost in a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A timeout, a 5xx, a reset connection, a lock held for a moment: trying again may succeed.
    Transient,
    /// The whole wait passed without the awaited condition: running again may find it reached.
    Timeout,
    /// Credentials were refused or lack a privilege.
    Auth,
    /// What was asked for does not exist there (a Talos version the Image Factory does not offer).
    NotFound,
    /// The peer's certificate did not verify.
    Tls,
    /// The request or the configuration behind it is wrong.
    Invalid,
    /// The object's state conflicts with the request (it exists already, someone else owns it).
    Conflict,
    /// A definite answer that trying again will not change.
    Other,
}

impl ErrorKind {
    /// Whether running the same command again, unchanged, can succeed.
    pub fn is_worth_rerunning(self) -> bool {
        matches!(self, ErrorKind::Transient | ErrorKind::Timeout)
    }
}

/// A failure from an adapter, already phrased for the operator.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// Worth retrying within this run (a timeout, a 5xx, a reset connection, a lock held for a moment).
    pub transient: bool,
    /// What kind of failure it is, for the operator's next step.
    pub kind: ErrorKind,
}

impl PortError {
    /// A failure that retrying will not change, of no finer kind.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A failure of `kind`; only [`ErrorKind::Transient`] is retried within the run.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: kind == ErrorKind::Transient,
            kind,
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
    /// A static address on a cloud-init drive, instead of a DHCP lease.
    pub static_address: Option<StaticAddress>,
    /// Data disks after the system disk, in slot order.
    pub extra_disks: Vec<DiskWanted>,
    /// NICs after the first, in slot order.
    pub extra_nics: Vec<NicWanted>,
}

/// What a cloud-init (NoCloud) drive tells the guest about its first NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticAddress {
    /// `192.168.20.100/24`.
    pub cidr: String,
    pub gateway: IpAddr,
    pub nameservers: Vec<IpAddr>,
    pub search_domain: Option<String>,
}

/// An extra data disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskWanted {
    pub storage: String,
    pub size_gib: u64,
    /// The serial number the guest sees (the Talos user volume's name, which selects the disk by it).
    pub serial: String,
}

/// An extra NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicWanted {
    pub bridge: String,
    pub vlan: Option<u16>,
    /// Upper-case colon form; `None` lets the hypervisor pick one.
    pub mac: Option<String>,
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
    /// The static address on its cloud-init drive, in [`crate::hardware::static_address_text`]'s form;
    /// `None` without a cloud-init drive.
    pub static_address: Option<String>,
    /// Extra data disks that carry a serial number: `(serial, "storage:SIZEG")`.
    pub extra_disks: Vec<(String, String)>,
    /// Extra NICs by index from `net1` (`None` for a gap), in [`crate::hardware::nic_text`]'s form.
    pub extra_nics: Vec<Option<String>>,
    /// The hypervisor's tags on the VM (`homelabctl` marks a VM homelabctl created).
    pub tags: Vec<String>,
}

/// The tag every VM homelabctl creates carries: with the journal, what says a VM is ours to delete.
pub const OWNER_TAG: &str = "homelabctl";

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
    /// Whether `storage` is shared by every host (one copy of a file serves them all). The default says no:
    /// a hypervisor without shared storage keeps a copy per host.
    fn storage_shared(
        &self,
        _node: &str,
        _storage: &str,
    ) -> impl Future<Output = PortResult<bool>> + Send {
        async { Ok(false) }
    }
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

/// One etcd member as a control plane reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// The member's name (its hostname); empty while a learner's etcd has not started yet.
    pub name: String,
    /// Still a learner: it replicates but does not vote; Talos promotes it once it caught up.
    pub learner: bool,
}

impl EtcdMember {
    /// A voting member.
    pub fn voter(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            learner: false,
        }
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
    /// The kernel's boot ID if the node answers with mutual TLS, else None: it changes with every boot, so
    /// it tells a reboot that happened from one still to come, however short the node was away.
    fn boot_id(&self, at: SocketAddr) -> impl Future<Output = PortResult<Option<String>>> + Send {
        let _ = at;
        async {
            Err(PortError::permanent(
                "this Talos adapter cannot read boot IDs",
            ))
        }
    }
    fn bootstrap(&self, at: SocketAddr) -> impl Future<Output = PortResult<Bootstrapped>> + Send;
    /// The etcd members, learners included; empty when etcd does not run yet (before the
    /// bootstrap Talos blocks this call until its deadline: adapters bound it and answer empty).
    fn etcd_members(
        &self,
        at: SocketAddr,
    ) -> impl Future<Output = PortResult<Vec<EtcdMember>>> + Send;
    fn kubeconfig(&self, at: SocketAddr) -> impl Future<Output = PortResult<Vec<u8>>> + Send;
    /// The node's services and their health (mutual TLS).
    fn services(
        &self,
        at: SocketAddr,
    ) -> impl Future<Output = PortResult<Vec<ServiceHealth>>> + Send;
    /// Wipes STATE and EPHEMERAL and returns the node to maintenance mode.
    fn reset(&self, at: SocketAddr) -> impl Future<Output = PortResult<()>> + Send;
    /// Asks the installed node to upgrade to `image` and reboot (never forced: Talos checks etcd first).
    /// The answer only means the node accepted; the outcome is the version it answers with afterwards.
    fn upgrade(&self, at: SocketAddr, image: &str) -> impl Future<Output = PortResult<()>> + Send {
        let _ = (at, image);
        async {
            Err(PortError::permanent(
                "this Talos adapter cannot upgrade nodes",
            ))
        }
    }
    /// Makes this control plane's etcd member leave the cluster (before it is reset and removed).
    fn etcd_leave(&self, at: SocketAddr) -> impl Future<Output = PortResult<()>> + Send {
        let _ = at;
        async {
            Err(PortError::permanent(
                "this Talos adapter cannot make a member leave etcd",
            ))
        }
    }
    /// Removes the etcd member named `name` through the healthy member at `at` (for a control plane that is
    /// already gone or does not answer). A member that is not there any more is fine.
    fn etcd_remove_member(
        &self,
        at: SocketAddr,
        name: &str,
    ) -> impl Future<Output = PortResult<()>> + Send {
        let _ = (at, name);
        async {
            Err(PortError::permanent(
                "this Talos adapter cannot remove etcd members",
            ))
        }
    }
    /// Applies a config to an installed node without a reboot; Talos refuses it when a changed field
    /// needs one (a Kubernetes image change never does: the kubelet and static pods restart).
    fn apply_no_reboot(
        &self,
        at: SocketAddr,
        config: &[u8],
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// A Node object as the Kubernetes API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`, e.g. `v1.36.2`.
    pub kubelet_version: String,
    /// The InternalIP address, when reported.
    pub internal_ip: Option<IpAddr>,
}

/// One control plane's static pod (kube-apiserver, kube-controller-manager, kube-scheduler) as its
/// mirror pod in `kube-system` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticPod {
    /// The node it runs on (`spec.nodeName`).
    pub node: String,
    /// The node's address (`status.hostIP`), when reported.
    pub host_ip: Option<IpAddr>,
    /// The image of its container.
    pub image: String,
    /// The Ready condition is True.
    pub ready: bool,
}

/// What a drain did: the pods it evicted (`namespace/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    pub evicted: Vec<String>,
}

/// Kubernetes health as `status` and `apply` need it, and the node removal's cordon, drain and delete.
pub trait KubeApi: Send + Sync {
    fn api_ready(&self, kubeconfig: &[u8]) -> impl Future<Output = PortResult<bool>> + Send;
    fn node_ready(
        &self,
        kubeconfig: &[u8],
        node: &str,
    ) -> impl Future<Output = PortResult<bool>> + Send;
    /// The API server's version (`/version` gitVersion, e.g. `v1.36.2`) of whichever server answers.
    fn server_version(&self, kubeconfig: &[u8]) -> impl Future<Output = PortResult<String>> + Send;
    /// Every Node object with its kubelet version and readiness.
    fn nodes(&self, kubeconfig: &[u8]) -> impl Future<Output = PortResult<Vec<NodeStatus>>> + Send;
    /// The static pods of `component` (`kube-apiserver`, …) on the control planes: the mirror pods in
    /// `kube-system` labelled `k8s-app=<component>`.
    fn static_pods(
        &self,
        kubeconfig: &[u8],
        component: &str,
    ) -> impl Future<Output = PortResult<Vec<StaticPod>>> + Send;
    /// The image of the first container of a DaemonSet's pod template; `None` when it does not exist.
    fn daemonset_image(
        &self,
        kubeconfig: &[u8],
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = PortResult<Option<String>>> + Send;
    /// Marks the Node unschedulable.
    fn cordon(&self, kubeconfig: &[u8], node: &str) -> impl Future<Output = PortResult<()>> + Send {
        let _ = (kubeconfig, node);
        async {
            Err(PortError::permanent(
                "this Kubernetes adapter cannot cordon",
            ))
        }
    }
    /// Evicts the node's pods through the Eviction API (PodDisruptionBudgets honoured; DaemonSet and mirror
    /// pods stay), looking every `poll`, waiting up to `timeout` for them to be gone; a timeout names the
    /// pods still there.
    fn drain(
        &self,
        kubeconfig: &[u8],
        node: &str,
        timeout: std::time::Duration,
        poll: std::time::Duration,
    ) -> impl Future<Output = PortResult<Drained>> + Send {
        let _ = (kubeconfig, node, timeout, poll);
        async { Err(PortError::permanent("this Kubernetes adapter cannot drain")) }
    }
    /// Deletes the Node object; one that is gone already is fine.
    fn delete_node(
        &self,
        kubeconfig: &[u8],
        node: &str,
    ) -> impl Future<Output = PortResult<()>> + Send {
        let _ = (kubeconfig, node);
        async {
            Err(PortError::permanent(
                "this Kubernetes adapter cannot delete nodes",
            ))
        }
    }
}
