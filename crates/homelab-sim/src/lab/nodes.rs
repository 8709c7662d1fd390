//! The lab's Talos side: one simulated node per VM, the "DHCP" that hands out their maintenance addresses, the
//! hooks that boot a node with its VM and power it off (or forget it) when the VM stops (or is destroyed), and
//! bringing saved nodes back.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::state::LabState;
use super::{LabError, TalosBehaviour};
use crate::change::ChangeHook;
use crate::proxmox::{AgentGate, DhcpHook, ProxmoxSim, VmBootEvent};
use crate::talos::{ApidFlapping, ClusterRegistry, ConfigSchema, NodeOptions, NodePhase, NodeSim};

/// The nodes by VM and the leases by MAC.
pub(crate) struct Nodes {
    pub(crate) by_vm: BTreeMap<u32, NodeSim>,
    pub(crate) leases: BTreeMap<String, Ipv4Addr>,
    pub(crate) dhcp_first: Ipv4Addr,
    pub(crate) reboot_delay: Duration,
    /// Poked by the Proxmox simulator and "DHCP" when something worth saving changed (the lab's background
    /// saver acts on it), and by the nodes while no write-through save is installed.
    pub(crate) changed: Arc<Notify>,
    /// The save the nodes run before answering, once the lab keeps a state directory (see
    /// `Lab::keep_state`); nodes created earlier (restored ones) reach it through this shared slot.
    pub(crate) write_through: Arc<Mutex<Option<ChangeHook>>>,
    /// Fault injection for every node: apid flapping after its VM first boots.
    pub(crate) apid_flapping: Option<ApidFlapping>,
    /// DHCP reservations by lower-case MAC.
    pub(crate) reservations: BTreeMap<String, Ipv4Addr>,
    /// Timings and quirks of the Talos nodes.
    pub(crate) talos: TalosBehaviour,
    /// What the lab's Talos nodes share per cluster (etcd membership, the VIP, trustd).
    pub(crate) clusters: Arc<ClusterRegistry>,
}

impl Nodes {
    pub(crate) fn new(
        dhcp_first: Ipv4Addr,
        leases: BTreeMap<String, Ipv4Addr>,
        reboot_delay: Duration,
    ) -> Self {
        Self {
            by_vm: BTreeMap::new(),
            leases,
            dhcp_first,
            reboot_delay,
            changed: Arc::new(Notify::new()),
            write_through: Arc::default(),
            apid_flapping: None,
            reservations: BTreeMap::new(),
            talos: TalosBehaviour::default(),
            clusters: Arc::default(),
        }
    }
}

/// Locks the nodes; a poisoned lock (a panicked task) is recovered, the data stays usable.
pub(crate) fn lock(nodes: &Mutex<Nodes>) -> MutexGuard<'_, Nodes> {
    nodes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A reserved MAC gets its reservation; otherwise the n-th MAC seen gets `dhcp_first + n`, the same
/// address on every later boot.
pub(crate) fn dhcp_hook(nodes: Arc<Mutex<Nodes>>) -> DhcpHook {
    Arc::new(move |_vmid, mac: &str| {
        let mut n = lock(&nodes);
        let mac = mac.to_ascii_lowercase();
        if let Some(ip) = n.reservations.get(&mac).copied() {
            n.leases.insert(mac, ip);
            n.changed.notify_one();
            return ip;
        }
        let next = Ipv4Addr::from(u32::from(n.dhcp_first) + n.leases.len() as u32);
        let ip = *n.leases.entry(mac).or_insert(next);
        n.changed.notify_one();
        ip
    })
}

fn node_options(addr: SocketAddr, mac: Option<&str>, n: &Nodes) -> NodeOptions {
    let mut o = NodeOptions::new(addr);
    o.reboot_delay = n.reboot_delay;
    let (slot, notify) = (n.write_through.clone(), n.changed.clone());
    o.on_change = Some(ChangeHook::new(move || {
        let save = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match save {
            Some(save) => save.fire(),
            None => notify.notify_one(),
        }
    }));
    o.apid_flapping = n.apid_flapping;
    o.clusters = n.clusters.clone();
    o.macs = mac
        .map(|m| vec![m.to_ascii_lowercase()])
        .unwrap_or_default();
    n.talos.apply(&mut o);
    o
}

