//! An in-memory world for the engine: a hypervisor, factory, Talos nodes and a Kubernetes API with the
//! same state machine as the real flow, plus a crash switch that fails every mutating call after N of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use homelab_config::{Config, Node};
use homelab_engine::desired::{ConfigRenderer, RenderedNode};
use homelab_engine::ports::*;
use zeroize::Zeroizing;

#[derive(Default, Debug, Clone)]
pub struct Vm {
    pub live: VmLive,
    pub agent_polls: u32,
}

#[derive(Default, Debug, Clone, PartialEq)]
pub enum TalosState {
    #[default]
    Off,
    Maintenance,
    Installing(u32),
    Installed {
        config: Vec<u8>,
    },
}

#[derive(Default, Debug)]
pub struct World {
    pub isos: Vec<String>,
    pub vms: BTreeMap<u32, Vm>,
    pub talos: BTreeMap<u32, TalosState>,
    pub bootstrapped: bool,
    pub creates: u32,
    pub bootstraps: u32,
    pub mutations: u32,
    /// Fail every mutating call once this many have succeeded (a simulated kill).
    pub crash_after: Option<u32>,
    /// Mutating calls refused by `crash_after` (tests check that a "killed" run was in fact cut).
    pub kills: u32,
    pub agent_silent: bool,
    pub calls: u32,
    /// The Talos version installed nodes answer with (v1.12.4 when unset).
    pub running_version: Option<String>,
}

impl World {
    fn running(&self) -> String {
        self.running_version
            .clone()
            .unwrap_or_else(|| "v1.12.4".into())
    }
}

pub struct Fake {
    pub world: Mutex<World>,
    /// vm id → (static address, dhcp address)
    pub addresses: BTreeMap<u32, (IpAddr, IpAddr)>,
}

impl Fake {
    pub fn new(config: &Config) -> Self {
        let addresses = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.vm_id,
                    (
                        n.network.address.address,
                        IpAddr::from([127, 0, 99, 200 + i as u8]),
                    ),
                )
            })
            .collect();
        Self {
            world: Mutex::new(World::default()),
            addresses,
        }
    }

    fn mutate(&self) -> PortResult<std::sync::MutexGuard<'_, World>> {
        let mut w = self.world.lock().expect("lock");
        w.calls += 1;
        if w.crash_after.is_some_and(|n| w.mutations >= n) {
            w.kills += 1;
            return Err(PortError::permanent("simulated kill"));
        }
        w.mutations += 1;
        Ok(w)
    }

    fn read(&self) -> std::sync::MutexGuard<'_, World> {
        let mut w = self.world.lock().expect("lock");
        w.calls += 1;
        w
    }

    fn vm_at(&self, at: SocketAddr) -> Option<(u32, bool)> {
        self.addresses.iter().find_map(|(id, (stat, dhcp))| {
            if at.ip() == *stat {
                Some((*id, true))
            } else if at.ip() == *dhcp {
                Some((*id, false))
            } else {
                None
            }
        })
    }
}

