//! A whole homelab in one process: the Proxmox VE simulator wired to a simulated Talos node per VM, so a VM
//! that boots brings up apid in maintenance mode on the address "DHCP" gave its MAC, and a VM that is
//! stopped or destroyed takes its node down with it; plus the Image Factory. With a state directory the lab
//! keeps its whole state there ([`LabState`]) and a lab started on it again comes back as it was: the same
//! endpoints and certificate, its VMs, and running nodes straight up configured on their static addresses.
//! Tests, `homelabctl demo` and `homelabctl sim` drive it through the real clients. Everything listens on
//! 127.0.0.0/8.

mod nodes;
mod saver;
mod state;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use state::{FactoryState, LAB_STATE_FILE, LabState, SavedNode, StateError};

use crate::change::ChangeHook;
use crate::factory::{FactoryError, FactoryOptions, FactorySim};
use crate::proxmox::{ProxmoxSim, SimError, SimOptions};
use crate::talos::{ApidFlapping, ConfigSchema, NodeError, NodeSim, SchemaError};
use crate::task::AbortOnDrop;
use nodes::Nodes;
use saver::Saver;

/// How a lab is set up.
#[derive(Debug)]
pub struct LabOptions {
    /// The Proxmox simulator; its `bind` address serves the Image Factory too.
    pub proxmox: SimOptions,
    /// The first address "DHCP" hands out; the n-th MAC seen gets `dhcp_first + n`.
    pub dhcp_first: Ipv4Addr,
    /// How long a simulated Talos reboot takes.
    pub reboot_delay: Duration,
    /// Fault injection: every new node's apid flaps for a while after its VM first boots.
    pub apid_flapping: Option<ApidFlapping>,
    /// Port of the Image Factory (0 = any free port).
    pub factory_port: u16,
    /// Where the lab keeps its state: restored from at start when it holds one (its addresses, ports and
    /// DHCP range win over these options), and kept current while the lab runs.
    pub state_dir: Option<PathBuf>,
    /// "DHCP" reservations: MAC (any case) → the address always leased to it.
    pub dhcp_reservations: BTreeMap<String, Ipv4Addr>,
    /// How the Talos nodes behave: timings and the optional quirks of real deployments.
    pub talos: TalosBehaviour,
}

/// How the lab's Talos nodes behave beyond the protocol: how long Talos takes for what it does after
/// an apply or a boot, and what a real homelab may lack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalosBehaviour {
    /// the installer's run after a maintenance-mode apply (no listener meanwhile)
    pub install_delay: Duration,
    /// from an installed boot until CRI is up (Bootstrap is refused before)
    pub cri_delay: Duration,
    /// from an installed boot until the time is synced; `None`: NTP unreachable, never
    pub time_sync: Option<Duration>,
    /// how long a joining control plane stays an etcd learner
    pub learner_delay: Duration,
    /// the public discovery service is reachable (workers then find trustd without the endpoint)
    pub discovery: bool,
    /// the qemu-guest-agent extension runs in maintenance mode (talos#11651: it may not)
    pub agent_in_maintenance: bool,
    /// from a VM's power-on until Talos' apid listens
    pub boot_delay: Duration,
    /// the cluster runs workloads a drain must respect: CoreDNS, and a `default/web` Deployment
    /// of two replicas with a PodDisruptionBudget of `minAvailable: 1`, spread over the Nodes
    pub workloads: bool,
}

impl Default for TalosBehaviour {
    /// Test timings (milliseconds), no discovery service, the agent running in maintenance mode.
    fn default() -> Self {
        Self {
            install_delay: Duration::from_millis(100),
            cri_delay: Duration::from_millis(30),
            time_sync: Some(Duration::from_millis(30)),
            learner_delay: Duration::from_millis(150),
            discovery: false,
            agent_in_maintenance: true,
            boot_delay: Duration::ZERO,
            workloads: true,
        }
    }
}

impl TalosBehaviour {
    /// What an operator sees on real hardware: a few minutes of install, CRI and NTP within a minute,
    /// learners promoted after half a minute, and no guest agent before the node is installed.
    pub fn realistic() -> Self {
        Self {
            install_delay: Duration::from_secs(150),
            cri_delay: Duration::from_secs(20),
            time_sync: Some(Duration::from_secs(40)),
            learner_delay: Duration::from_secs(30),
            discovery: false,
            agent_in_maintenance: false,
            boot_delay: Duration::from_secs(40),
            workloads: true,
        }
    }

