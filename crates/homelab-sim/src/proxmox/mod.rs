//! The Proxmox VE simulator: one node (or a cluster of several, see [`SimOptions::other_nodes`]) behind an
//! HTTPS API on loopback, checked against the official API schema
//! of PVE 8.4 or 9.1. Start it in-process with [`ProxmoxSim::start`]; it hands out the endpoint, an API token
//! and the certificate fingerprint, and lets tests and other simulators watch VMs boot.
//!
//! ```no_run
//! # async fn demo() -> Result<(), homelab_sim::proxmox::SimError> {
//! use homelab_sim::proxmox::{ProxmoxSim, SimOptions};
//! let sim = ProxmoxSim::start(SimOptions::default()).await?;
//! sim.on_vm_started(Box::new(|ev| println!("VM {} booted with {:?} at {:?}", ev.vmid, ev.mac, ev.address)));
//! println!("{} {} {}", sim.endpoint(), sim.token_id(), sim.fingerprint());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod acl;
mod api;
mod download;
mod faults;
mod firmware;
mod formats;
mod guest;
mod schema;
mod server;
mod snapshot;
mod state;
mod tasks_api;
mod tls;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use acl::{Acl, AclEntry, all_privileges};
pub use faults::{EndpointFault, FaultKind, Faults};
pub use firmware::{SIDERO as SIDERO_SIGNER, SecureBoot, sign as sign_medium};
pub use guest::mark_platform;
pub use schema::{PveVersion, Schema};
pub use snapshot::{ProxmoxSnapshot, VmSnapshot, VolumeSnapshot};
pub use state::{AgentGate, DhcpHook, Iface, Storage, Volume};
pub use tls::SimIdentity;

use state::{Shared, World};

/// How long simulated things take.
#[derive(Debug, Clone)]
pub struct SimTiming {
    /// Duration of a task (create, start, stop, destroy; downloads take half before fetching).
    pub task_duration: Duration,
    /// Time from VM start until the guest agent answers.
    pub agent_delay: Duration,
    /// How long an agent call takes to fail while the agent is down (PVE waits ~3 s).
    pub agent_timeout: Duration,
    /// Delay before a 401 answer (PVE: ~3 s).
    pub auth_failure_delay: Duration,
    /// How long a task waits for a VM's config flock before "can't lock file … - got timeout" (PVE's
    /// `lock_config`: 10 s).
    pub lock_timeout: Duration,
    /// How long pveproxy keeps an idle keep-alive connection open (`AnyEvent.pm`: the handle timeout, 5 s).
    pub idle_timeout: Duration,
}

