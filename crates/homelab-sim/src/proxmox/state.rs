//! The simulated cluster's state: its nodes, storages (shared ones once, local ones per node) and volumes,
//! network interfaces, VMs (node, config, lock, power state, address), UPID tasks with their logs, and the
//! shared handle the server and the tasks work on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::acl::Acl;
use super::faults::FaultState;
use super::firmware::SecureBoot;
use super::schema::{PveVersion, Schema};
use super::{SimTiming, VmBootEvent};

/// A storage of the simulated node.
#[derive(Debug, Clone)]
pub struct Storage {
    pub id: String,
    /// `dir`, `lvmthin`, `zfspool`, `nfs`, …
    pub kind: String,
    pub content: BTreeSet<String>,
    /// Directory-like storages can hold ISOs (download-url needs one).
    pub file_based: bool,
    pub path: String,
    pub total: u64,
    pub volumes: BTreeMap<String, Volume>,
    /// `shared` in `storage.cfg`: one storage every node sees (NFS, Ceph), instead of one per node.
    pub shared: bool,
    /// `nodes` in `storage.cfg`: the nodes it is enabled on; empty means all.
    pub nodes: Vec<String>,
}

impl Storage {
    /// A directory storage (like `local`).
    pub fn dir(id: &str, path: &str, content: &[&str]) -> Self {
        Storage {
            id: id.into(),
            kind: "dir".into(),
            content: content.iter().map(|s| s.to_string()).collect(),
            file_based: true,
            path: path.into(),
            total: 100 << 30,
            volumes: BTreeMap::new(),
            shared: false,
            nodes: Vec::new(),
        }
    }

    /// A shared NFS storage (one copy for every node).
    pub fn nfs(id: &str, content: &[&str]) -> Self {
        Storage {
            kind: "nfs".into(),
            shared: true,
            ..Storage::dir(id, &format!("/mnt/pve/{id}"), content)
        }
    }

    /// Restricted to `nodes` (`storage.cfg`'s `nodes`).
    pub fn on_nodes(mut self, nodes: &[&str]) -> Self {
        self.nodes = nodes.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Whether the storage is enabled on `node`.
    pub fn enabled_on(&self, node: &str) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n == node)
    }

    /// A block storage (like `local-lvm`, LVM-thin).
    pub fn lvmthin(id: &str, content: &[&str]) -> Self {
        Storage {
            id: id.into(),
            kind: "lvmthin".into(),
            content: content.iter().map(|s| s.to_string()).collect(),
            file_based: false,
            path: String::new(),
            total: 400 << 30,
            volumes: BTreeMap::new(),
            shared: false,
            nodes: Vec::new(),
        }
    }

    pub(crate) fn used(&self) -> u64 {
        self.volumes.values().map(|v| v.size).sum()
    }
}

/// A volume on a storage.
#[derive(Debug, Clone)]
pub struct Volume {
    pub content: String,
    pub size: u64,
    pub format: String,
    pub ctime: u64,
    pub vmid: Option<u32>,
    /// The bytes of downloaded files (ISOs); `None` for allocated VM disks.
    pub data: Option<Arc<Vec<u8>>>,
}

/// A network interface of the node.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    /// `bridge`, `eth`, …
    pub kind: String,
    pub vlan_aware: bool,
}

/// A VM of the simulated node.
#[derive(Debug, Clone)]
pub struct Vm {
    pub vmid: u32,
    /// The cluster node it lives on.
    pub node: String,
    pub config: BTreeMap<String, String>,
    pub running: bool,
    pub lock: Option<String>,
    pub started_at: Option<Instant>,
    pub pid: u32,
    /// The address of the first NIC at its last boot: from its cloud-init drive, else from DHCP.
    pub address: Option<Ipv4Addr>,
    /// A task holds the config file's flock (`/var/lock/qemu-server/lock-N.conf`), as qmcreate does while it
    /// allocates the disks and every power task does while it works.
    pub flock: bool,
    /// The Secure Boot state in the VM's EFI vars (set when `qmcreate` writes the config).
    pub firmware: SecureBoot,
    /// Why the firmware did not boot the guest at the last start (it runs, but nothing boots).
    pub boot_refused: Option<String>,
}

impl Vm {
    /// The MAC of `net0`, lower case (as the guest reports it).
    pub fn mac(&self) -> Option<String> {
        let net0 = self.config.get("net0")?;
        net0.split(',').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            (k == "macaddr" || super::formats::is_unicast_mac(v)).then(|| v.to_ascii_lowercase())
        })
    }

    /// The static IPv4 address its cloud-init drive gives `net0` (`ipconfig0: ip=A.B.C.D/N`), when the VM
    /// has a cloud-init drive at all: what Talos' nocloud platform configures instead of asking DHCP.
    pub fn cloudinit_address(&self) -> Option<Ipv4Addr> {
        let has_drive = self.config.iter().any(|(k, v)| {
            super::formats::is_drive_slot(k)
                && v.split(',').next().is_some_and(|f| f.contains("cloudinit"))
        });
        if !has_drive {
            return None;
        }
        let ipconfig = self.config.get("ipconfig0")?;
        ipconfig.split(',').find_map(|part| {
            let ip = part.strip_prefix("ip=")?;
            ip.split_once('/')?.0.parse().ok()
        })
    }

    /// Whether `agent` is enabled in the config.
    pub fn agent_enabled(&self) -> bool {
        let Some(a) = self.config.get("agent") else {
            return false;
        };
        a.split(',').any(|p| match p.split_once('=') {
            None => super::formats::parse_boolean(p) == Some(true),
            Some(("enabled", v)) => super::formats::parse_boolean(v) == Some(true),
            Some(_) => false,
        })
    }
}