    fn apply(&self, o: &mut crate::talos::NodeOptions) {
        o.install_delay = self.install_delay;
        o.cri_delay = self.cri_delay;
        o.time_sync = self.time_sync;
        o.learner_delay = self.learner_delay;
        o.discovery = self.discovery;
        o.boot_delay = self.boot_delay;
        o.workloads = self.workloads;
    }
}

impl LabOptions {
    /// Timings a person can follow, DHCP leases from `127.0.20.200` (the reference subnet on loopback).
    pub fn demo() -> Self {
        let mut proxmox = SimOptions::default();
        proxmox.timing.task_duration = Duration::from_millis(400);
        Self {
            proxmox,
            dhcp_first: Ipv4Addr::new(127, 0, 20, 200),
            reboot_delay: Duration::from_millis(800),
            apid_flapping: None,
            factory_port: 0,
            state_dir: None,
            dhcp_reservations: BTreeMap::new(),
            talos: TalosBehaviour {
                install_delay: Duration::from_millis(1500),
                cri_delay: Duration::from_millis(300),
                time_sync: Some(Duration::from_millis(600)),
                learner_delay: Duration::from_millis(1200),
                ..TalosBehaviour::default()
            },
        }
    }

    /// Real-world timings: Proxmox tasks of seconds, a guest agent that needs half a minute, a Talos
    /// install of minutes and reboots of half a minute (see [`TalosBehaviour::realistic`]).
    pub fn realistic() -> Self {
        let mut proxmox = SimOptions::default();
        proxmox.timing.task_duration = Duration::from_secs(3);
        proxmox.timing.agent_delay = Duration::from_secs(30);
        proxmox.timing.agent_timeout = Duration::from_secs(3);
        Self {
            proxmox,
            reboot_delay: Duration::from_secs(30),
            talos: TalosBehaviour::realistic(),
            ..Self::demo()
        }
    }

    /// Fast timings and DHCP leases from `127.0.<subnet>.200`.
    pub fn fast(subnet: u8) -> Self {
        Self {
            proxmox: SimOptions::fast(),
            dhcp_first: Ipv4Addr::new(127, 0, subnet, 200),
            reboot_delay: Duration::from_millis(50),
            apid_flapping: None,
            factory_port: 0,
            state_dir: None,
            dhcp_reservations: BTreeMap::new(),
            talos: TalosBehaviour::default(),
        }
    }
}

/// What a client needs to use the lab (written to `sim.json` by `homelabctl sim`).
#[derive(Debug, Clone, Serialize)]
pub struct LabInfo {
    pub proxmox_endpoint: String,
    pub proxmox_node: String,
    pub token_id: String,
    pub token_secret: String,
    pub fingerprint: String,
    pub factory_url: String,
}