impl Default for SimTiming {
    fn default() -> Self {
        SimTiming {
            task_duration: Duration::from_millis(300),
            agent_delay: Duration::from_millis(800),
            agent_timeout: Duration::from_millis(300),
            auth_failure_delay: Duration::from_secs(3),
            lock_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

impl SimTiming {
    /// Short times for tests.
    pub fn fast() -> Self {
        SimTiming {
            task_duration: Duration::from_millis(60),
            agent_delay: Duration::from_millis(150),
            agent_timeout: Duration::from_millis(20),
            auth_failure_delay: Duration::from_millis(20),
            lock_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// What the simulated node looks like.
#[derive(Clone)]
pub struct SimOptions {
    pub version: PveVersion,
    /// Loopback address to bind (127.0.0.0/8 only).
    pub bind: Ipv4Addr,
    /// 0 = an ephemeral port.
    pub port: u16,
    /// The node that serves the API.
    pub node: String,
    /// More nodes of the same cluster (reached through the first, as pveproxy forwards). Each gets its own
    /// copy of every storage that is not `shared`.
    pub other_nodes: Vec<String>,
    /// Whether the VMs' network has a DHCP server. Without one a VM comes up with an address only from its
    /// cloud-init drive (`ipconfig0`); a guest with neither never gets one.
    pub dhcp_server: bool,
    /// `USER@REALM!TOKENID`.
    pub token_id: String,
    /// `None` = a random UUID.
    pub token_secret: Option<String>,
    pub storages: Vec<Storage>,
    pub interfaces: Vec<Iface>,
    /// `None` = every privilege on `/`.
    pub acl: Option<Acl>,
    /// Resource pools that exist (empty at first).
    pub pools: Vec<String>,
    pub faults: Faults,
    pub timing: SimTiming,
    /// Custom address assignment; default 127.0.20.100, .101, … by first boot, stable per MAC.
    pub dhcp: Option<DhcpHook>,
    /// Poked when a task starts or ends (every change of VMs and storage goes through one), for savers.
    pub on_change: Option<Arc<tokio::sync::Notify>>,
}

impl std::fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOptions")
            .field("version", &self.version)
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("node", &self.node)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            version: PveVersion::V9_1,
            bind: Ipv4Addr::LOCALHOST,
            port: 0,
            node: "pve".into(),
            other_nodes: Vec::new(),
            dhcp_server: true,
            token_id: "homelab@pve!homelabctl".into(),
            token_secret: None,
            storages: vec![
                Storage::dir(
                    "local",
                    "/var/lib/vz",
                    &["iso", "vztmpl", "backup", "import"],
                ),
                Storage::lvmthin("local-lvm", &["images", "rootdir"]),
            ],
            interfaces: vec![
                Iface {
                    name: "eno1".into(),
                    kind: "eth".into(),
                    vlan_aware: false,
                },
                Iface {
                    name: "vmbr0".into(),
                    kind: "bridge".into(),
                    vlan_aware: true,
                },
            ],
            acl: None,
            pools: Vec::new(),
            faults: Faults::default(),
            timing: SimTiming::default(),
            dhcp: None,
            on_change: None,
        }
    }
}

impl SimOptions {
    /// Defaults with short timings, for tests.
    pub fn fast() -> Self {
        SimOptions {
            timing: SimTiming::fast(),
            ..SimOptions::default()
        }
    }

    /// Removes a privilege from the token everywhere (to test permission errors).
    pub fn without_privilege(mut self, privilege: &str) -> Self {
        let mut acl = self
            .acl
            .take()
            .unwrap_or_else(|| Acl::administrator(self.version));
        acl.revoke(privilege);
        self.acl = Some(acl);
        self
    }
}

/// A VM finished booting: which one, its NIC's MAC (lower case) and the address "DHCP" gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmBootEvent {
    pub node: String,
    pub vmid: u32,
    pub name: Option<String>,
    pub mac: Option<String>,
    pub address: Option<Ipv4Addr>,
    /// The ISO volume in the CD-ROM drive, if any (e.g. `local:iso/talos.iso`).
    pub iso: Option<String>,
}

/// A read-only view of a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmView {
    pub vmid: u32,
    /// The node it lives on.
    pub node: String,
    pub running: bool,
    pub lock: Option<String>,
    pub config: BTreeMap<String, String>,
    pub mac: Option<String>,
    pub address: Option<Ipv4Addr>,
    /// The Secure Boot state of its EFI vars.
    pub firmware: SecureBoot,
    /// Why the firmware refused to boot the guest at the last start, if it did.
    pub boot_refused: Option<String>,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulator only listens on loopback (127.0.0.0/8), not {0}")]
    NotLoopback(Ipv4Addr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator setup failed: {0}")]
    Setup(String),
}

/// A running simulator.
pub struct ProxmoxSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    identity: SimIdentity,
    fingerprint: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ProxmoxSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxmoxSim")
            .field("endpoint", &self.endpoint())
            .field("token_id", &self.shared.token_id)
            .finish()
    }
}

impl ProxmoxSim {
    /// Binds, generates the certificates and serves until [`ProxmoxSim::shutdown`] (or drop).
    pub async fn start(opts: SimOptions) -> Result<ProxmoxSim, SimError> {
        let identity = tls::generate(&opts.node, IpAddr::V4(opts.bind)).map_err(SimError::Setup)?;
        Self::serve(opts, identity, None).await
    }

    /// Comes back as a snapshot left it: the same identity (certificate, token), node, version, address and
    /// port, VMs, volumes and leases. `opts` gives the rest (storages, timing, ACL, faults, hooks).
    pub async fn restore(
        mut opts: SimOptions,
        snap: &ProxmoxSnapshot,
    ) -> Result<ProxmoxSim, SimError> {
        opts.version = snap.version;
        opts.node = snap.node.clone();
        opts.bind = snap.bind;
        opts.port = snap.port;
        opts.token_id = snap.token_id.clone();
        opts.token_secret = Some(snap.token_secret.clone());
        Self::serve(opts, snap.identity.clone(), Some(snap)).await
    }