/// A UPID task.
#[derive(Debug, Clone)]
pub struct Task {
    pub upid: String,
    pub kind: String,
    pub id: String,
    pub user: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    pub log: Vec<String>,
    pub exitstatus: Option<String>,
}

/// Decides the address a NIC gets from "DHCP" at boot: `(vmid, lower-case MAC) → IPv4` in 127.0.0.0/8.
pub type DhcpHook = Arc<dyn Fn(u32, &str) -> Ipv4Addr + Send + Sync>;

/// Called when a VM finished booting.
/// Whether the guest agent of a VM runs now (the OS decides: Talos may not start it in
/// maintenance mode, talos#11651); consulted on top of the agent's usual checks.
pub type AgentGate = Arc<dyn Fn(u32) -> bool + Send + Sync>;

pub type BootHook = Arc<dyn Fn(&VmBootEvent) + Send + Sync>;

/// Everything mutable.
pub(crate) struct World {
    pub version: PveVersion,
    /// The node the API is served from (the first of `nodes`).
    pub node: String,
    /// Every node of the cluster.
    pub nodes: Vec<String>,
    /// `download-url` tasks started, as `node/storage` (for tests that count downloads per storage).
    pub downloads: Vec<String>,
    /// Whether the network has a DHCP server at all; without one only a cloud-init address comes up.
    pub dhcp_server: bool,
    pub fingerprint: String,
    pub storages: BTreeMap<String, Storage>,
    pub interfaces: Vec<Iface>,
    pub vms: BTreeMap<u32, Vm>,
    pub tasks: BTreeMap<String, Task>,
    pub next_pid: u32,
    pub acl: Acl,
    pub faults: FaultState,
    pub leases: BTreeMap<String, Ipv4Addr>,
    /// Resource pools: `pool → member VMIDs` (`user.cfg`'s `pool:` lines).
    pub pools: BTreeMap<String, BTreeSet<u32>>,
    /// Task types whose new tasks wait before doing anything (see `ProxmoxSim::hold_tasks`).
    pub held: BTreeSet<String>,
    pub boot_hooks: Vec<BootHook>,
    pub dhcp: Option<DhcpHook>,
    pub agent_gate: Option<AgentGate>,
    pub on_change: Option<Arc<tokio::sync::Notify>>,
}

/// Shared by the server, the tasks and the public handle.
pub(crate) struct Shared {
    world: Mutex<World>,
    pub schema: Schema,
    pub timing: SimTiming,
    pub token_id: String,
    pub token_secret: String,
    pub boot_tx: tokio::sync::broadcast::Sender<VmBootEvent>,
    /// Requests served, per `METHOD /path/{template}` of the schema.
    pub requests: crate::requests::RequestCounts,
    /// Connections closed after an answer (an error status or the keep-alive count used up).
    pub connection_closes: std::sync::atomic::AtomicU64,
    /// Connections closed for being idle.
    pub idle_closes: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn new(
        world: World,
        schema: Schema,
        timing: SimTiming,
        token_id: String,
        token_secret: String,
    ) -> Self {
        let (boot_tx, _) = tokio::sync::broadcast::channel(64);
        Shared {
            world: Mutex::new(world),
            schema,
            timing,
            token_id,
            token_secret,
            boot_tx,
            requests: crate::requests::RequestCounts::default(),
            connection_closes: Default::default(),
            idle_closes: Default::default(),
        }
    }

    /// Locks the world; a poisoned lock (a panicked task) is recovered, the data stays usable.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl World {
    /// Tells the saver, if any, that the world changed.
    fn changed(&self) {
        if let Some(notify) = &self.on_change {
            notify.notify_one();
        }
    }

    /// Registers a new running task on `node` (its UPID names it) and returns its UPID.
    pub fn new_task_on(&mut self, node: &str, kind: &str, id: &str, user: &str) -> String {
        self.next_pid += 1;
        let pid = self.next_pid;
        let pstart = 0x05E3_0000 + u64::from(pid);
        let starttime = now_epoch();
        self.changed();
        let upid =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:");
        self.tasks.insert(
            upid.clone(),
            Task {
                upid: upid.clone(),
                kind: kind.into(),
                id: id.into(),
                user: user.into(),
                pid,
                pstart,
                starttime,
                log: Vec::new(),
                exitstatus: None,
            },
        );
        upid
    }