impl Hypervisor for Fake {
    async fn iso_exists(&self, _: &str, _: &str, file: &str) -> PortResult<bool> {
        Ok(self.read().isos.iter().any(|f| f == file))
    }
    async fn download_iso(&self, _: &str, _: &str, file: &str, _: &str) -> PortResult<()> {
        self.mutate()?.isos.push(file.to_string());
        Ok(())
    }
    async fn delete_iso(&self, _: &str, _: &str, file: &str) -> PortResult<()> {
        self.mutate()?.isos.retain(|f| f != file);
        Ok(())
    }
    async fn vm(&self, _: &str, vm_id: u32) -> PortResult<Option<VmLive>> {
        Ok(self.read().vms.get(&vm_id).map(|v| v.live.clone()))
    }
    async fn wait_unlocked(&self, _: &str, vm_id: u32) -> PortResult<()> {
        // The fake's locks are held by nobody once looked at: the wait clears them.
        if let Some(vm) = self.mutate()?.vms.get_mut(&vm_id) {
            vm.live.lock = None;
        }
        Ok(())
    }
    async fn create_vm(&self, w: &VmWanted) -> PortResult<()> {
        let mut world = self.mutate()?;
        if world.vms.contains_key(&w.vm_id) {
            return Err(PortError::permanent(format!(
                "VM {} already exists",
                w.vm_id
            )));
        }
        world.creates += 1;
        world.vms.insert(
            w.vm_id,
            Vm {
                live: VmLive {
                    name: Some(w.name.clone()),
                    cores: Some(w.cores),
                    memory_mib: Some(w.memory_mib),
                    disk_gib: Some(w.disk_gib),
                    bridge: Some(w.bridge.clone()),
                    vlan: w.vlan,
                    mac: Some(w.mac.clone()),
                    iso_volume: Some(w.iso_volume.clone()),
                    bios: Some("ovmf".into()),
                    machine: Some("q35".into()),
                    efidisk: Some(("4m".into(), false)),
                    tpm_version: Some("v2.0".into()),
                    running: false,
                    lock: None,
                    ..VmLive::default()
                },
                agent_polls: 0,
            },
        );
        Ok(())
    }
    async fn update_vm(&self, w: &VmWanted, _fields: &[String]) -> PortResult<()> {
        let mut world = self.mutate()?;
        if let Some(vm) = world.vms.get_mut(&w.vm_id) {
            vm.live.cores = Some(w.cores);
            vm.live.memory_mib = Some(w.memory_mib);
            vm.live.mac = Some(w.mac.clone());
        }
        Ok(())
    }
    async fn start_vm(&self, _: &str, vm_id: u32) -> PortResult<()> {
        let mut world = self.mutate()?;
        if let Some(vm) = world.vms.get_mut(&vm_id) {
            vm.live.running = true;
        }
        let state = world.talos.entry(vm_id).or_default();
        if *state == TalosState::Off {
            *state = TalosState::Maintenance;
        }
        Ok(())
    }
    async fn stop_vm(&self, _: &str, vm_id: u32) -> PortResult<()> {
        let mut world = self.mutate()?;
        if let Some(vm) = world.vms.get_mut(&vm_id) {
            vm.live.running = false;
        }
        Ok(())
    }
    async fn delete_vm(&self, _: &str, vm_id: u32) -> PortResult<()> {
        let mut world = self.mutate()?;
        if world.vms.get(&vm_id).is_some_and(|v| v.live.running) {
            return Err(PortError::permanent("VM is running"));
        }
        world.vms.remove(&vm_id);
        world.talos.remove(&vm_id);
        Ok(())
    }
    async fn guest_ipv4(&self, _: &str, vm_id: u32, mac: &str) -> PortResult<Option<IpAddr>> {
        let mut world = self.read();
        if world.agent_silent {
            return Err(PortError::transient("QEMU guest agent is not running"));
        }
        let Some(vm) = world.vms.get_mut(&vm_id) else {
            return Ok(None);
        };
        if !vm.live.running || vm.live.mac.as_deref() != Some(mac) {
            return Ok(None);
        }
        vm.agent_polls += 1;
        if vm.agent_polls < 2 {
            return Err(PortError::transient("QEMU guest agent is not running"));
        }
        Ok(self.addresses.get(&vm_id).map(|(_, dhcp)| *dhcp))
    }
}

impl ImageFactory for Fake {
    async fn schematic(&self, extensions: &[String]) -> PortResult<String> {
        Ok(format!("{:0>64}", extensions.len()))
    }
    fn iso_url(&self, schematic: &str) -> String {
        format!("http://127.0.0.1:1/image/{schematic}/v1.12.4/nocloud-amd64-secureboot.iso")
    }
    fn installer_image(&self, schematic: &str) -> String {
        format!("factory.example/nocloud-installer-secureboot/{schematic}:v1.12.4")
    }
}