    async fn serve(
        opts: SimOptions,
        identity: SimIdentity,
        snap: Option<&ProxmoxSnapshot>,
    ) -> Result<ProxmoxSim, SimError> {
        if !opts.bind.is_loopback() {
            return Err(SimError::NotLoopback(opts.bind));
        }
        let schema = Schema::load(opts.version).map_err(SimError::Setup)?;
        let cert = tls::load(identity).map_err(SimError::Setup)?;
        let addr = SocketAddr::new(IpAddr::V4(opts.bind), opts.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let mut nodes = vec![opts.node.clone()];
        nodes.extend(
            opts.other_nodes
                .iter()
                .filter(|n| **n != opts.node)
                .cloned(),
        );
        let mut world = World {
            version: opts.version,
            node: opts.node.clone(),
            storages: World::storage_instances(&opts.node, &nodes, &opts.storages),
            nodes,
            downloads: Vec::new(),
            dhcp_server: opts.dhcp_server,
            fingerprint: cert.fingerprint.clone(),
            interfaces: opts.interfaces.clone(),
            vms: BTreeMap::new(),
            tasks: BTreeMap::new(),
            next_pid: 0x0001_E000,
            acl: opts
                .acl
                .clone()
                .unwrap_or_else(|| Acl::administrator(opts.version)),
            faults: faults::FaultState::new(opts.faults.clone()),
            leases: BTreeMap::new(),
            pools: opts
                .pools
                .iter()
                .map(|p| (p.clone(), Default::default()))
                .collect(),
            held: Default::default(),
            boot_hooks: Vec::new(),
            agent_gate: None,
            dhcp: opts.dhcp.clone(),
            on_change: opts.on_change.clone(),
        };
        if let Some(snap) = snap {
            world.restore(snap);
        }
        let secret = opts
            .token_secret
            .clone()
            .unwrap_or_else(crate::random::uuid);
        let shared = Arc::new(Shared::new(
            world,
            schema,
            opts.timing.clone(),
            opts.token_id.clone(),
            secret,
        ));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config.clone());
        let task = tokio::spawn(server::serve(listener, acceptor, shared.clone(), stop_rx));
        Ok(ProxmoxSim {
            shared,
            addr,
            identity: cert.identity,
            fingerprint: cert.fingerprint,
            stop,
            task: Some(task),
        })
    }

    /// The durable state now (see [`ProxmoxSnapshot`]), for [`ProxmoxSim::restore`].
    pub fn snapshot(&self) -> ProxmoxSnapshot {
        let part = self.shared.world().snapshot();
        let bind = match self.addr.ip() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
        };
        ProxmoxSnapshot {
            version: self.version(),
            node: self.node(),
            bind,
            port: self.addr.port(),
            token_id: self.shared.token_id.clone(),
            token_secret: self.shared.token_secret.clone(),
            identity: self.identity.clone(),
            vms: part.vms,
            volumes: part.volumes,
            leases: part.leases,
            next_pid: part.next_pid,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn node(&self) -> String {
        self.shared.world().node.clone()
    }

    /// Every node of the simulated cluster, the API's own first.
    pub fn nodes(&self) -> Vec<String> {
        self.shared.world().nodes.clone()
    }

    /// How many `download-url` tasks were started per storage instance: `node/storage` for a node's own
    /// storage, `storage` alone for a shared one.
    pub fn downloads_per_storage(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for key in &self.shared.world().downloads {
            *out.entry(key.clone()).or_insert(0) += 1;
        }
        out
    }

    /// The volumes of storage `storage` as `node` sees it.
    pub fn volumes_on(&self, node: &str, storage: &str) -> BTreeMap<String, Volume> {
        self.shared
            .world()
            .storage(node, storage)
            .map(|s| s.volumes.clone())
            .unwrap_or_default()
    }

    pub fn version(&self) -> PveVersion {
        self.shared.world().version
    }

    pub fn token_id(&self) -> &str {
        &self.shared.token_id
    }

    pub fn token_secret(&self) -> &str {
        &self.shared.token_secret
    }

    /// SHA-256 of the node certificate, colon-separated upper-case hex (as `GET /nodes` reports).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// PEM of the simulated cluster CA (usable as a CA file).
    pub fn ca_pem(&self) -> &str {
        &self.identity.ca_pem
    }

    /// Calls `hook` each time a VM finishes booting (from a simulator task; keep it short).
    pub fn on_vm_started(&self, hook: Box<dyn Fn(&VmBootEvent) + Send + Sync>) {
        self.shared.world().boot_hooks.push(Arc::from(hook));
    }

    /// A channel of boot events.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<VmBootEvent> {
        self.shared.boot_tx.subscribe()
    }