    pub fn task_log(&mut self, upid: &str, line: impl Into<String>) {
        if let Some(t) = self.tasks.get_mut(upid) {
            t.log.push(line.into());
        }
    }

    /// Ends a task: `Ok(warnings)` or `Err(message)`.
    pub fn finish_task(&mut self, upid: &str, result: Result<u32, String>) {
        self.changed();
        if let Some(t) = self.tasks.get_mut(upid) {
            if t.exitstatus.is_some() {
                return;
            }
            match result {
                Ok(0) => {
                    t.log.push("TASK OK".into());
                    t.exitstatus = Some("OK".into());
                }
                Ok(n) => {
                    t.log.push(format!("TASK WARNINGS: {n}"));
                    t.exitstatus = Some(format!("WARNINGS: {n}"));
                }
                Err(msg) => {
                    let msg = msg.trim_end().to_string();
                    t.log.push(format!("TASK ERROR: {msg}"));
                    t.exitstatus = Some(msg);
                }
            }
        }
    }

    /// The address `vm` comes up on at boot from `medium` (the bytes in its CD-ROM drive): its cloud-init
    /// address when the guest reads the drive, else a DHCP lease when the network has a DHCP server, else
    /// none (a guest without either never gets an address).
    pub fn boot_address(&mut self, vmid: u32, medium: Option<&[u8]>) -> Option<Ipv4Addr> {
        let vm = self.vms.get(&vmid)?;
        if let Some(ip) = vm.cloudinit_address()
            && super::guest::reads_cloudinit(medium)
        {
            return Some(ip);
        }
        let mac = vm.mac()?;
        self.dhcp_server.then(|| self.lease(vmid, &mac))
    }

    /// The next lease for a MAC: the DHCP hook's answer, or 127.0.20.100, .101, … (stable per MAC).
    pub fn lease(&mut self, vmid: u32, mac: &str) -> Ipv4Addr {
        if let Some(hook) = &self.dhcp {
            let ip = hook(vmid, mac);
            self.leases.insert(mac.to_string(), ip);
            return ip;
        }
        if let Some(ip) = self.leases.get(mac) {
            return *ip;
        }
        let n = 100 + self.leases.len() as u32;
        let ip = Ipv4Addr::new(127, 0, 20 + (n / 250) as u8, (n % 250) as u8 + 1);
        let ip = if n < 250 {
            Ipv4Addr::new(127, 0, 20, n as u8)
        } else {
            ip
        };
        self.leases.insert(mac.to_string(), ip);
        ip
    }

    pub fn config_path(&self, vmid: u32) -> String {
        let node = self
            .vms
            .get(&vmid)
            .map_or(self.node.as_str(), |vm| vm.node.as_str());
        format!("nodes/{node}/qemu-server/{vmid}.conf")
    }

    /// Where storage `id` as seen from `node` lives in [`World::storages`]: a shared storage and the API
    /// node's own storages under their id, another node's local storage under `node/id`. `None` when the
    /// storage is not defined or not enabled on that node.
    pub fn storage_key(&self, node: &str, id: &str) -> Option<String> {
        if let Some(s) = self.storages.get(id)
            && (s.shared || node == self.node)
        {
            return s.enabled_on(node).then(|| id.to_string());
        }
        let key = format!("{node}/{id}");
        self.storages.contains_key(&key).then_some(key)
    }

    /// Storage `id` as `node` sees it.
    pub fn storage(&self, node: &str, id: &str) -> Option<&Storage> {
        self.storages.get(&self.storage_key(node, id)?)
    }

    /// Storage `id` as `node` sees it, to change.
    pub fn storage_mut(&mut self, node: &str, id: &str) -> Option<&mut Storage> {
        let key = self.storage_key(node, id)?;
        self.storages.get_mut(&key)
    }

    /// The storages `node` sees.
    pub fn storages_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Storage> + 'a {
        self.storages.iter().filter_map(move |(key, s)| {
            let visible = if s.shared || key.as_str() == s.id {
                (s.shared || node == self.node) && s.enabled_on(node)
            } else {
                key.as_str() == format!("{node}/{}", s.id)
            };
            visible.then_some(s)
        })
    }

    /// The storage instances of the cluster from its storage definitions: a shared one once, a local one
    /// per node it is enabled on.
    pub fn storage_instances(
        first: &str,
        nodes: &[String],
        defs: &[Storage],
    ) -> BTreeMap<String, Storage> {
        let mut out = BTreeMap::new();
        for def in defs {
            if def.shared {
                out.insert(def.id.clone(), def.clone());
                continue;
            }
            for node in nodes.iter().filter(|n| def.enabled_on(n)) {
                let key = if node == first {
                    def.id.clone()
                } else {
                    format!("{node}/{}", def.id)
                };
                out.insert(key, def.clone());
            }
        }
        out
    }
}

/// A pause that a task takes to look like work.
pub(crate) async fn work(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
