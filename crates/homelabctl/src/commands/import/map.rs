//! The mapping of `import`: the facts read from the running machine configs and the VMs found in Proxmox,
//! turned into a homelab.yaml, with a note for everything that could not be expressed. Pure: no I/O.

use std::fmt::Write as _;
use std::net::IpAddr;

use homelab_engine::ports::VmLive;
use homelab_talos::import::facts::{InstallerImage, NodeFacts};
use homelab_talos::machine_config::{Encryption, Role};

/// The Proxmox side of homelab.yaml, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxmoxSide {
    pub endpoint: String,
    /// The default host (`proxmox.node`).
    pub node: String,
    pub token_id: String,
    pub fingerprint: Option<String>,
    pub insecure: bool,
}

/// A VM found in Proxmox: the host it lives on, its id, what the engine reads of it, and the storages of
/// its system disk and of its ISO.
#[derive(Debug, Clone)]
pub struct VmFound {
    pub host: String,
    pub vm_id: u32,
    pub live: VmLive,
    pub disk_storage: Option<String>,
    /// The addresses the guest agent reports (read only when a node's config names no MAC).
    pub agent_addresses: Vec<IpAddr>,
}

/// The storage of a Proxmox volume (`local-lvm:vm-100-disk-0,size=64G` → `local-lvm`).
pub fn volume_storage(property: &str) -> Option<String> {
    let volume = property.split(',').next()?;
    let (storage, _) = volume.split_once(':')?;
    (!storage.is_empty()).then(|| storage.to_string())
}

/// The VM whose first NIC has `mac` (case-insensitive).
pub fn vm_by_mac<'a>(vms: &'a [VmFound], mac: &str) -> Option<&'a VmFound> {
    vms.iter().find(|v| {
        v.live
            .mac
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(mac))
    })
}

/// The VM whose guest agent reports `address` (for a config that selects its NIC by name, not MAC).
pub fn vm_by_address(vms: &[VmFound], address: IpAddr) -> Option<&VmFound> {
    vms.iter().find(|v| v.agent_addresses.contains(&address))
}

/// One node of the draft, with the patches it gets.
#[derive(Debug, Clone)]
pub struct DraftNode {
    pub facts: NodeFacts,
    pub vm: VmFound,
    pub patches: Vec<String>,
}

impl DraftNode {
    /// The node's name in homelab.yaml: the VM's name (plan refuses a VM named otherwise), else the hostname.
    pub fn name(&self) -> String {
        self.vm
            .live
            .name
            .clone()
            .or_else(|| self.facts.hostname.clone())
            .unwrap_or_else(|| format!("vm-{}", self.vm.vm_id))
    }
}

/// Everything homelab.yaml is written from.
#[derive(Debug, Clone)]
pub struct Draft {
    pub proxmox: ProxmoxSide,
    pub iso_storage: String,
    pub factory: String,
    pub installer: InstallerImage,
    pub extensions: Vec<String>,
    pub nodes: Vec<DraftNode>,
    pub cluster_patches: Vec<String>,
    pub controlplane_patches: Vec<String>,
    pub worker_patches: Vec<String>,
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn q(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", ")
    )
}

fn size_mib(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{}GiB", mib / 1024)
    } else {
        mib.to_string()
    }
}

/// Why a node cannot be written into homelab.yaml at all.
pub fn required(node: &DraftNode) -> Result<(), String> {
    let name = node.name();
    if node.facts.address.is_none() {
        return Err(format!(
            "node {name}: its config has no static address (LinkConfig or machine.network.interfaces)"
        ));
    }
    if node.facts.gateway.is_none() {
        return Err(format!("node {name}: its config has no default route"));
    }
    if node.vm.live.mac.is_none() {
        return Err(format!("node {name}: VM {} has no net0 MAC", node.vm.vm_id));
    }
    Ok(())
}

impl Draft {
    /// The cluster-wide facts: the first control plane's (a worker's config carries the same cluster part).
    fn cluster(&self) -> &homelab_talos::import::facts::ClusterFacts {
        let first = self
            .nodes
            .iter()
            .find(|n| n.facts.role == Role::ControlPlane)
            .or(self.nodes.first());
        static EMPTY: std::sync::OnceLock<homelab_talos::import::facts::ClusterFacts> =
            std::sync::OnceLock::new();
        first.map_or_else(|| EMPTY.get_or_init(Default::default), |n| &n.facts.cluster)
    }