/// The guest agent runs only once Talos is installed (talos#11651: the extension may not start in
/// maintenance mode).
pub(crate) fn agent_gate(nodes: Arc<Mutex<Nodes>>) -> AgentGate {
    Arc::new(move |vmid| {
        let node = lock(&nodes).by_vm.get(&vmid).cloned();
        node.is_some_and(|n| matches!(n.phase(), NodePhase::Installed(_)))
    })
}

/// Boots (creating on first boot) the node of a VM that finished booting.
pub(crate) fn boot_hook(
    nodes: Arc<Mutex<Nodes>>,
    schema: Arc<ConfigSchema>,
) -> Box<dyn Fn(&VmBootEvent) + Send + Sync> {
    let handle = tokio::runtime::Handle::current();
    Box::new(move |event: &VmBootEvent| {
        let Some(ip) = event.address else { return };
        let addr = SocketAddr::new(ip.into(), homelab_apid::APID_PORT);
        let node = {
            let mut n = lock(&nodes);
            if let Some(node) = n.by_vm.get(&event.vmid) {
                node.clone()
            } else {
                match NodeSim::new(node_options(addr, event.mac.as_deref(), &n), schema.clone()) {
                    Ok(node) => n.by_vm.entry(event.vmid).or_insert(node).clone(),
                    Err(e) => {
                        tracing::warn!(vmid = event.vmid, error = %e, "simulated node cannot start");
                        return;
                    }
                }
            }
        };
        handle.spawn(async move {
            if let Err(e) = node.power_on().await {
                tracing::warn!(error = %e, "simulated node cannot boot");
            }
        });
    })
}

/// Powers a node off when its VM stops, and forgets it (a fresh disk) when the VM is destroyed.
pub(crate) async fn watch_power(proxmox: Arc<ProxmoxSim>, nodes: Arc<Mutex<Nodes>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let vms: BTreeMap<u32, bool> = proxmox
            .vms()
            .into_iter()
            .map(|v| (v.vmid, v.running))
            .collect();
        // Powered off outside the lock: a node that changes saves through the lab, which locks the nodes.
        let mut off = Vec::new();
        lock(&nodes).by_vm.retain(|vmid, node| match vms.get(vmid) {
            Some(true) => true,
            Some(false) => {
                off.push(node.clone());
                true
            }
            None => {
                off.push(node.clone());
                false
            }
        });
        for node in off {
            node.power_off();
        }
    }
}

/// Brings back the node of every VM: its saved disk, or a fresh node for a running VM whose boot was not saved
/// yet (a lab killed just after the boot). All nodes first (a worker's certificate needs its control plane's
/// CA key), then the boots of those whose VM runs.
pub(crate) async fn restore(
    proxmox: &ProxmoxSim,
    nodes: &Mutex<Nodes>,
    saved: &LabState,
    schema: &Arc<ConfigSchema>,
) -> Result<(), LabError> {
    let mut running = Vec::new();
    for vm in proxmox.vms() {
        let node = saved.nodes.get(&vm.vmid);
        let booted = vm.address.filter(|_| vm.running);
        let addr = match (node, booted) {
            (Some(n), _) => n.maintenance_addr,
            (None, Some(ip)) => SocketAddr::new(ip.into(), homelab_apid::APID_PORT),
            (None, None) => continue,
        };
        let opts = node_options(addr, vm.mac.as_deref(), &lock(nodes));
        let sim = match node.and_then(|n| n.disk.as_ref()) {
            Some(disk) => NodeSim::restore(opts, schema.clone(), disk),
            None => NodeSim::new(opts, schema.clone()),
        }
        .map_err(|source| LabError::Node {
            vmid: vm.vmid,
            source,
        })?;
        lock(nodes).by_vm.insert(vm.vmid, sim.clone());
        if vm.running {
            running.push((vm.vmid, sim));
        }
    }
    for (vmid, sim) in running {
        sim.power_on()
            .await
            .map_err(|source| LabError::Node { vmid, source })?;
    }
    Ok(())
}