    /// Replaces the address assignment.
    pub fn set_dhcp(&self, hook: DhcpHook) {
        self.shared.world().dhcp = Some(hook);
    }

    /// Lets the guest OS decide whether its agent runs (see [`AgentGate`]).
    pub fn set_agent_gate(&self, gate: AgentGate) {
        self.shared.world().agent_gate = Some(gate);
    }

    /// Replaces the fault plan (counters restart).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.world().faults = faults::FaultState::new(faults);
    }

    /// Replaces the token's ACL.
    pub fn set_acl(&self, acl: Acl) {
        self.shared.world().acl = acl;
    }

    /// The token's ACL now (destroying a VM removes its `/vms/{vmid}` entries, as PVE does).
    pub fn acl(&self) -> Acl {
        self.shared.world().acl.clone()
    }

    /// The members of each resource pool.
    pub fn pools(&self) -> BTreeMap<String, std::collections::BTreeSet<u32>> {
        self.shared.world().pools.clone()
    }

    /// New tasks of type `kind` (`qmcreate`, `qmstart`, …) wait before doing anything until
    /// [`ProxmoxSim::release_tasks`]: a worker that has not got going yet. A held `qmcreate` leaves the VM
    /// with `lock: create` and nothing else in its config, as `create_and_lock_config` wrote it.
    pub fn hold_tasks(&self, kind: &str) {
        self.shared.world().held.insert(kind.to_string());
    }

    /// Lets held tasks of type `kind` go on.
    pub fn release_tasks(&self, kind: &str) {
        self.shared.world().held.remove(kind);
    }

    /// Every task so far: `(type, VMID or volume, exit status)`; the status is `None` while it runs.
    pub fn tasks(&self) -> Vec<(String, String, Option<String>)> {
        self.shared
            .world()
            .tasks
            .values()
            .map(|t| (t.kind.clone(), t.id.clone(), t.exitstatus.clone()))
            .collect()
    }

    /// One VM.
    pub fn vm(&self, vmid: u32) -> Option<VmView> {
        self.shared.world().vms.get(&vmid).map(|vm| VmView {
            vmid: vm.vmid,
            node: vm.node.clone(),
            running: vm.running,
            lock: vm.lock.clone(),
            config: vm.config.clone(),
            mac: vm.mac(),
            address: vm.address,
            firmware: vm.firmware.clone(),
            boot_refused: vm.boot_refused.clone(),
        })
    }

    /// All VMs.
    pub fn vms(&self) -> Vec<VmView> {
        let ids: Vec<u32> = self.shared.world().vms.keys().copied().collect();
        ids.into_iter().filter_map(|id| self.vm(id)).collect()
    }

    /// The volumes of a storage (`volname → volume`).
    pub fn volumes(&self, storage: &str) -> BTreeMap<String, Volume> {
        self.shared
            .world()
            .storages
            .get(storage)
            .map(|s| s.volumes.clone())
            .unwrap_or_default()
    }

    /// Puts a file on a storage as if it had been uploaded (e.g. an ISO).
    pub fn put_volume(&self, storage: &str, volname: &str, content: &str, data: Vec<u8>) -> bool {
        let mut w = self.shared.world();
        let Some(s) = w.storages.get_mut(storage) else {
            return false;
        };
        let format = if content == "iso" { "iso" } else { "raw" };
        s.volumes.insert(
            volname.to_string(),
            Volume {
                content: content.into(),
                size: data.len() as u64,
                format: format.into(),
                ctime: state::now_epoch(),
                vmid: None,
                data: Some(Arc::new(data)),
            },
        );
        true
    }

    /// Number of tasks started so far of a type (`qmcreate`, …).
    pub fn task_count(&self, kind: &str) -> usize {
        self.shared
            .world()
            .tasks
            .values()
            .filter(|t| t.kind == kind)
            .count()
    }

    /// Requests served so far, per `METHOD /path/{template}` (every routed, authenticated request, including
    /// those an injected fault answered).
    pub fn requests(&self) -> crate::requests::RequestCounts {
        self.shared.requests.clone()
    }

    /// Connections the server closed after an answer (every answer of 400 or more, and the 100th request),
    /// and connections it closed for being idle longer than [`SimTiming::idle_timeout`].
    pub fn connection_closes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.shared.connection_closes.load(Relaxed),
            self.shared.idle_closes.load(Relaxed),
        )
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ProxmoxSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
