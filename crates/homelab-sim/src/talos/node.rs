//! One simulated Talos node: its lifecycle (off → maintenance on the DHCP address → installing,
//! with no listener → installed on the static address → reset back to maintenance), the apid
//! listener of each phase (a worker's only once trustd issued its certificate), and on a control
//! plane etcd (bootstrapped here, or joined through the control-plane endpoint as a learner), its
//! Kubernetes API server and, when elected, the Layer 2 VIP. The timings of what Talos does after
//! a boot (CRI up, time synced, learner promoted) are options, so tests run them in milliseconds
//! and a realistic profile in minutes.

mod persist;
mod static_pods;
mod workloads;

pub use persist::{EtcdVersion, NodeSnapshot};

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use homelab_apid::proto::cosi::resource::state_server::StateServer;
use homelab_apid::proto::machine::machine_service_server::MachineServiceServer;

use super::cluster::{ClusterRegistry, TrustdRoute, VipWinner, member_id};
use super::config::{MachineType, NodeConfig};
use super::day2::installer_version;
use super::flap::{ApidFlapping, FlakyStream, Flapper};
use super::schema::ConfigSchema;
use super::service::ApidService;
use crate::kube::{KubeNode, KubeOptions, KubeSim, StoreSnapshot};
use crate::pki::{Issued, KeyAlg, Leaf};
use crate::requests::RequestCounts;

/// How a simulated node is set up.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// where apid listens in maintenance mode: the VM's DHCP address (port 50000, or 0 in tests)
    pub maintenance_addr: SocketAddr,
    /// apid port after install (50000; 0 = ephemeral, read it from [`NodeSim::phase`])
    pub apid_port: u16,
    /// Kubernetes API port after bootstrap: `None` = the port of `cluster.controlPlane.endpoint`,
    /// `Some(0)` = ephemeral (the kubeconfig then names the real port)
    pub kube_port: Option<u16>,
    /// the Talos version the node reports
    pub talos_version: String,
    /// the Kubernetes version the node reports
    pub kubernetes_version: String,
    /// fault injection: answer the first N Bootstrap calls with FailedPrecondition
    pub bootstrap_not_ready: u32,
    /// how long the simulated reboot after an apply or reset takes
    pub reboot_delay: Duration,
    /// how long the reboot of an upgrade takes (a few hundred milliseconds by default)
    pub upgrade_delay: Duration,
    /// fault injection: apid flaps (refuses and drops connections) for a while after the node is created
    pub apid_flapping: Option<ApidFlapping>,
    /// called whenever what the node keeps on disk changes (config, bootstrap, etcd), for savers;
    /// always with no lock of the node held, before the call that made the change answers
    pub on_change: Option<crate::change::ChangeHook>,
    /// how long the installer runs after a maintenance-mode apply (no listener meanwhile; Talos
    /// pulls the installer image, partitions and writes the disk: minutes on real hardware)
    pub install_delay: Duration,
    /// from an installed boot until CRI is up (Bootstrap answers FailedPrecondition "bootstrap is
    /// not available yet" before)
    pub cri_delay: Duration,
    /// from an installed boot until the time is synced (Bootstrap answers FailedPrecondition
    /// "time is not in sync yet" before); `None`: NTP is unreachable, the time never syncs
    pub time_sync: Option<Duration>,
    /// how long a joining control plane stays an etcd learner before its promotion (unnamed in
    /// the member list for the first half)
    pub learner_delay: Duration,
    /// how long EtcdMemberList blocks before etcd runs when the caller sets no deadline (Talos'
    /// etcd client waits for a leader until the call's context ends)
    pub etcd_wait_cap: Duration,
    /// the public discovery service is reachable (workers then find trustd on any control plane);
    /// off by default: the simulator reaches nothing outside 127.0.0.0/8, and a homelab may block it
    pub discovery: bool,
    /// MAC addresses of the VM's NICs (LinkAliasConfig selectors are matched against them); empty:
    /// unknown, selectors are not checked
    pub macs: Vec<String>,
    /// system extensions with a service (listed as `ext-<name>` by ServiceList)
    pub extensions: Vec<String>,
    /// from power-on until apid listens (firmware, boot loader, kernel, machined: tens of seconds on
    /// real hardware)
    pub boot_delay: Duration,
    /// how long a control-plane static pod takes to restart on a new image after a no-reboot apply
    /// (the kubelet stops the old container, pulls and starts the new one, readiness passes)
    pub static_pod_restart: Duration,
    /// what the nodes of one lab share per cluster (etcd membership, the VIP, trustd): nodes meant
    /// to form a cluster must share one ([`NodeOptions::new`] makes a fresh one)
    pub clusters: Arc<ClusterRegistry>,
    /// the cluster runs workloads: CoreDNS and a `default/web` Deployment with a
    /// PodDisruptionBudget (see `talos/node/workloads.rs`), created when a control plane's API
    /// server starts; off by default
    pub workloads: bool,
}

impl NodeOptions {
    /// Defaults for a node whose DHCP address is `maintenance_addr`.
    pub fn new(maintenance_addr: SocketAddr) -> Self {
        Self {
            maintenance_addr,
            apid_port: homelab_apid::APID_PORT,
            kube_port: None,
            talos_version: "v1.12.4".into(),
            kubernetes_version: "v1.35.0".into(),
            bootstrap_not_ready: 0,
            reboot_delay: Duration::from_millis(50),
            upgrade_delay: Duration::from_millis(300),
            apid_flapping: None,
            on_change: None,
            install_delay: Duration::from_millis(100),
            cri_delay: Duration::from_millis(30),
            time_sync: Some(Duration::from_millis(30)),
            learner_delay: Duration::from_millis(150),
            etcd_wait_cap: Duration::from_secs(120),
            discovery: false,
            macs: Vec::new(),
            extensions: vec!["qemu-guest-agent".into()],
            boot_delay: Duration::ZERO,
            static_pod_restart: Duration::from_millis(150),
            clusters: Arc::default(),
            workloads: false,
        }
    }
}

/// Where the node is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePhase {
    /// powered off (or between phases while "rebooting")
    Off,
    /// maintenance mode: apid at this address, no client certificate, ApplyConfiguration only
    Maintenance(SocketAddr),
    /// installed: apid at this address with mutual TLS from the config's OS CA
    Installed(SocketAddr),
    /// the node could not come up (e.g. the static address could not be bound)
    Failed(String),
}

