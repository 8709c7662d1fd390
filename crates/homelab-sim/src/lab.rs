//! A whole homelab in one process: the Proxmox VE simulator wired to a simulated Talos node per VM, so a VM
//! that boots brings up apid in maintenance mode on the address "DHCP" gave its MAC, and a VM that is
//! stopped or destroyed takes its node down with it. Tests and `homelabctl demo` drive it through the real
//! clients. Everything listens on 127.0.0.0/8.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::factory::{FactoryOptions, FactorySim};
use crate::proxmox::{ProxmoxSim, SimError, SimOptions, VmBootEvent};
use crate::talos::{ApidFlapping, ConfigSchema, NodeOptions, NodeSim};

/// How a lab is set up.
#[derive(Debug)]
pub struct LabOptions {
    pub proxmox: SimOptions,
    /// The first address "DHCP" hands out; the n-th MAC seen gets `dhcp_first + n`.
    pub dhcp_first: Ipv4Addr,
    /// How long a simulated Talos reboot takes.
    pub reboot_delay: Duration,
    /// Fault injection: every node's apid flaps for a while after its VM first boots.
    pub apid_flapping: Option<ApidFlapping>,
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
        }
    }

    /// Fast timings and DHCP leases from `127.0.<subnet>.200`.
    pub fn fast(subnet: u8) -> Self {
        Self {
            proxmox: SimOptions::fast(),
            dhcp_first: Ipv4Addr::new(127, 0, subnet, 200),
            reboot_delay: Duration::from_millis(50),
            apid_flapping: None,
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

#[derive(Default)]
struct Nodes {
    by_vm: BTreeMap<u32, NodeSim>,
    leases: BTreeMap<String, Ipv4Addr>,
}

/// A running lab. Dropping it stops everything.
pub struct Lab {
    pub proxmox: Arc<ProxmoxSim>,
    pub factory: FactorySim,
    nodes: Arc<Mutex<Nodes>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Lab {
    pub async fn start(opts: LabOptions) -> Result<Self, SimError> {
        let schema = ConfigSchema::load_shared().map_err(|e| SimError::Setup(e.to_string()))?;
        let nodes = Arc::new(Mutex::new(Nodes::default()));
        let mut proxmox_opts = opts.proxmox;
        let leases = nodes.clone();
        let first = u32::from(opts.dhcp_first);
        proxmox_opts.dhcp = Some(Arc::new(move |_vmid, mac: &str| {
            let mut n = leases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let next = Ipv4Addr::from(first + n.leases.len() as u32);
            *n.leases.entry(mac.to_ascii_lowercase()).or_insert(next)
        }));
        let proxmox = Arc::new(ProxmoxSim::start(proxmox_opts).await?);
        let booted = nodes.clone();
        let reboot_delay = opts.reboot_delay;
        let apid_flapping = opts.apid_flapping;
        let handle = tokio::runtime::Handle::current();
        proxmox.on_vm_started(Box::new(move |event: &VmBootEvent| {
            let Some(ip) = event.address else { return };
            let nodes = booted.clone();
            let schema = schema.clone();
            let vmid = event.vmid;
            handle.spawn(async move {
                let node = {
                    let mut n = nodes
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    n.by_vm
                        .entry(vmid)
                        .or_insert_with(|| {
                            let mut o = NodeOptions::new(SocketAddr::new(
                                ip.into(),
                                homelab_apid::APID_PORT,
                            ));
                            o.reboot_delay = reboot_delay;
                            o.apid_flapping = apid_flapping;
                            NodeSim::new(o, schema)
                                .unwrap_or_else(|e| panic!("simulated node: {e}"))
                        })
                        .clone()
                };
                let _ = node.power_on().await;
            });
        }));
        let watcher = tokio::spawn(watch_power(proxmox.clone(), nodes.clone()));
        let factory = FactorySim::start(FactoryOptions::new(SocketAddr::from(([127, 0, 0, 1], 0))))
            .await
            .map_err(|e| SimError::Setup(format!("image factory: {e}")))?;
        Ok(Self {
            proxmox,
            factory,
            nodes,
            watcher,
        })
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

    /// The simulated Talos node of a VM, once it has booted.
    pub fn node(&self, vmid: u32) -> Option<NodeSim> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_vm
            .get(&vmid)
            .cloned()
    }
}

impl Lab {
    /// Requests served so far by every simulator of the lab, keyed `proxmox METHOD /path/{template}`,
    /// `factory METHOD /route`, `apid /machine.MachineService/METHOD`, `kube METHOD /path` (summed over
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
        let nodes: Vec<NodeSim> = self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_vm
            .values()
            .cloned()
            .collect();
        for node in nodes {
            add("", node.requests().snapshot());
        }
        all
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.watcher.abort();
        for node in self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_vm
            .values()
        {
            node.power_off();
        }
    }
}

/// Powers a node off when its VM stops, and forgets it (a fresh disk) when the VM is destroyed.
async fn watch_power(proxmox: Arc<ProxmoxSim>, nodes: Arc<Mutex<Nodes>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let mut n = nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let vms: BTreeMap<u32, bool> = proxmox
            .vms()
            .into_iter()
            .map(|v| (v.vmid, v.running))
            .collect();
        n.by_vm.retain(|vmid, node| match vms.get(vmid) {
            Some(true) => true,
            Some(false) => {
                node.power_off();
                true
            }
            None => {
                node.power_off();
                false
            }
        });
    }
}