    /// homelab.yaml for the draft. Call [`required`] on each node first.
    pub fn homelab_yaml(&self) -> String {
        let mut y = String::new();
        let p = &self.proxmox;
        let c = self.cluster();
        let _ = writeln!(
            y,
            "# yaml-language-server: $schema=./homelab.schema.json\n# homelab.yaml written by `homelabctl import` from the running cluster; import-report.md lists what\n# it could not map. Check it with `homelabctl validate`, then `homelabctl plan` should show no change.\n"
        );
        let _ = writeln!(y, "proxmox:\n  endpoint: {}", q(&p.endpoint));
        let _ = writeln!(y, "  node: {}\n  token_id: {}", q(&p.node), q(&p.token_id));
        if let Some(fp) = &p.fingerprint {
            let _ = writeln!(y, "  tls:\n    fingerprint: {}", q(fp));
        } else if p.insecure {
            let _ = writeln!(y, "  tls:\n    insecure: true");
        }
        let _ = writeln!(y, "  iso_storage: {}\n", q(&self.iso_storage));
        let i = &self.installer;
        let _ = writeln!(
            y,
            "image:\n  factory: {}\n  talos_version: {}\n  platform: {}\n  secureboot: {}\n  extensions: {}\n",
            q(&self.factory),
            i.version,
            i.platform,
            i.secureboot,
            list(&self.extensions)
        );
        let _ = writeln!(y, "cluster:");
        if let Some(name) = &c.name {
            let _ = writeln!(y, "  name: {}", q(name));
        }
        if let Some(endpoint) = &c.endpoint {
            let _ = writeln!(y, "  endpoint: {}", q(endpoint));
        }
        if let Some(k) = &c.kubernetes_version {
            let _ = writeln!(y, "  kubernetes_version: {}", q(k));
        }
        if !c.pod_subnets.is_empty() {
            let _ = writeln!(y, "  pod_subnets: {}", list(&c.pod_subnets));
        }
        if !c.service_subnets.is_empty() {
            let _ = writeln!(y, "  service_subnets: {}", list(&c.service_subnets));
        }
        let _ = writeln!(
            y,
            "  allow_scheduling_on_control_planes: {}",
            c.allow_scheduling_on_control_planes
        );
        if let Some(vip) = c.vip {
            let _ = writeln!(y, "  vip: {}", q(&vip.to_string()));
        }
        let _ = writeln!(y, "  patches: {}", list(&self.cluster_patches));
        if !self.controlplane_patches.is_empty() || !self.worker_patches.is_empty() {
            let _ = writeln!(
                y,
                "  role_patches:\n    controlplane: {}\n    worker: {}",
                list(&self.controlplane_patches),
                list(&self.worker_patches)
            );
        }
        let _ = writeln!(y, "\nnodes:");
        for n in &self.nodes {
            node_yaml(&mut y, n, &p.node);
        }
        y
    }
}

fn node_yaml(y: &mut String, n: &DraftNode, default_host: &str) {
    let f = &n.facts;
    let live = &n.vm.live;
    let role = match f.role {
        Role::ControlPlane => "controlplane",
        Role::Worker => "worker",
    };
    let _ = writeln!(
        y,
        "  - name: {}\n    role: {role}\n    vm_id: {}",
        q(&n.name()),
        n.vm.vm_id
    );
    if n.vm.host != default_host {
        let _ = writeln!(y, "    proxmox_node: {}", q(&n.vm.host));
    }
    if let Some(cores) = live.cores {
        let _ = writeln!(y, "    cores: {cores}");
    }
    if let Some(mib) = live.memory_mib {
        let _ = writeln!(y, "    memory: {}", size_mib(mib));
    }
    if live.disk_gib.is_some() || n.vm.disk_storage.is_some() {
        let _ = writeln!(y, "    disk:");
        if let Some(gib) = live.disk_gib {
            let _ = writeln!(y, "      size: {gib}GiB");
        }
        if let Some(storage) = &n.vm.disk_storage {
            let _ = writeln!(y, "      storage: {}", q(storage));
        }
    }
    let _ = writeln!(y, "    network:");
    if let Some(bridge) = &live.bridge {
        let _ = writeln!(y, "      bridge: {}", q(bridge));
    }
    if let Some(vlan) = live.vlan {
        let _ = writeln!(y, "      vlan: {vlan}");
    }
    if let Some(mac) = &live.mac {
        let _ = writeln!(y, "      mac: {}", q(&mac.to_ascii_uppercase()));
    }
    if let Some((ip, prefix)) = f.address {
        let _ = writeln!(y, "      address: {}", q(&format!("{ip}/{prefix}")));
    }
    if let Some(gw) = f.gateway {
        let _ = writeln!(y, "      gateway: {}", q(&gw.to_string()));
    }
    if !f.nameservers.is_empty() {
        let ns: Vec<String> = f.nameservers.iter().map(ToString::to_string).collect();
        let _ = writeln!(y, "      nameservers: {}", list(&ns));
    }
    if live.static_address.is_some() {
        // A cloud-init drive carries the address: the static mode, not a DHCP reservation.
        let _ = writeln!(y, "      dhcp: false");
    }
    if let Some(disk) = &f.install_disk {
        let _ = writeln!(y, "    install_disk: {}", q(disk));
    }
    let encryption = match f.encryption {
        Encryption::Tpm => "tpm",
        Encryption::None => "none",
    };
    let _ = writeln!(y, "    encryption: {encryption}");
    if !n.patches.is_empty() {
        let _ = writeln!(y, "    patches: {}", list(&n.patches));
    }
}