/// Errors starting a simulated node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}; use a free 127.0.0.0/8 address or port 0")]
    Bind {
        /// the address
        addr: SocketAddr,
        /// the OS error
        source: std::io::Error,
    },
    /// A certificate could not be built.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// The config schema could not be loaded.
    #[error(transparent)]
    Schema(#[from] super::schema::SchemaError),
    /// The Kubernetes simulator could not start.
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    /// A saved node state could not be used.
    #[error("cannot restore the node from its saved state: {0}")]
    Restore(String),
    /// trustd answered a worker, but no control plane of its cluster published the OS CA key.
    #[error(
        "cannot obtain the apid certificate: no control plane with this OS CA is running (trustd)"
    )]
    Trustd,
    /// The installed node has no network: its LinkConfig names a LinkAliasConfig whose selector
    /// does not match exactly one link, so the static address is never configured.
    #[error(
        "no network: LinkAliasConfig {alias:?} matched {matched} link(s) of {macs:?} (Talos needs exactly one); the static address is not configured"
    )]
    NoNetwork {
        /// the alias
        alias: String,
        /// how many links matched
        matched: usize,
        /// the node's MACs
        macs: Vec<String>,
    },
}

pub(crate) struct Installed {
    pub(crate) config: NodeConfig,
    pub(crate) addr: SocketAddr,
    /// etcd was bootstrapped on this node (the Bootstrap call).
    pub(crate) bootstrapped: bool,
    /// etcd runs here: bootstrapped or joined (its data directory is not empty).
    pub(crate) etcd_member: bool,
    /// this control plane's Kubernetes API server
    pub(crate) kube: Option<KubeSim>,
    /// etcd's content while the Kubernetes API is down (it lives on the node's disk).
    pub(crate) etcd: Option<StoreSnapshot>,
    /// the API served at the VIP while this node holds it
    pub(crate) vip: Option<KubeSim>,
    /// how this worker reached trustd for its apid certificate (`None`: not yet, or a control plane)
    pub(crate) trustd_route: Option<TrustdRoute>,
    /// when the installed system last booted (CRI and time sync are timed from here)
    pub(crate) booted_at: Option<Instant>,
    /// restored from a saved state: the node kept running while the simulator was away, so its
    /// next boot in this process finds CRI up and the time synced
    pub(crate) settled: bool,
    /// a snapshot uploaded with EtcdRecover, waiting for Bootstrap with `recover_etcd`
    pub(crate) recovery: Option<Vec<u8>>,
}

impl Installed {
    fn name(&self) -> String {
        node_name(self)
    }

    /// Stops the Kubernetes API, keeping its data.
    pub(crate) fn stop_kube(&mut self) {
        if let Some(kube) = self.kube.take() {
            self.etcd = Some(kube.data());
        }
    }

    /// etcd stops here and its data is gone (it left the cluster: `left_etcd`, or EPHEMERAL was
    /// wiped): the API server stops with it. A member that did not leave stays one, down.
    pub(crate) fn wipe_etcd(
        &mut self,
        clusters: &ClusterRegistry,
        left_etcd: bool,
    ) -> Option<VipWinner> {
        self.stop_kube();
        self.vip = None;
        self.etcd = None;
        self.etcd_member = false;
        clusters.etcd_wiped(&self.config.os_ca_pem, &self.name(), left_etcd)
    }

    /// Its listeners stop (power-off, reboot): the cluster sees the node and its etcd go down.
    fn go_down(&mut self, clusters: &ClusterRegistry) -> Option<VipWinner> {
        self.stop_kube();
        self.vip = None;
        clusters.down(&self.config.os_ca_pem, &self.name())
    }
}

/// Makes the winner of a VIP election take the address (in the background).
pub(crate) fn take_vip(clusters: &Arc<ClusterRegistry>, winner: Option<VipWinner>) {
    let Some(w) = winner else { return };
    let clusters = clusters.clone();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        let taken = match w.node.upgrade() {
            Some(node) => node.take_vip(&w).await,
            None => false,
        };
        if !taken {
            clusters.vip_failed(&w.os_ca_pem, &w.name);
        }
    });
}

pub(crate) struct State {
    pub(crate) generation: u64,
    pub(crate) installed: Option<Installed>,
    pub(crate) staged: Option<Vec<u8>>,
    pub(crate) bootstrap_refusals: u32,
    /// How many times etcd was bootstrapped on this node (a reset and a new bootstrap count again).
    pub(crate) bootstraps: u32,
    /// The Talos version the node runs (on its boot partition: a reset keeps it, an upgrade changes it).
    pub(crate) talos_version: String,
    /// Upgrades that brought the node onto a new image.
    pub(crate) upgrades: u32,
    /// Upgrades that booted back into the previous version (A/B rollback).
    pub(crate) rollbacks: u32,
    /// Fault injection: the next upgrade does not come up and the node boots the old version.
    pub(crate) rollback_next_upgrade: bool,
    /// Why reset sequences failed after the Reset call was answered (Talos logs them).
    pub(crate) reset_failures: Vec<String>,
    /// The kernel's boot ID (`/proc/sys/kernel/random/boot_id`): a new one with every boot.
    pub(crate) boot_id: String,
    /// A reset sequence runs (services and CRI stopped, EPHEMERAL unmounted) until the next boot.
    pub(crate) resetting: bool,
    /// An upgrade sequence runs (pulling the installer, writing the other boot slot) until the reboot.
    pub(crate) upgrading: bool,
    server: Option<Listener>,
    maintenance_bound: Option<SocketAddr>,
}

/// What the node did that tests assert on instead of timing.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// a worker's attempts at trustd that found no control plane through its endpoint
    pub(crate) trustd_unreachable: AtomicU64,
    /// EtcdMemberList calls that blocked until their deadline (etcd not running yet)
    pub(crate) etcd_list_blocked: AtomicU64,
    /// Bootstrap calls refused because CRI was not up or the time not synced
    pub(crate) bootstrap_preconditions: AtomicU64,
    /// Upgrade requests acknowledged while another sequence ran: Talos starts nothing for them
    /// ("sequence not started: locked")
    pub(crate) sequences_locked: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) opts: NodeOptions,
    pub(crate) schema: Arc<ConfigSchema>,
    pub(crate) counters: Counters,
    maintenance_cert: Issued,
    flapper: Option<Arc<Flapper>>,
    /// apid calls (per gRPC method path) and Kubernetes API requests (per method and path) served
    requests: RequestCounts,
    state: Mutex<State>,
    phase: watch::Sender<NodePhase>,
}