/// Why a lab could not start or save.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("Proxmox VE simulator: {0}")]
    Proxmox(#[from] SimError),
    #[error("Image Factory simulator: {0}")]
    Factory(#[from] FactoryError),
    #[error("Talos node of VM {vmid}: {source}")]
    Node { vmid: u32, source: NodeError },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl LabError {
    /// Whether another lab runs on the same state directory.
    pub fn is_busy(&self) -> bool {
        matches!(self, LabError::State(StateError::Busy { .. }))
    }

    /// Whether an address the lab needs is taken (another simulator on the same state, most likely).
    pub fn is_address_in_use(&self) -> bool {
        let in_use = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
        match self {
            LabError::Proxmox(SimError::Bind { source, .. }) => in_use(source),
            LabError::Factory(e) => in_use(&e.source),
            LabError::Node {
                source: NodeError::Bind { source, .. },
                ..
            } => in_use(source),
            LabError::Node {
                source: NodeError::Kube(crate::kube::KubeError::Bind { source, .. }),
                ..
            } => in_use(source),
            _ => false,
        }
    }
}

/// A running lab. Dropping it stops everything (without a last save: see [`Lab::save`]).
/// With a state directory a node's change is saved before its API answers; Proxmox and Kubernetes changes
/// are saved by a background task moments later.
pub struct Lab {
    pub proxmox: Arc<ProxmoxSim>,
    pub factory: FactorySim,
    nodes: Arc<Mutex<Nodes>>,
    saver: Option<Arc<Saver>>,
    tasks: Vec<AbortOnDrop>,
    /// Held while the lab runs on its state directory.
    _lock: Option<std::fs::File>,
}

impl Lab {
    /// Starts the lab, restoring it from `opts.state_dir` when that holds a saved state.
    pub async fn start(opts: LabOptions) -> Result<Self, LabError> {
        let lock = match &opts.state_dir {
            Some(dir) => {
                state::create_private_dir(dir)?;
                Some(state::lock_dir(dir)?)
            }
            None => None,
        };
        let saved = match &opts.state_dir {
            Some(dir) => LabState::read(dir)?,
            None => None,
        };
        let schema = ConfigSchema::builtin(crate::talos::DEFAULT_TALOS_VERSION)?;
        let dhcp_first = saved.as_ref().map_or(opts.dhcp_first, |s| s.dhcp_first);
        let mut nodes = Nodes::new(
            dhcp_first,
            saved.as_ref().map(|s| s.leases.clone()).unwrap_or_default(),
            opts.reboot_delay,
        );
        nodes.apid_flapping = opts.apid_flapping;
        nodes.reservations = opts
            .dhcp_reservations
            .iter()
            .map(|(mac, ip)| (mac.to_ascii_lowercase(), *ip))
            .collect();
        nodes.talos = opts.talos.clone();
        let mut proxmox_opts = opts.proxmox;
        proxmox_opts.on_change = Some(nodes.changed.clone());
        let nodes = Arc::new(Mutex::new(nodes));
        proxmox_opts.dhcp = Some(nodes::dhcp_hook(nodes.clone()));
        let bind = proxmox_opts.bind;
        let proxmox = Arc::new(match &saved {
            Some(s) => ProxmoxSim::restore(proxmox_opts, &s.proxmox).await?,
            None => ProxmoxSim::start(proxmox_opts).await?,
        });
        let factory = start_factory(bind, opts.factory_port, saved.as_ref()).await?;
        if let Some(s) = &saved {
            nodes::restore(&proxmox, &nodes, s, &schema).await?;
        }
        proxmox.on_vm_started(nodes::boot_hook(nodes.clone(), schema));
        if !opts.talos.agent_in_maintenance {
            proxmox.set_agent_gate(nodes::agent_gate(nodes.clone()));
        }
        let mut lab = Self {
            tasks: vec![AbortOnDrop(tokio::spawn(nodes::watch_power(
                proxmox.clone(),
                nodes.clone(),
            )))],
            proxmox,
            factory,
            nodes,
            saver: None,
            _lock: lock,
        };
        if let Some(dir) = opts.state_dir {
            lab.keep_state(dir)?;
        }
        Ok(lab)
    }

    /// Saves now and then whenever the state changes.
    fn keep_state(&mut self, dir: PathBuf) -> Result<(), LabError> {
        let saver = Arc::new(Saver::new(dir));
        self.save_with(&saver)?;
        let (proxmox, factory, nodes) = (
            self.proxmox.clone(),
            self.factory.clone(),
            self.nodes.clone(),
        );
        let background = saver.clone();
        let changed = nodes::lock(&self.nodes).changed.clone();
        self.tasks.push(AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(saver::SAVE_EVERY) => {}
                    _ = changed.notified() => {}
                }
                let state = || state_of(&proxmox, &factory, &nodes);
                if let Err(e) = background.save(state, |vmid| etcd_of(&nodes, vmid)) {
                    tracing::warn!(error = %e, "cannot save the lab state");
                }
            }
        })));
        // Write-through for the nodes: the Talos API answers a config apply, a bootstrap or a reset only
        // once the change is on disk. Weak handles: the nodes hold this hook, the lab holds the nodes.
        let (proxmox, factory, nodes) = (
            Arc::downgrade(&self.proxmox),
            self.factory.clone(),
            Arc::downgrade(&self.nodes),
        );
        let through = saver.clone();
        let hook = ChangeHook::new(move || {
            let (Some(proxmox), Some(nodes)) = (proxmox.upgrade(), nodes.upgrade()) else {
                return;
            };
            let state = || state_of(&proxmox, &factory, &nodes);
            if let Err(e) = through.save(state, |vmid| etcd_of(&nodes, vmid)) {
                tracing::warn!(error = %e, "cannot save the lab state");
            }
        });
        let slot = nodes::lock(&self.nodes).write_through.clone();
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hook);
        self.saver = Some(saver);
        Ok(())
    }

    /// The whole durable state now.
    pub fn state(&self) -> LabState {
        state_of(&self.proxmox, &self.factory, &self.nodes)
    }

    /// Saves the state to the state directory now (if the lab has one and anything changed since the last
    /// save); for a clean stop.
    pub fn save(&self) -> Result<(), LabError> {
        if let Some(saver) = &self.saver {
            self.save_with(saver)?;
        }
        Ok(())
    }

    fn save_with(&self, saver: &Saver) -> Result<(), LabError> {
        saver.save(|| self.state(), |vmid| etcd_of(&self.nodes, vmid))?;
        Ok(())
    }

    /// The state directory, if the lab keeps one.
    pub fn state_dir(&self) -> Option<&Path> {
        self.saver.as_deref().map(Saver::dir)
    }

    pub fn info(&self) -> LabInfo {
        LabInfo {
            proxmox_endpoint: self.proxmox.endpoint(),
            proxmox_node: self.proxmox.node(),
            token_id: self.proxmox.token_id().to_string(),
            token_secret: self.proxmox.token_secret().to_string(),
            fingerprint: self.proxmox.fingerprint().to_string(),
            factory_url: self.factory.url(),
        }
    }

    /// What went wrong so far in the lab's clusters (summed): moments etcd had no quorum, moments
    /// the VIP had no holder while a control plane's API answered. Node removal and replacement
    /// keep both at 0.
    pub fn cluster_health(&self) -> crate::talos::ClusterHealth {
        let clusters = nodes::lock(&self.nodes).clusters.clone();
        clusters.total_health()
    }

    /// The simulated Talos node of a VM, once it has booted.
    pub fn node(&self, vmid: u32) -> Option<NodeSim> {
        nodes::lock(&self.nodes).by_vm.get(&vmid).cloned()
    }
}

