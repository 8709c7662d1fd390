//! VM placement and addressing through the real binary against the in-process lab: a node with a static
//! address on a cloud-init drive installs and becomes Ready on a network with no DHCP server at all (and its
//! VLAN tag, extra disk and extra NIC reach the VM config); control planes spread over three Proxmox hosts get
//! the ISO once per host storage (once in all for a shared storage), and a disk and a NIC added later are
//! made in place; `validate` warns when two control planes share a host; `doctor` checks every host named.

use std::net::Ipv4Addr;
use std::path::Path;

use homelab_sim::lab::{Lab, LabOptions};
use homelab_sim::proxmox::Storage;

use crate::etcd::{homelabctl, octet, ok};

/// Everything a command printed, stdout then stderr.
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A lab on `127.<octet>.<subnet>.0/24` with `tweak` applied to its options, on its own runtime.
fn lab(subnet: u8, tweak: impl FnOnce(&mut LabOptions)) -> (tokio::runtime::Runtime, Lab) {
    let rt = runtime();
    let mut options = LabOptions::fast(subnet);
    options.dhcp_first = Ipv4Addr::new(127, octet(), subnet, 200);
    tweak(&mut options);
    let lab = rt.block_on(Lab::start(options)).expect("lab");
    (rt, lab)
}

/// A second plan finds nothing to do.
fn assert_no_change(dir: &Path) {
    let plan = homelabctl(dir, &["plan", "--detailed-exitcode"], None);
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));
}

fn runtime() -> tokio::runtime::Runtime {
    crate::lab_runtime()
}

/// homelab.yaml for the lab: `nodes` is the YAML of the node list (indented by two).
fn config(lab: &Lab, iso_storage: &str, nodes: &str) -> String {
    let info = lab.info();
    format!(
        "proxmox:\n  endpoint: {}\n  node: {}\n  token_id: \"{}\"\n  tls:\n    fingerprint: \"{}\"\n  \
         iso_storage: {iso_storage}\nimage:\n  factory: {}\n  talos_version: v1.12.4\n  platform: nocloud\n\
         cluster:\n  name: placement\nnodes:\n{nodes}",
        info.proxmox_endpoint, info.proxmox_node, info.token_id, info.fingerprint, info.factory_url
    )
}

/// One node of the list; `extra` goes at the node's level (e.g. `proxmox_node: pve2`), `net` inside
/// `network`.
fn node(
    name: &str,
    role: &str,
    vm_id: u32,
    host: u8,
    subnet: u8,
    extra: &str,
    net: &str,
) -> String {
    let o = octet();
    format!(
        "  - name: {name}\n    role: {role}\n    vm_id: {vm_id}\n    cores: 2\n    memory: 4GiB\n    \
         disk: {{size: 32GiB}}\n{extra}    network:\n      mac: \"BC:24:11:CA:{subnet:02X}:{host:02X}\"\n      \
         address: 127.{o}.{subnet}.{host}/24\n      gateway: 127.{o}.{subnet}.1\n{net}"
    )
}

/// A repository in `dir` for `lab` with `homelab_yaml`, and the token secret stored.
fn repository(dir: &Path, lab: &Lab, homelab_yaml: &str) {
    ok(dir, &["init", "."], None);
    std::fs::write(dir.join("homelab.yaml"), homelab_yaml).expect("homelab.yaml");
    let secret = format!("{}\n", lab.info().token_secret);
    ok(dir, &["secrets", "set-proxmox-token"], Some(&secret));
}

#[test]
fn a_static_address_node_installs_and_becomes_ready_without_any_dhcp() {
    let subnet = 181;
    // No DHCP server on the network: only the cloud-init drive gives an address.
    let (_rt, lab) = lab(subnet, |o| o.proxmox.dhcp_server = false);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let nodes = node(
        "talos-cp-01",
        "controlplane",
        181,
        100,
        subnet,
        "    disks:\n      - {name: data, size: 20GiB}\n    nics:\n      - {bridge: vmbr0, vlan: 30}\n",
        "      vlan: 20\n      dhcp: false\n      search_domain: home.arpa\n      nameservers: [127.0.0.53]\n",
    );
    repository(dir, &lab, &config(&lab, "local", &nodes));
    let applied = homelabctl(dir, &["apply", "--yes"], None);
    let text = said(&applied);
    assert!(applied.status.success(), "{text}");
    let o = octet();
    assert!(
        text.contains("cloud-init drive"),
        "apply says where the maintenance address came from: {text}"
    );

    let vm = lab.proxmox.vm(181).expect("the VM exists");
    let get = |k: &str| vm.config.get(k).cloned().unwrap_or_default();
    assert_eq!(get("ide0"), "local-lvm:vm-181-cloudinit,media=cdrom");
    assert_eq!(
        get("ipconfig0"),
        format!("ip=127.{o}.{subnet}.100/24,gw=127.{o}.{subnet}.1")
    );
    assert_eq!(get("nameserver"), "127.0.0.53");
    assert_eq!(get("searchdomain"), "home.arpa");
    assert_eq!(vm.address, Some(Ipv4Addr::new(127, o, subnet, 100)));
    // The VLAN tag, the extra NIC and the extra disk (with the serial its user volume selects it by).
    assert!(get("net0").ends_with(",tag=20"), "{}", get("net0"));
    assert!(get("net1").contains("bridge=vmbr0") && get("net1").ends_with(",tag=30"));
    let scsi1 = get("scsi1");
    assert!(scsi1.starts_with("local-lvm:vm-181-disk-"), "{scsi1}");
    assert!(
        scsi1.contains("serial=data") && scsi1.contains("size=20G"),
        "{scsi1}"
    );

    // Ready: the node answers installed and Kubernetes reports it Ready; a second plan changes nothing.
    let node = lab.node(181).expect("the Talos node");
    let kube = node.kube().expect("the control plane serves the API");
    let ready = kube
        .get("", "v1", "nodes", None, "talos-cp-01")
        .expect("the Node object");
    let conditions = ready["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        "{ready}"
    );
    assert_no_change(dir);
}