impl TalosApi for Fake {
    async fn apply_in_maintenance(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        let (vm, on_static) = self
            .vm_at(at)
            .ok_or_else(|| PortError::transient("connection refused"))?;
        let mut world = self.mutate()?;
        match world.talos.get(&vm) {
            Some(TalosState::Maintenance) if !on_static => {
                world.talos.insert(vm, TalosState::Installing(0));
                let _ = config;
                Ok(())
            }
            _ => Err(PortError::transient("connection refused")),
        }
    }
    async fn apply_installed(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        let (vm, _) = self
            .vm_at(at)
            .ok_or_else(|| PortError::transient("connection refused"))?;
        let mut world = self.mutate()?;
        world.talos.insert(
            vm,
            TalosState::Installed {
                config: config.to_vec(),
            },
        );
        Ok(())
    }
    async fn installed_version(&self, at: SocketAddr) -> PortResult<Option<String>> {
        let Some((vm, true)) = self.vm_at(at) else {
            return Ok(None);
        };
        let mut world = self.read();
        let state = world.talos.get(&vm).cloned().unwrap_or_default();
        match state {
            TalosState::Installing(n) if n >= 2 => {
                world
                    .talos
                    .insert(vm, TalosState::Installed { config: vec![] });
                Ok(Some(world.running()))
            }
            TalosState::Installing(n) => {
                world.talos.insert(vm, TalosState::Installing(n + 1));
                Err(PortError::transient("connection refused"))
            }
            TalosState::Installed { .. } => Ok(Some(world.running())),
            _ => Ok(None),
        }
    }
    async fn bootstrap(&self, _: SocketAddr) -> PortResult<Bootstrapped> {
        let mut world = self.mutate()?;
        if world.bootstrapped {
            return Ok(Bootstrapped::Already);
        }
        world.bootstrapped = true;
        world.bootstraps += 1;
        Ok(Bootstrapped::Now)
    }
    async fn etcd_members(&self, _: SocketAddr) -> PortResult<Vec<EtcdMember>> {
        Ok(if self.read().bootstrapped {
            vec![EtcdMember::voter("talos-cp-01")]
        } else {
            vec![]
        })
    }
    async fn kubeconfig(&self, _: SocketAddr) -> PortResult<Vec<u8>> {
        if self.read().bootstrapped {
            Ok(b"apiVersion: v1\nkind: Config\n".to_vec())
        } else {
            Err(PortError::transient("not bootstrapped"))
        }
    }
    async fn services(&self, at: SocketAddr) -> PortResult<Vec<ServiceHealth>> {
        if self.installed_version(at).await?.is_none() {
            return Err(PortError::transient("connection refused"));
        }
        let etcd = if self.read().bootstrapped {
            "Running"
        } else {
            "Preparing"
        };
        Ok(["apid", "kubelet", "etcd"]
            .into_iter()
            .map(|id| ServiceHealth {
                id: id.into(),
                state: if id == "etcd" { etcd } else { "Running" }.into(),
                healthy: Some(true),
            })
            .collect())
    }
    async fn reset(&self, at: SocketAddr) -> PortResult<()> {
        let (vm, _) = self
            .vm_at(at)
            .ok_or_else(|| PortError::transient("connection refused"))?;
        let mut world = self.mutate()?;
        world.talos.insert(vm, TalosState::Maintenance);
        world.bootstrapped = false;
        Ok(())
    }
    async fn apply_no_reboot(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        self.apply_installed(at, config).await
    }
}

/// The in-memory world models no Kubernetes versions: the upgrade runs against the simulators.
fn no_versions<T>() -> PortResult<T> {
    Err(PortError::permanent(
        "the in-memory world models no Kubernetes versions",
    ))
}

impl KubeApi for Fake {
    async fn api_ready(&self, _: &[u8]) -> PortResult<bool> {
        Ok(self.read().bootstrapped)
    }
    async fn node_ready(&self, _: &[u8], _: &str) -> PortResult<bool> {
        Ok(self.read().bootstrapped)
    }
    async fn server_version(&self, _: &[u8]) -> PortResult<String> {
        no_versions()
    }
    async fn nodes(&self, _: &[u8]) -> PortResult<Vec<NodeStatus>> {
        no_versions()
    }
    async fn static_pods(&self, _: &[u8], _: &str) -> PortResult<Vec<StaticPod>> {
        no_versions()
    }
    async fn daemonset_image(&self, _: &[u8], _: &str, _: &str) -> PortResult<Option<String>> {
        no_versions()
    }
}

/// Renders a stand-in config: the node, the installer and a secret line that must never show in plans.
pub struct FakeRenderer {
    pub revision: Mutex<u32>,
}

impl ConfigRenderer for FakeRenderer {
    fn render(&self, _: &Config, node: &Node, installer: &str) -> Result<RenderedNode, String> {
        let revision = *self.revision.lock().expect("lock");
        let text = format!(
            "machine:\n  hostname: {}\n  install: {installer}\n  revision: {revision}\n  token: s3cr3t-token\n",
            node.name
        );
        Ok(RenderedNode {
            redacted: text.replace("s3cr3t-token", "***"),
            config: Zeroizing::new(text.into_bytes()),
        })
    }
}