impl Lab {
    /// Requests served so far by every simulator of the lab, keyed `proxmox METHOD /path/{template}`,
    /// `factory METHOD /path`, `apid /machine.MachineService/METHOD`, `kube METHOD /path` (summed over
    /// the nodes still known).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        let mut add = |prefix: &str, counts: BTreeMap<String, u64>| {
            for (k, n) in counts {
                *all.entry(format!("{prefix}{k}")).or_insert(0) += n;
            }
        };
        add("proxmox ", self.proxmox.requests().snapshot());
        add("", self.factory.requests().snapshot());
        let nodes: Vec<NodeSim> = nodes::lock(&self.nodes).by_vm.values().cloned().collect();
        for node in nodes {
            add("", node.requests().snapshot());
        }
        all
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.tasks.clear();
        // Stopping saves nothing (see `Lab::save`): the nodes lose their write-through first, and are
        // powered off outside the lock.
        let slot = nodes::lock(&self.nodes).write_through.clone();
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let all: Vec<NodeSim> = nodes::lock(&self.nodes).by_vm.values().cloned().collect();
        for node in all {
            node.power_off();
        }
    }
}

async fn start_factory(
    bind: Ipv4Addr,
    port: u16,
    saved: Option<&LabState>,
) -> Result<FactorySim, FactoryError> {
    let mut opts = FactoryOptions::new(SocketAddr::from((bind, port)));
    if let Some(s) = saved {
        opts.bind = s.factory.addr;
        opts.schematics = s.factory.schematics.clone().into_iter().collect();
    }
    FactorySim::start(opts).await
}

/// The etcd objects of a VM's node.
fn etcd_of(nodes: &Mutex<Nodes>, vmid: u32) -> Option<crate::kube::StoreSnapshot> {
    let node = nodes::lock(nodes).by_vm.get(&vmid).cloned()?;
    node.etcd_data()
}

fn state_of(proxmox: &ProxmoxSim, factory: &FactorySim, nodes: &Mutex<Nodes>) -> LabState {
    let proxmox = proxmox.snapshot();
    let n = nodes::lock(nodes);
    LabState {
        version: state::LAB_STATE_VERSION,
        proxmox,
        factory: FactoryState {
            addr: factory.addr(),
            schematics: factory.schematics().into_iter().collect::<BTreeMap<_, _>>(),
        },
        dhcp_first: n.dhcp_first,
        leases: n.leases.clone(),
        nodes: n
            .by_vm
            .iter()
            .map(|(vmid, node)| {
                let saved = SavedNode {
                    maintenance_addr: node.maintenance_addr(),
                    disk: node.snapshot(),
                };
                (*vmid, saved)
            })
            .collect(),
    }
}