struct Listener {
    accept: JoinHandle<()>,
    serve: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.accept.abort();
        self.serve.abort();
    }
}

/// A simulated Talos node. Cloning shares the node.
#[derive(Clone)]
pub struct NodeSim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NodeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSim")
            .field("phase", &self.phase())
            .finish()
    }
}

impl NodeSim {
    /// Creates a powered-off node. Call [`NodeSim::power_on`] (the VM start hook) to boot it.
    pub fn new(opts: NodeOptions, schema: Arc<ConfigSchema>) -> Result<Self, NodeError> {
        let ip = opts.maintenance_addr.ip().to_string();
        let maintenance_cert = Issued::self_signed(&[ip], KeyAlg::Ed25519)?;
        let (phase, _) = watch::channel(NodePhase::Off);
        let state = State {
            generation: 0,
            installed: None,
            staged: None,
            bootstrap_refusals: 0,
            bootstraps: 0,
            talos_version: opts.talos_version.clone(),
            upgrades: 0,
            rollbacks: 0,
            rollback_next_upgrade: false,
            reset_failures: Vec::new(),
            boot_id: crate::random::uuid(),
            resetting: false,
            upgrading: false,
            server: None,
            maintenance_bound: None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                schema,
                counters: Counters::default(),
                maintenance_cert,
                flapper: opts.apid_flapping.map(|plan| Arc::new(Flapper::new(plan))),
                requests: RequestCounts::default(),
                state: Mutex::new(state),
                phase,
                opts,
            }),
        })
    }

    /// Creates a node and boots it into maintenance mode.
    pub async fn start(opts: NodeOptions, schema: Arc<ConfigSchema>) -> Result<Self, NodeError> {
        let node = Self::new(opts, schema)?;
        node.power_on().await?;
        Ok(node)
    }

    /// Boots the node: maintenance mode when no config was applied, installed mode otherwise. With a
    /// boot delay apid listens only after it (a power-off meanwhile cancels the boot).
    pub async fn power_on(&self) -> Result<NodePhase, NodeError> {
        if !self.inner.opts.boot_delay.is_zero() {
            let generation = self.inner.lock().generation;
            tokio::time::sleep(self.inner.opts.boot_delay).await;
            if self.inner.lock().generation != generation {
                return Ok(self.phase());
            }
        }
        self.inner.boot().await
    }

    /// Powers the node off: its listeners go away (connections drop as on a real power-off).
    pub fn power_off(&self) {
        let mut st = self.inner.lock();
        st.generation += 1;
        st.server = None;
        let clusters = &self.inner.opts.clusters;
        let winner = st.installed.as_mut().and_then(|i| i.go_down(clusters));
        drop(st);
        take_vip(clusters, winner);
        self.inner.phase.send_replace(NodePhase::Off);
    }

    /// The current phase.
    pub fn phase(&self) -> NodePhase {
        self.inner.phase.borrow().clone()
    }

    /// Waits until the node reaches an installed (or failed) phase and returns its apid address.
    pub async fn wait_installed(&self, timeout: Duration) -> Result<SocketAddr, NodePhase> {
        self.wait_for(timeout, |p| match p {
            NodePhase::Installed(addr) => Some(*addr),
            _ => None,
        })
        .await
    }

    /// Waits until the node is in maintenance mode and returns its apid address.
    pub async fn wait_maintenance(&self, timeout: Duration) -> Result<SocketAddr, NodePhase> {
        self.wait_for(timeout, |p| match p {
            NodePhase::Maintenance(addr) => Some(*addr),
            _ => None,
        })
        .await
    }

    /// Waits for a phase `want` accepts; a failed node or the timeout yields the phase seen.
    async fn wait_for(
        &self,
        timeout: Duration,
        want: impl Fn(&NodePhase) -> Option<SocketAddr>,
    ) -> Result<SocketAddr, NodePhase> {
        let mut rx = self.inner.phase.subscribe();
        let done = |p: &NodePhase| want(p).is_some() || matches!(p, NodePhase::Failed(_));
        let seen = match tokio::time::timeout(timeout, rx.wait_for(done)).await {
            Ok(Ok(p)) => p.clone(),
            _ => self.phase(),
        };
        want(&seen).ok_or(seen)
    }

    /// SHA-256 of the maintenance certificate's public key (what Talos prints on the console).
    pub fn maintenance_fingerprint(&self) -> Option<homelab_apid::Fingerprint> {
        let der = self.inner.maintenance_cert.chain().ok()?;
        homelab_apid::Fingerprint::of_certificate(der.first()?).ok()
    }

    /// The Kubernetes API address once the node was bootstrapped.
    pub fn kube_addr(&self) -> Option<SocketAddr> {
        self.inner
            .lock()
            .installed
            .as_ref()
            .and_then(|i| i.kube.as_ref().map(KubeSim::addr))
    }

    /// The Kubernetes simulator of this node once bootstrapped (for assertions).
    pub fn kube(&self) -> Option<KubeSim> {
        self.inner
            .lock()
            .installed
            .as_ref()
            .and_then(|i| i.kube.clone())
    }

    /// Whether etcd was bootstrapped on this node.
    pub fn is_bootstrapped(&self) -> bool {
        self.inner
            .lock()
            .installed
            .as_ref()
            .is_some_and(|i| i.bootstrapped)
    }

    /// Requests this node served: apid calls as `apid /machine.MachineService/METHOD`, Kubernetes API
    /// requests as `kube METHOD /path`.
    pub fn requests(&self) -> RequestCounts {
        self.inner.requests.clone()
    }

    /// How many apid connections injected flapping refused or cut so far.
    pub fn apid_drops(&self) -> u64 {
        self.inner.flapper.as_ref().map_or(0, |f| f.drops())
    }

    /// How this worker reached trustd for its apid certificate, once it did.
    pub fn trustd_route(&self) -> Option<TrustdRoute> {
        self.inner
            .lock()
            .installed
            .as_ref()
            .and_then(|i| i.trustd_route)
    }

    /// How many times this worker tried trustd and found no control plane through its endpoint.
    pub fn trustd_unreachable(&self) -> u64 {
        self.inner
            .counters
            .trustd_unreachable
            .load(Ordering::Relaxed)
    }

    /// How many EtcdMemberList calls blocked until their deadline because etcd did not run yet.
    pub fn etcd_list_blocked(&self) -> u64 {
        self.inner
            .counters
            .etcd_list_blocked
            .load(Ordering::Relaxed)
    }

    /// How many Bootstrap calls were refused because CRI was not up or the time not synced.
    pub fn bootstrap_precondition_refusals(&self) -> u64 {
        self.inner
            .counters
            .bootstrap_preconditions
            .load(Ordering::Relaxed)
    }

    /// How many times etcd was bootstrapped on this node since it was created.
    pub fn bootstrap_count(&self) -> u32 {
        self.inner.lock().bootstraps
    }

    /// Whether etcd runs on this node (bootstrapped here or joined).
    pub fn is_etcd_member(&self) -> bool {
        self.inner
            .lock()
            .installed
            .as_ref()
            .is_some_and(|i| i.etcd_member)
    }

    /// The etcd members of this node's cluster, by name (empty before it is installed).
    pub fn cluster_etcd_members(&self) -> Vec<String> {
        let ca = self.os_ca_pem();
        ca.map(|ca| {
            self.inner
                .opts
                .clusters
                .members(&ca)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default()
    }

    /// How many times etcd of this node's cluster was bootstrapped (more than once: split brain).
    pub fn cluster_etcd_bootstraps(&self) -> u32 {
        self.os_ca_pem()
            .map(|ca| self.inner.opts.clusters.bootstraps(&ca))
            .unwrap_or_default()
    }

    /// Whether this node holds its cluster's VIP and serves the API there.
    pub fn holds_vip(&self) -> bool {
        self.inner
            .lock()
            .installed
            .as_ref()
            .is_some_and(|i| i.vip.is_some())
    }

    /// The name of the node holding this node's cluster VIP (elected; it may still be taking it).
    pub fn cluster_vip_holder(&self) -> Option<String> {
        self.inner.opts.clusters.vip_holder(&self.os_ca_pem()?)
    }

    fn os_ca_pem(&self) -> Option<String> {
        self.inner
            .lock()
            .installed
            .as_ref()
            .map(|i| i.config.os_ca_pem.clone())
    }

    /// The Talos version the node runs now.
    pub fn talos_version(&self) -> String {
        self.inner.lock().talos_version.clone()
    }

    /// How many upgrades brought this node onto a new image.
    pub fn upgrade_count(&self) -> u32 {
        self.inner.lock().upgrades
    }

    /// Upgrade requests this node acknowledged while an upgrade or reset sequence already ran, which
    /// therefore started nothing (Talos' sequence lock).
    pub fn locked_sequence_count(&self) -> u64 {
        self.inner.counters.sequences_locked.load(Ordering::Relaxed)
    }

    /// How many upgrades of this node booted back into the old version.
    pub fn rollback_count(&self) -> u32 {
        self.inner.lock().rollbacks
    }

    /// Fault injection: the next upgrade of this node fails to come up, and the node boots back into the
    /// version it ran (Talos' A/B rollback); the client sees it answer on the old version.
    pub fn inject_upgrade_rollback(&self) {
        self.inner.lock().rollback_next_upgrade = true;
    }

    /// The most control planes of this node's cluster that were down (off or rebooting) at the same moment.
    pub fn cluster_max_control_planes_down(&self) -> usize {
        self.os_ca_pem()
            .map(|ca| self.inner.opts.clusters.max_control_planes_down(&ca))
            .unwrap_or_default()
    }

    /// What went wrong in this node's cluster so far: moments without etcd quorum, moments the VIP
    /// had no holder while a control plane's API answered.
    pub fn cluster_health(&self) -> super::ClusterHealth {
        self.os_ca_pem()
            .map(|ca| self.inner.opts.clusters.health(&ca))
            .unwrap_or_default()
    }

    /// Why this node's reset sequences failed after Talos had answered the Reset call (what
    /// Talos logs: "reset failed: failed to leave cluster: …"); the node then runs on unchanged.
    pub fn reset_failures(&self) -> Vec<String> {
        self.inner.lock().reset_failures.clone()
    }

    /// The last applied machine config (raw bytes), if installed.
    pub fn applied_config(&self) -> Option<Vec<u8>> {
        self.inner
            .lock()
            .installed
            .as_ref()
            .map(|i| i.config.raw.clone())
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `service` on `listener` with this node's fault injection and request counting.
    fn serve(
        &self,
        listener: TcpListener,
        tls: rustls::ServerConfig,
        service: ApidService,
    ) -> Listener {
        serve(
            listener,
            tls,
            service,
            self.flapper.clone(),
            self.requests.clone(),
        )
    }

    /// Tells the saver, if any, that what the node keeps on disk changed.
    pub(crate) fn changed(&self) {
        if let Some(hook) = &self.opts.on_change {
            hook.fire();
        }
    }

    /// Starts the listener matching the node's state; a node that cannot come up is Failed.
    async fn boot(self: &Arc<Self>) -> Result<NodePhase, NodeError> {
        let installed = self.lock().installed.as_ref().map(|i| i.config.static_ip);
        let phase = match installed {
            None => self.start_maintenance().await,
            Some(static_ip) => self.start_installed(static_ip).await,
        };
        let phase = match phase {
            Ok(p) => p,
            Err(e) => {
                self.phase.send_replace(NodePhase::Failed(e.to_string()));
                return Err(e);
            }
        };
        self.phase.send_replace(phase.clone());
        Ok(phase)
    }

    /// [`Self::boot`] as a boxed future, for the tasks that boot the node again later (a worker
    /// whose certificate waited for trustd).
    fn boot_boxed(
        self: Arc<Self>,
    ) -> Pin<Box<dyn Future<Output = Result<NodePhase, NodeError>> + Send>> {
        Box::pin(async move { self.boot().await })
    }

    async fn start_maintenance(self: &Arc<Self>) -> Result<NodePhase, NodeError> {
        let want = self
            .lock()
            .maintenance_bound
            .unwrap_or(self.opts.maintenance_addr);
        let listener = crate::task::bind_again(want)
            .await
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let tls = self.maintenance_cert.server_config(&[b"h2"])?;
        let mut st = self.lock();
        st.generation += 1;
        st.boot_id = crate::random::uuid();
        st.resetting = false;
        st.upgrading = false;
        st.maintenance_bound = Some(addr);
        let service = ApidService::maintenance(self.clone(), st.generation);
        st.server = Some(self.serve(listener, tls, service));
        Ok(NodePhase::Maintenance(addr))
    }

    /// Talos binds the static address only when the LinkConfig's link exists: a LinkAliasConfig
    /// names a link only when its selector matches exactly one (`link_alias_config.go` skips the
    /// alias on zero or several matches), and without it the installed node has no network.
    fn check_links(&self, cfg: &NodeConfig) -> Result<(), NodeError> {
        let Some(alias) = cfg.link_alias.as_ref() else {
            return Ok(());
        };
        if self.opts.macs.is_empty() || cfg.static_link.as_deref() != Some(alias.name.as_str()) {
            return Ok(());
        }
        let matched = self
            .opts
            .macs
            .iter()
            .filter(|mac| alias.matches_mac(mac))
            .count();
        if matched == 1 {
            Ok(())
        } else {
            Err(NodeError::NoNetwork {
                alias: alias.name.clone(),
                matched,
                macs: self.opts.macs.clone(),
            })
        }
    }

    /// Whether this worker reaches trustd now, and how (see [`TrustdRoute`]).
    fn trustd_route(&self, cfg: &NodeConfig) -> Option<TrustdRoute> {
        let host = url_host_port(&cfg.endpoint).map(|(h, _)| h);
        self.opts.clusters.trustd_route(
            &cfg.os_ca_pem,
            host.as_deref(),
            self.opts.discovery && cfg.discovery,
        )
    }

    /// A worker without its apid certificate retries trustd (as Talos' APIController does on
    /// every endpoint change) and boots its apid once a control plane answers. Stops when the
    /// node goes down.
    fn await_trustd(self: &Arc<Self>, generation: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            let step = (this.opts.reboot_delay / 2)
                .max(Duration::from_millis(10))
                .min(Duration::from_secs(1));
            loop {
                tokio::time::sleep(step).await;
                let reachable = {
                    let st = this.lock();
                    if st.generation != generation {
                        return;
                    }
                    match st.installed.as_ref() {
                        Some(inst) => this.trustd_route(&inst.config).is_some(),
                        None => return,
                    }
                };
                if reachable {
                    if let Err(e) = this.clone().boot_boxed().await {
                        tracing::debug!(error = %e, "worker could not boot after trustd answered");
                    }
                    return;
                }
                this.counters
                    .trustd_unreachable
                    .fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    async fn start_installed(
        self: &Arc<Self>,
        static_ip: Option<IpAddr>,
    ) -> Result<NodePhase, NodeError> {
        // A worker's apid certificate is signed by trustd on a control plane reached through the
        // control-plane endpoint (or discovery): until one answers, apid does not listen.
        let waiting = {
            let mut st = self.lock();
            let generation = st.generation;
            let Some(inst) = st.installed.as_mut() else {
                return Ok(NodePhase::Off);
            };
            self.check_links(&inst.config)?;
            let now = Instant::now();
            let settle = self
                .opts
                .cri_delay
                .max(self.opts.time_sync.unwrap_or_default());
            inst.booted_at = Some(if std::mem::take(&mut inst.settled) {
                now.checked_sub(settle).unwrap_or(now)
            } else {
                now
            });
            if inst.config.os_ca.is_some() {
                None
            } else {
                match self.trustd_route(&inst.config) {
                    Some(route) => {
                        inst.trustd_route = Some(route);
                        None
                    }
                    None => Some(generation),
                }
            }
        };
        if let Some(generation) = waiting {
            self.counters
                .trustd_unreachable
                .fetch_add(1, Ordering::Relaxed);
            self.await_trustd(generation);
            return Ok(NodePhase::Off);
        }
        let ip = static_ip.unwrap_or(self.opts.maintenance_addr.ip());
        let want = SocketAddr::new(ip, self.opts.apid_port);
        let listener = crate::task::bind_again(want)
            .await
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Bind { addr: want, source })?;
        let restart_kube = {
            let mut st = self.lock();
            let talos_version = st.talos_version.clone();
            let Some(inst) = st.installed.as_mut() else {
                return Ok(NodePhase::Off);
            };
            let cfg = &inst.config;
            let trustd_ca;
            let os_ca = match cfg.os_ca.as_ref() {
                Some(ca) => ca,
                None => {
                    let key = self
                        .opts
                        .clusters
                        .os_ca_key(&cfg.os_ca_pem)
                        .ok_or(NodeError::Trustd)?;
                    trustd_ca = crate::pki::Ca::from_pem("machine.ca", &cfg.os_ca_pem, &key)?;
                    &trustd_ca
                }
            };
            let mut sans = vec![ip.to_string(), self.opts.maintenance_addr.ip().to_string()];
            sans.extend(cfg.hostname.iter().cloned());
            sans.extend(cfg.cert_sans.iter().cloned());
            sans.dedup();
            let leaf = Leaf {
                common_name: cfg.hostname.clone(),
                sans,
                server: true,
                client: false,
                days: 1,
                ..Leaf::default()
            };
            let server_cert = os_ca.issue(&leaf, KeyAlg::Ed25519)?;
            let tls = os_ca.server_config_requiring_clients(&server_cert, &[b"h2"])?;
            inst.addr = addr;
            let ca = cfg.os_ca_pem.clone();
            self.opts.clusters.kubelet_up(
                &ca,
                self.kube_node(inst, &talos_version),
                self.kubelet_endpoint(cfg),
            );
            let control_plane = cfg.machine_type == MachineType::ControlPlane;
            if control_plane {
                self.opts
                    .clusters
                    .trustd_up(&ca, &inst.name(), addr.ip(), Arc::downgrade(self));
            }
            inst.etcd_member = control_plane && inst.etcd_member;
            let etcd = inst.etcd_member;
            // A member removed while the node was away: its etcd exits at once, again and again
            // ("the member has been permanently removed"); it neither serves nor joins.
            let removed = etcd && !self.opts.clusters.member_up(&ca, &inst.name(), addr.ip());
            if removed {
                tracing::warn!(node = %inst.name(), "etcd: this member was removed from the cluster; etcd does not start");
                inst.etcd_member = false;
            }
            st.generation += 1;
            st.boot_id = crate::random::uuid();
            st.resetting = false;
            st.upgrading = false;
            let service = ApidService::installed(self.clone(), st.generation);
            st.server = Some(self.serve(listener, tls, service));
            match (control_plane, etcd, removed) {
                (true, true, false) => Some(None),
                (true, false, _) => Some(Some(st.generation)),
                (true, true, true) | (false, _, _) => None,
            }
        };
        match restart_kube {
            Some(None) => self.start_kube(false).await?,
            Some(Some(generation)) => self.join_etcd(generation),
            None => {}
        }
        Ok(NodePhase::Installed(addr))
    }

    /// Applies a validated config and "reboots" into installed mode. Applied again to an
    /// installed node, the etcd data (STATE/EPHEMERAL) survives.
    pub(crate) fn install(self: &Arc<Self>, config: NodeConfig) {
        if let Some(ca) = config.os_ca.as_ref() {
            self.opts
                .clusters
                .record_os_ca_key(&config.os_ca_pem, ca.key_pem());
        }
        let fresh = {
            let mut st = self.lock();
            let kept = st.installed.as_mut().map(|i| {
                i.stop_kube();
                (i.bootstrapped, i.etcd_member, i.etcd.take(), i.addr)
            });
            let fresh = kept.is_none();
            // The installer writes its own release to disk: the installed node runs that one, not the
            // release it booted into maintenance mode from.
            if fresh
                && let Some(version) = config
                    .images
                    .installer
                    .as_deref()
                    .and_then(installer_version)
            {
                st.talos_version = version;
            }
            let (bootstrapped, etcd_member, etcd, addr) =
                kept.unwrap_or((false, false, None, self.opts.maintenance_addr));
            st.installed = Some(Installed {
                addr,
                config,
                bootstrapped,
                etcd_member,
                kube: None,
                etcd,
                vip: None,
                trustd_route: None,
                booted_at: None,
                settled: false,
                recovery: None,
            });
            fresh
        };
        self.changed();
        // From maintenance mode the installer runs first (the maintenance listener is gone
        // meanwhile); an installed node only reboots.
        self.restart(
            if fresh {
                self.opts.install_delay
            } else {
                self.opts.reboot_delay / 2
            },
            |_| {},
        );
    }

    /// Talos' reset sequence, run after the Reset call was answered. A graceful reset first
    /// drains its own Node (cordon, evictions honouring PodDisruptionBudgets, tried once here), then
    /// on a control plane leaves etcd as `EtcdLeaveCluster` does: when etcd refuses (the last
    /// member, or a running member whose removal would break the active quorum), the sequence fails
    /// and the node runs on unchanged ([`NodeSim::reset_failures`] says why). A reset that is not
    /// graceful leaves the etcd member behind, down, for someone to remove. Then the disk is wiped
    /// and the node reboots into maintenance mode (or stays off). With `keep_state` (only
    /// EPHEMERAL wiped) the config survives: etcd's data is gone, and the node comes back installed
    /// with etcd waiting to join or be bootstrapped (the first step of Talos' etcd disaster
    /// recovery). Talos never deletes the Node object: it stays, NotReady.
    pub(crate) fn reset(self: &Arc<Self>, graceful: bool, reboot: bool, keep_state: bool) {
        let clusters = &self.opts.clusters;
        let member = {
            let st = self.lock();
            st.installed
                .as_ref()
                .map(|i| (i.config.os_ca_pem.clone(), i.name(), i.etcd_member))
        };
        let mut left_etcd = false;
        if graceful && let Some((ca, name, etcd_member)) = &member {
            if let Some(kube) = clusters.live_kube(ca) {
                let refused = kube.talos_drain(name);
                if !refused.is_empty() {
                    tracing::debug!(?refused, "reset: evictions refused, going on as Talos does");
                }
            }
            if *etcd_member {
                if let Some(refusal) = clusters.remove_refusal(ca, name) {
                    let why = format!(
                        "reset failed: failed to leave cluster: failed to remove member {}: {refusal}",
                        member_id(name)
                    );
                    tracing::warn!(node = %name, "{why}");
                    self.lock().reset_failures.push(why);
                    return;
                }
                left_etcd = true;
            }
        }
        let winner = {
            let mut st = self.lock();
            st.resetting = true;
            if keep_state && st.installed.is_some() {
                st.installed.as_mut().and_then(|inst| {
                    inst.bootstrapped = false;
                    inst.recovery = None;
                    inst.wipe_etcd(clusters, left_etcd)
                })
            } else {
                let winner = st.installed.as_mut().and_then(|inst| {
                    inst.stop_kube();
                    clusters.reset(&inst.config.os_ca_pem, &inst.name(), left_etcd)
                });
                st.installed = None;
                st.staged = None;
                winner
            }
        };
        take_vip(clusters, winner);
        self.changed();
        if reboot {
            self.reboot();
        } else {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.opts.reboot_delay).await;
                let mut st = this.lock();
                st.generation += 1;
                st.server = None;
                drop(st);
                this.phase.send_replace(NodePhase::Off);
            });
        }
    }

    /// etcd removed this node's running member: etcd exits ("the member has been permanently removed
    /// from the cluster") and Talos' restarts of it fail the same way, so the API server that talks to
    /// it stops and a VIP held here moves. apid, trustd and the kubelet run on.
    pub(crate) fn etcd_removed(self: &Arc<Self>) {
        let winner = {
            let mut st = self.lock();
            let Some(inst) = st.installed.as_mut().filter(|i| i.etcd_member) else {
                return;
            };
            tracing::warn!(node = %inst.name(), "etcd: the member has been permanently removed from the cluster");
            inst.stop_kube();
            inst.vip = None;
            inst.etcd_member = false;
            self.opts
                .clusters
                .etcd_stopped(&inst.config.os_ca_pem, &inst.name())
        };
        take_vip(&self.opts.clusters, winner);
        self.changed();
    }

    /// Simulates a reboot: listeners go down after the response was sent, then come back.
    pub(crate) fn reboot(self: &Arc<Self>) {
        self.restart(self.opts.reboot_delay / 2, |_| {});
    }

    /// A reboot taking `delay`, with `while_down` run on the state while the node is off (what the
    /// boot loader picks: an upgrade's new version, or the old one after a rollback).
    pub(crate) fn reboot_into(
        self: &Arc<Self>,
        delay: Duration,
        while_down: impl FnOnce(&mut State) + Send + 'static,
    ) {
        self.restart_with(delay / 2, delay / 2, while_down);
    }

    /// Listeners go down after the response was sent, stay down for `off_for`, then come back.
    fn restart(
        self: &Arc<Self>,
        off_for: Duration,
        while_down: impl FnOnce(&mut State) + Send + 'static,
    ) {
        self.restart_with(self.opts.reboot_delay / 2, off_for, while_down);
    }

    /// Listeners go down `down_after` the response was sent, stay down for `off_for` (`while_down` runs on
    /// the state meanwhile), then come back.
    fn restart_with(
        self: &Arc<Self>,
        down_after: Duration,
        off_for: Duration,
        while_down: impl FnOnce(&mut State) + Send + 'static,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(down_after).await;
            let winner = {
                let mut st = this.lock();
                st.generation += 1;
                st.server = None;
                st.installed
                    .as_mut()
                    .and_then(|i| i.go_down(&this.opts.clusters))
            };
            take_vip(&this.opts.clusters, winner);
            this.phase.send_replace(NodePhase::Off);
            tokio::time::sleep(off_for).await;
            {
                let mut st = this.lock();
                while_down(&mut st);
            }
            this.changed();
            let phase = match this.boot().await {
                Ok(p) => p,
                Err(e) => {
                    let p = NodePhase::Failed(e.to_string());
                    this.phase.send_replace(p.clone());
                    p
                }
            };
            tracing::debug!(?phase, "simulated node rebooted");
        });
    }

    /// The endpoint this node's kubelet dials; `None` when the API listens on an ephemeral port
    /// (tests), where the kubelet registers with whatever API of its cluster runs.
    fn kubelet_endpoint(&self, cfg: &NodeConfig) -> Option<(String, u16)> {
        match self.opts.kube_port {
            Some(_) => None,
            None => url_host_port(&cfg.endpoint),
        }
    }

    /// The options of an API server of this node at `ip` (its own address or the VIP).
    fn kube_options(&self, inst: &Installed, ip: IpAddr) -> Result<Option<KubeOptions>, NodeError> {
        let Some(ca) = inst.config.cluster_ca.as_ref() else {
            return Ok(None);
        };
        let endpoint = url_host_port(&inst.config.endpoint);
        let port = match self.opts.kube_port {
            Some(p) => p,
            None => endpoint.as_ref().map(|(_, p)| *p).unwrap_or(6443),
        };
        let mut sans = vec![
            ip.to_string(),
            inst.addr.ip().to_string(),
            "127.0.0.1".into(),
            "localhost".into(),
            "kubernetes".into(),
        ];
        sans.extend(endpoint.map(|(h, _)| h));
        sans.extend(inst.config.vip.map(|v| v.to_string()));
        sans.extend(inst.config.hostname.iter().cloned());
        sans.dedup();
        Ok(Some(KubeOptions {
            bind: SocketAddr::new(ip, port),
            server_cert: ca.issue(
                &Leaf {
                    common_name: Some("kube-apiserver".into()),
                    sans,
                    server: true,
                    days: 365,
                    ..Leaf::default()
                },
                KeyAlg::P256,
            )?,
            client_ca_pem: ca.cert_pem().to_owned(),
            version: self.apiserver_version(&inst.config),
        }))
    }

    /// The version this control plane's kube-apiserver runs: its config's image tag.
    fn apiserver_version(&self, cfg: &NodeConfig) -> String {
        cfg.apiserver_version
            .clone()
            .unwrap_or_else(|| self.opts.kubernetes_version.clone())
    }

    /// Starts this control plane's Kubernetes API server: over a new store when etcd was just
    /// bootstrapped (`fresh`), else over the cluster's running store (a new one if none runs).
    /// With a VIP configured the node then takes part in the VIP election.
    pub(crate) async fn start_kube(self: &Arc<Self>, fresh: bool) -> Result<(), NodeError> {
        let (opts, ca, name, data) = {
            let st = self.lock();
            let Some(inst) = st.installed.as_ref() else {
                return Ok(());
            };
            let Some(opts) = self.kube_options(inst, inst.addr.ip())? else {
                return Ok(());
            };
            let data = if fresh { None } else { inst.etcd.clone() };
            (opts, inst.config.os_ca_pem.clone(), inst.name(), data)
        };
        let running = if fresh {
            None
        } else {
            self.opts.clusters.live_kube(&ca)
        };
        let kube = match running {
            // The cluster's etcd runs: this member serves its (newer) content.
            Some(store) => store.serve_at(opts).await?,
            // Nothing else runs: etcd comes back from this node's disk.
            None => {
                let kube =
                    KubeSim::start_counted(opts, data.as_ref(), self.requests.clone()).await?;
                self.opts.clusters.kube_started(&ca, &kube);
                kube
            }
        };
        let winner = {
            let mut st = self.lock();
            let Some(inst) = st.installed.as_mut().filter(|i| i.etcd_member) else {
                return Ok(());
            };
            inst.kube = Some(kube.clone());
            inst.etcd = None;
            let candidate = inst.config.vip.map(|_| Arc::downgrade(self));
            self.opts
                .clusters
                .api_up(&ca, &name, kube.addr(), candidate)
        };
        static_pods::started(self);
        if self.opts.workloads {
            workloads::publish(&kube);
        }
        take_vip(&self.opts.clusters, winner);
        self.changed();
        Ok(())
    }

    /// Won the VIP election: serves the API at the VIP too. False if it cannot (then nobody
    /// holds the VIP until the next election).
    async fn take_vip(self: &Arc<Self>, won: &VipWinner) -> bool {
        let prepared = {
            let st = self.lock();
            st.installed
                .as_ref()
                .filter(|i| i.etcd_member && i.kube.is_some() && i.name() == won.name)
                .and_then(|i| {
                    let vip = i.config.vip?;
                    Some((self.kube_options(i, vip), i.kube.clone()?))
                })
        };
        let Some((Ok(Some(opts)), kube)) = prepared else {
            return false;
        };
        let vip = match kube.serve_at(opts).await {
            Ok(vip) => vip,
            Err(e) => {
                tracing::debug!(error = %e, "simulated node cannot take the VIP");
                return false;
            }
        };
        let mut st = self.lock();
        let Some(inst) = st
            .installed
            .as_mut()
            .filter(|i| i.etcd_member && i.kube.is_some())
        else {
            return false;
        };
        self.opts
            .clusters
            .vip_taken(&won.os_ca_pem, &won.name, vip.addr());
        inst.vip = Some(vip);
        true
    }

    /// A config applied without a reboot takes effect: the kubelet follows the (maybe new)
    /// endpoint, and an etcd member that now has a Layer2VIPConfig joins the VIP election (Talos
    /// starts the VIP operator without a reboot). Dropping a VIP from the config is not modelled.
    pub(crate) fn reconfigured(self: &Arc<Self>) {
        let winner = {
            let st = self.lock();
            let Some(inst) = st.installed.as_ref() else {
                return;
            };
            let ca = inst.config.os_ca_pem.clone();
            // The kubelet restarts on its new image without a reboot (the static pods: below).
            self.opts.clusters.kubelet_up(
                &ca,
                self.kube_node(inst, &st.talos_version),
                self.kubelet_endpoint(&inst.config),
            );
            match (inst.config.vip, inst.kube.as_ref()) {
                (Some(_), Some(kube)) if inst.etcd_member => self.opts.clusters.api_up(
                    &ca,
                    &inst.name(),
                    kube.addr(),
                    Some(Arc::downgrade(self)),
                ),
                _ => None,
            }
        };
        static_pods::reconfigured(self);
        take_vip(&self.opts.clusters, winner);
    }

    /// A control plane that was not bootstrapped joins etcd once the cluster's members answer
    /// through the control-plane endpoint (Talos retries that for as long as it takes), then
    /// starts its API server. Stops when the node goes down.
    fn join_etcd(self: &Arc<Self>, generation: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            let step = (this.opts.reboot_delay / 2).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(step).await;
                let joined = {
                    let mut st = this.lock();
                    if st.generation != generation {
                        return;
                    }
                    let endpoint = match st.installed.as_ref() {
                        Some(inst) if !inst.etcd_member => this.kubelet_endpoint(&inst.config),
                        _ => return,
                    };
                    let Some(inst) = st.installed.as_mut() else {
                        return;
                    };
                    let ca = inst.config.os_ca_pem.clone();
                    if this.opts.clusters.can_join(&ca, endpoint.as_ref()) {
                        this.opts.clusters.add_member(
                            &ca,
                            &inst.name(),
                            inst.addr.ip(),
                            this.opts.learner_delay,
                        );
                        inst.etcd_member = true;
                        true
                    } else {
                        false
                    }
                };
                if joined {
                    if let Err(e) = this.start_kube(false).await {
                        tracing::debug!(error = %e, "joined control plane: API server did not start");
                    }
                    return;
                }
            }
        });
    }

    /// The Node object the kubelet of this node registers: its version is the tag of the kubelet image
    /// in the config, its OS image the Talos version the node runs.
    fn kube_node(&self, inst: &Installed, talos_version: &str) -> KubeNode {
        KubeNode {
            name: node_name(inst),
            internal_ip: inst.addr.ip(),
            ready: true,
            control_plane: inst.config.machine_type == MachineType::ControlPlane,
            kubelet_version: inst
                .config
                .kubelet_version
                .clone()
                .unwrap_or_else(|| self.opts.kubernetes_version.clone()),
            os_image: format!("Talos ({talos_version})"),
        }
    }
}