#[test]
fn control_planes_on_three_hosts_get_the_iso_once_per_host_storage() {
    let subnet = 182;
    let (_rt, lab) = lab(subnet, |o| {
        o.proxmox.other_nodes = vec!["pve2".into(), "pve3".into()];
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut nodes = String::new();
    for (i, host) in ["pve", "pve2", "pve3"].iter().enumerate() {
        let n = i as u8 + 1;
        nodes.push_str(&node(
            &format!("talos-cp-0{n}"),
            "controlplane",
            180 + u32::from(n),
            100 + n,
            subnet,
            &format!("    proxmox_node: {host}\n"),
            "",
        ));
    }
    repository(dir, &lab, &config(&lab, "local", &nodes));
    let validated = said(&homelabctl(dir, &["validate"], None));
    assert!(!validated.contains("share the Proxmox host"), "{validated}");
    ok(dir, &["apply", "--yes"], None);

    // `local` is each host's own directory: one download on each.
    let downloads = lab.proxmox.downloads_per_storage();
    let expected: std::collections::BTreeMap<String, usize> =
        ["pve/local", "pve2/local", "pve3/local"]
            .iter()
            .map(|k| (k.to_string(), 1))
            .collect();
    assert_eq!(downloads, expected);
    for (vmid, host) in [(181, "pve"), (182, "pve2"), (183, "pve3")] {
        let vm = lab.proxmox.vm(vmid).expect("VM");
        assert_eq!(vm.node, host, "VM {vmid}");
        assert!(vm.running, "VM {vmid} runs");
        assert!(
            !lab.proxmox.volumes_on(host, "local").is_empty(),
            "the ISO is on {host}'s own storage"
        );
    }
    assert_no_change(dir);

    // destroy --remove-iso removes every VM and every host's copy of the ISO.
    ok(dir, &["destroy", "--yes", "--remove-iso"], None);
    for (vmid, host) in [(181, "pve"), (182, "pve2"), (183, "pve3")] {
        assert!(lab.proxmox.vm(vmid).is_none(), "VM {vmid} is gone");
        let isos: Vec<String> = lab
            .proxmox
            .volumes_on(host, "local")
            .into_keys()
            .filter(|k| k.starts_with("iso/"))
            .collect();
        assert!(isos.is_empty(), "{host} still has {isos:?}");
    }
}

#[test]
fn a_shared_iso_storage_gets_one_download_for_every_host() {
    let subnet = 183;
    let (_rt, lab) = lab(subnet, |o| {
        o.proxmox.other_nodes = vec!["pve2".into(), "pve3".into()];
        o.proxmox.storages.push(Storage::nfs("isos", &["iso"]));
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let nodes = format!(
        "{}{}",
        node(
            "talos-cp-01",
            "controlplane",
            191,
            101,
            subnet,
            "    proxmox_node: pve2\n",
            ""
        ),
        node(
            "talos-wk-01",
            "worker",
            192,
            111,
            subnet,
            "    proxmox_node: pve3\n",
            ""
        )
    );
    repository(dir, &lab, &config(&lab, "isos", &nodes));
    ok(dir, &["apply", "--yes"], None);
    let downloads = lab.proxmox.downloads_per_storage();
    assert_eq!(
        downloads,
        [("isos".to_string(), 1)].into_iter().collect(),
        "a shared storage holds one copy for all hosts"
    );
    assert_eq!(lab.proxmox.vm(191).expect("VM").node, "pve2");
    assert_eq!(lab.proxmox.vm(192).expect("VM").node, "pve3");

    // A data disk and a tagged NIC added to the running worker: planned and made in place, no new VM.
    let grown = format!(
        "{}{}",
        node(
            "talos-cp-01",
            "controlplane",
            191,
            101,
            subnet,
            "    proxmox_node: pve2
",
            ""
        ),
        node(
            "talos-wk-01",
            "worker",
            192,
            111,
            subnet,
            "    proxmox_node: pve3
    disks:
      - {name: data, size: 10GiB}
    nics:
      - {vlan: 40}
",
            ""
        )
    );
    std::fs::write(dir.join("homelab.yaml"), config(&lab, "isos", &grown)).expect("homelab.yaml");
    let plan = homelabctl(dir, &["plan", "--detailed-exitcode"], None);
    let text = said(&plan);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(
        text.contains("disk.data") && text.contains("nic1"),
        "{text}"
    );
    assert!(
        text.contains("0 to create, 2 to update, 0 to replace"),
        "{text}"
    );
    ok(dir, &["apply", "--yes"], None);
    let vm = lab.proxmox.vm(192).expect("VM");
    let scsi1 = vm.config.get("scsi1").cloned().unwrap_or_default();
    assert!(
        scsi1.starts_with("local-lvm:vm-192-disk-") && scsi1.contains("serial=data"),
        "{scsi1}"
    );
    let net1 = vm.config.get("net1").cloned().unwrap_or_default();
    assert!(net1.ends_with(",tag=40"), "{net1}");
    assert_eq!(lab.proxmox.task_count("qmcreate"), 2, "no VM was made anew");
    assert_no_change(dir);
}

#[test]
fn validate_warns_when_two_control_planes_share_a_proxmox_host() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["init", "."], None);
    let o = octet();
    let mut nodes = String::new();
    for (n, host) in [(1u8, "pve1"), (2, "pve2"), (3, "pve2")] {
        nodes.push_str(&format!(
            "  - name: talos-cp-0{n}\n    vm_id: {}\n    proxmox_node: {host}\n    network:\n      \
             mac: \"BC:24:11:CA:FE:0{n}\"\n      address: 127.{o}.184.{}/24\n      gateway: 127.{o}.184.1\n",
            100 + u32::from(n),
            100 + n
        ));
    }
    let yaml = format!(
        "proxmox:\n  endpoint: https://127.0.0.1:8006\n  token_id: \"homelabctl@pve!provision\"\nnodes:\n{nodes}"
    );
    std::fs::write(dir.join("homelab.yaml"), yaml).expect("homelab.yaml");
    let out = homelabctl(dir, &["validate"], None);
    let text = said(&out);
    assert!(out.status.success(), "a warning is no failure: {text}");
    assert!(
        text.contains("control planes talos-cp-02, talos-cp-03 share the Proxmox host `pve2`"),
        "{text}"
    );
    assert!(
        text.contains("losing that host loses etcd quorum"),
        "{text}"
    );
}

#[test]
fn doctor_checks_every_proxmox_host_named() {
    let rt = runtime();
    let mut opts = homelab_sim::proxmox::SimOptions::fast();
    opts.token_id = "homelabctl@pve!provision".into();
    opts.other_nodes = vec!["pve2".into()];
    let sim = rt
        .block_on(homelab_sim::proxmox::ProxmoxSim::start(opts))
        .expect("sim");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let o = octet();
    let mut nodes = String::new();
    for (n, host) in [(1u8, "pve"), (2, "pve2"), (3, "pve3")] {
        nodes.push_str(&format!(
            "  - name: talos-cp-0{n}\n    vm_id: {}\n    proxmox_node: {host}\n    network:\n      \
             mac: \"BC:24:11:CA:FE:0{n}\"\n      address: 127.{o}.185.{}/24\n      gateway: 127.{o}.185.1\n",
            100 + u32::from(n),
            100 + n
        ));
    }
    let yaml = format!(
        "proxmox:\n  endpoint: {}\n  token_id: \"homelabctl@pve!provision\"\n  tls:\n    fingerprint: \"{}\"\n\
         nodes:\n{nodes}",
        sim.endpoint(),
        sim.fingerprint()
    );
    std::fs::write(dir.join("homelab.yaml"), yaml).expect("homelab.yaml");
    let out = crate::isolated(dir, &["doctor"])
        .env("HOMELAB_PROXMOX_TOKEN_SECRET", sim.token_secret())
        .output()
        .expect("doctor runs");
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // pve2 exists: its node, ISO storage and VM storage are checked; pve3 is named but not in the cluster.
    assert!(text.contains("node pve2"), "{text}");
    assert!(text.contains("iso storage local on pve2"), "{text}");
    assert!(text.contains("privileges /nodes/pve2"), "{text}");
    assert!(
        text.contains("no node 'pve3' in this cluster (nodes: pve, pve2)"),
        "{text}"
    );
}