/// What homelab.yaml cannot say about a VM: reasons the plan would show a change (or a replacement).
pub fn vm_notes(n: &DraftNode) -> Vec<String> {
    let live = &n.vm.live;
    let mut notes = Vec::new();
    let replace = |field: &str, have: &str, want: &str| {
        format!(
            "VM {}: {field} is {have} (homelabctl makes {want}): homelab.yaml cannot express it, and plan will \
             want to REPLACE the VM (its disk is lost); do not apply before fixing it in Proxmox",
            n.vm.vm_id
        )
    };
    for (field, have, want) in [
        ("bios", live.bios.as_deref(), "ovmf"),
        ("machine", live.machine.as_deref(), "q35"),
        ("tpmstate0", live.tpm_version.as_deref(), "v2.0"),
    ] {
        if have != Some(want) {
            notes.push(replace(field, have.unwrap_or("unset"), want));
        }
    }
    let efidisk = live
        .efidisk
        .as_ref()
        .map(|(t, k)| format!("efitype={t},pre-enrolled-keys={}", u8::from(*k)));
    let want = "efitype=4m,pre-enrolled-keys=0";
    if efidisk.as_deref() != Some(want) {
        notes.push(replace(
            "efidisk0",
            efidisk.as_deref().unwrap_or("unset"),
            want,
        ));
    }
    if !live.extra_disks.is_empty() {
        notes.push(format!(
            "VM {}: extra disks {} are not written to homelab.yaml (nodes[].disks needs their user volume); add them by hand",
            n.vm.vm_id,
            live.extra_disks
                .iter()
                .map(|(s, d)| format!("{s} ({d})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if live.extra_nics.iter().any(Option::is_some) {
        notes.push(format!(
            "VM {}: extra NICs (net1…) are not written to homelab.yaml; add them as nodes[].nics by hand",
            n.vm.vm_id
        ));
    }
    if !live.running {
        notes.push(format!("VM {}: stopped; apply will start it", n.vm.vm_id));
    }
    if let Some(hostname) = &n.facts.hostname
        && *hostname != n.name()
    {
        notes.push(format!(
            "node {}: the VM's name differs from the hostname {hostname}; the node is named after the VM and the hostname kept by a patch",
            n.name()
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    use homelab_talos::import::facts::node_facts;

    const SCHEMATIC: &str = "3abf06e1d81e509d779dc256f9feae6cd6d82c69337c661cbfc383a92594faf5";

    fn facts() -> NodeFacts {
        node_facts(&format!(
            "version: v1alpha1\nmachine:\n    type: controlplane\n    kubelet:\n        image: ghcr.io/siderolabs/kubelet:v1.35.0\n    install:\n        disk: /dev/vda\n        image: factory.talos.dev/nocloud-installer/{SCHEMATIC}:v1.12.4\ncluster:\n    controlPlane:\n        endpoint: https://10.0.0.99:6443\n    clusterName: lab\n    network:\n        podSubnets:\n            - 10.244.0.0/16\n        serviceSubnets:\n            - 10.96.0.0/12\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp1\n---\napiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n    match: mac(link.permanent_addr) == \"bc:24:11:00:00:01\"\n---\napiVersion: v1alpha1\nkind: LinkConfig\nname: net0\nup: true\naddresses:\n    - address: 10.0.0.11/24\nroutes:\n    - gateway: 10.0.0.1\n---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.0.0.99\nlink: net0\n"
        ))
        .expect("facts")
    }

    fn vm(host: &str, vm_id: u32, mac: &str) -> VmFound {
        VmFound {
            host: host.into(),
            vm_id,
            live: VmLive {
                name: Some("cp1".into()),
                cores: Some(2),
                memory_mib: Some(6144),
                disk_gib: Some(40),
                bridge: Some("vmbr1".into()),
                vlan: Some(20),
                mac: Some(mac.into()),
                bios: Some("ovmf".into()),
                machine: Some("q35".into()),
                efidisk: Some(("4m".into(), false)),
                tpm_version: Some("v2.0".into()),
                running: true,
                ..VmLive::default()
            },
            disk_storage: Some("ssd".into()),
            agent_addresses: vec!["10.0.0.11".parse().expect("ip")],
        }
    }

    fn draft(node: DraftNode) -> Draft {
        Draft {
            proxmox: ProxmoxSide {
                endpoint: "https://127.0.0.1:8006".into(),
                node: "pve".into(),
                token_id: "root@pam!import".into(),
                fingerprint: None,
                insecure: true,
            },
            iso_storage: "local".into(),
            factory: "https://factory.talos.dev".into(),
            installer: node.facts.installer.clone().expect("installer"),
            extensions: vec!["siderolabs/qemu-guest-agent".into()],
            nodes: vec![node],
            cluster_patches: Vec::new(),
            controlplane_patches: Vec::new(),
            worker_patches: Vec::new(),
        }
    }

    #[test]
    fn the_vm_is_found_by_the_mac_in_the_link_selector() {
        let vms = [
            vm("pve", 100, "BC:24:11:00:00:02"),
            vm("pve2", 101, "bc:24:11:00:00:01"),
        ];
        let mac = facts().mac.expect("mac");
        assert_eq!(vm_by_mac(&vms, &mac).map(|v| v.vm_id), Some(101));
        assert!(vm_by_mac(&vms, "BC:24:11:00:00:09").is_none());
        let ip = "10.0.0.11".parse().expect("ip");
        assert_eq!(vm_by_address(&vms, ip).map(|v| v.vm_id), Some(100));
        assert!(vm_by_address(&vms, "10.0.0.12".parse().expect("ip")).is_none());
        assert_eq!(
            volume_storage("ssd:vm-101-disk-1,size=40G").as_deref(),
            Some("ssd")
        );
        assert_eq!(volume_storage("none,media=cdrom"), None);
    }

    #[test]
    fn the_draft_is_a_valid_homelab_yaml_with_every_mapped_field() {
        let node = DraftNode {
            facts: facts(),
            vm: vm("pve2", 101, "BC:24:11:00:00:01"),
            patches: vec!["patches/cp1.yaml".into()],
        };
        assert!(required(&node).is_ok());
        let text = draft(node).homelab_yaml();
        let loaded = homelab_config::parse(&text, None).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let c = loaded.config;
        assert_eq!(c.cluster.name, "lab");
        assert_eq!(c.cluster.endpoint, "https://10.0.0.99:6443");
        assert_eq!(c.cluster.vip, Some("10.0.0.99".parse().expect("ip")));
        assert_eq!(c.cluster.kubernetes_version.to_string(), "1.35.0");
        assert_eq!(c.image.talos_version.with_v(), "v1.12.4");
        assert!(!c.image.secureboot);
        let n = &c.nodes[0];
        assert_eq!(
            (n.name.as_str(), n.vm_id, n.proxmox_node.as_str()),
            ("cp1", 101, "pve2")
        );
        assert_eq!((n.cores, n.memory_mib, n.disk.size_gib), (2, 6144, 40));
        assert_eq!(n.disk.storage, "ssd");
        assert_eq!(
            (n.network.bridge.as_str(), n.network.vlan),
            ("vmbr1", Some(20))
        );
        assert_eq!(n.network.mac.to_string(), "BC:24:11:00:00:01");
        assert_eq!(n.network.address.to_string(), "10.0.0.11/24");
        assert_eq!(n.install_disk, "/dev/vda");
        assert_eq!(n.patches.len(), 1);
        assert_eq!(c.proxmox.tls.trust(), homelab_config::TlsTrust::Insecure);
    }

    #[test]
    fn what_homelab_yaml_cannot_express_is_noted() {
        let mut v = vm("pve", 100, "BC:24:11:00:00:01");
        v.live.bios = Some("seabios".into());
        v.live.extra_disks = vec![("data".into(), "ssd:100G".into())];
        let node = DraftNode {
            facts: facts(),
            vm: v,
            patches: Vec::new(),
        };
        let notes = vm_notes(&node);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("bios is seabios") && n.contains("REPLACE")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("extra disks data")),
            "{notes:?}"
        );
        let mut no_address = node.clone();
        no_address.facts.address = None;
        assert!(required(&no_address).is_err_and(|e| e.contains("no static address")));
    }
}