/// The node's hostname: configured, or derived from its address.
pub(crate) fn node_name(inst: &Installed) -> String {
    inst.config
        .hostname
        .clone()
        .unwrap_or_else(|| default_hostname(inst.addr.ip()))
}

/// The hostname Talos derives when none is configured (`talos-` + address-based suffix).
pub(crate) fn default_hostname(ip: IpAddr) -> String {
    let suffix: String = ip
        .to_string()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("talos-{suffix}")
}

/// `https://host:port/...` → (host, port).
pub(crate) fn url_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6.split_once("]:")?;
        return Some((host.to_owned(), port.parse().ok()?));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((authority.to_owned(), 443)),
    }
}

type ApidStream = tokio_rustls::server::TlsStream<FlakyStream<tokio::net::TcpStream>>;

/// Accepts TCP (closing it at once during an injected outage), runs the TLS handshake (failures are
/// simply dropped, as a TLS server does), and hands the streams to a tonic server that counts calls.
fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    service: ApidService,
    flapper: Option<Arc<Flapper>>,
    requests: RequestCounts,
) -> Listener {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let (tx, rx) = mpsc::channel::<Result<ApidStream, std::io::Error>>(16);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((tcp, _peer)) = listener.accept().await else {
                continue;
            };
            // Small response writes must not wait out the client's delayed ACK (Nagle).
            let _ = tcp.set_nodelay(true);
            if flapper.as_ref().is_some_and(|f| f.refuses_now()) {
                drop(tcp);
                continue;
            }
            let tcp = FlakyStream::new(tcp, flapper.clone());
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(stream) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "apid sim: TLS handshake failed"),
                }
            });
        }
    });
    let serve = tokio::spawn(async move {
        // The trace hook sees every request's path: the one place that counts calls of every method.
        let result = tonic::transport::Server::builder()
            .trace_fn(move |req| {
                requests.record(&format!("apid {}", req.uri().path()));
                tracing::Span::none()
            })
            .add_service(StateServer::new(super::cosi::StateService(service.clone())))
            .add_service(MachineServiceServer::new(service))
            .serve_with_incoming(ReceiverStream::new(rx))
            .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "apid sim server stopped");
        }
    });
    Listener { accept, serve }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_split_into_host_and_port() {
        assert_eq!(
            url_host_port("https://127.0.20.100:6443"),
            Some(("127.0.20.100".into(), 6443))
        );
        assert_eq!(
            url_host_port("https://k8s.home/"),
            Some(("k8s.home".into(), 443))
        );
        assert_eq!(
            url_host_port("https://[::1]:6443"),
            Some(("::1".into(), 6443))
        );
        assert_eq!(url_host_port("http://x:1"), None);
    }
}
