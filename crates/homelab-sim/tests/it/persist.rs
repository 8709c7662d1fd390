//! What survives a stop: a control plane keeps its Kubernetes data across a power cycle, a node comes back from
//! its snapshot installed and bootstrapped, and a Proxmox simulator comes back from its snapshot with the same
//! certificate, token, address and volumes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use homelab_apid::ApidClient;
use homelab_sim::proxmox::{ProxmoxSim, SimOptions};
use homelab_sim::talos::{NodeOptions, NodeSim};

use crate::fixture::{Cluster, WAIT, install, ip, node, ok, schema};

/// Waits until the node's Kubernetes API runs.
async fn kube_up(node: &NodeSim) -> SocketAddr {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(addr) = node.kube_addr() {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "no Kubernetes API: {:?}",
            node.phase()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bootstrapped control plane at `maintenance` → `static_ip`.
async fn bootstrapped(cluster: &Cluster, maintenance: &str, static_ip: &str) -> NodeSim {
    let node = node(maintenance, |_| {}).await;
    let installed = install(&node, &cluster.config("cp", ip(static_ip), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    ok(client.bootstrap().await, "bootstrap");
    kube_up(&node).await;
    node
}

#[tokio::test]
async fn a_power_cycled_control_plane_keeps_its_kubernetes_data() {
    let cluster = Cluster::new();
    let node = bootstrapped(&cluster, "127.0.21.40", "127.0.22.40").await;
    let before = node.kube().expect("kube").data();
    node.power_off();
    assert!(node.kube_addr().is_none());
    ok(node.power_on().await, "power on");
    kube_up(&node).await;
    assert_eq!(node.kube().expect("kube").data().id, before.id);
    assert!(node.is_bootstrapped());
}

#[tokio::test]
async fn a_node_restored_from_its_snapshot_comes_up_installed_and_bootstrapped() {
    let cluster = Cluster::new();
    let node = bootstrapped(&cluster, "127.0.21.41", "127.0.22.41").await;
    let mut snap = node.snapshot().expect("an installed node has a snapshot");
    snap.etcd_data = node.etcd_data();
    assert!(snap.bootstrapped && snap.etcd.is_some());
    node.power_off();

    let mut opts = NodeOptions::new(SocketAddr::new(ip("127.0.21.41"), 0));
    (opts.apid_port, opts.kube_port) = (0, Some(0));
    let back = ok(NodeSim::restore(opts, schema(), &snap), "restore");
    ok(back.power_on().await, "power on");
    let Ok(addr) = back.wait_installed(WAIT).await else {
        panic!("not installed: {:?}", back.phase())
    };
    assert_eq!(addr.ip(), ip("127.0.22.41"));
    assert!(back.is_bootstrapped());
    kube_up(&back).await;
    let version = back.snapshot().and_then(|s| s.etcd).expect("etcd version");
    let saved = snap.etcd.expect("saved version");
    assert_eq!(version.id, saved.id, "the same etcd data");
    assert!(
        version.revision >= saved.revision,
        "the kubelet may update its Node"
    );
    // The apid certificate comes from the config's OS CA: an admin client of the cluster gets in.
    ok(
        ApidClient::connect(addr, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
}

#[tokio::test]
async fn a_restored_config_off_loopback_is_refused() {
    let cluster = Cluster::new();
    let node = bootstrapped(&cluster, "127.0.21.42", "127.0.22.42").await;
    let mut snap = node.snapshot().expect("snapshot");
    node.power_off();
    snap.config = snap.config.replace("127.0.22.42", "192.0.2.42");
    let opts = NodeOptions::new(SocketAddr::new(ip("127.0.21.42"), 0));
    let err = NodeSim::restore(opts, schema(), &snap).expect_err("not loopback");
    assert!(err.to_string().contains("127.0.0.0/8"), "{err}");
}

#[tokio::test]
async fn a_restored_proxmox_sim_keeps_its_identity_address_and_volumes() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    assert!(sim.put_volume("local", "iso/talos.iso", "iso", b"ISO".to_vec()));
    let snap = sim.snapshot();
    let (endpoint, fingerprint, secret) = (
        sim.endpoint(),
        sim.fingerprint().to_string(),
        sim.token_secret().to_string(),
    );
    sim.shutdown().await;
    let back = ProxmoxSim::restore(SimOptions::fast(), &snap)
        .await
        .expect("restore");
    assert_eq!(back.endpoint(), endpoint);
    assert_eq!(back.fingerprint(), fingerprint);
    assert_eq!(back.token_secret(), secret);
    let vols = back.volumes("local");
    let iso = vols.get("iso/talos.iso").expect("the ISO is kept");
    assert_eq!(iso.data.as_deref().map(Vec::as_slice), Some(&b"ISO"[..]));
}

/// Starts a lab on a directory another lab just left: the stopped lab's listeners close as its tasks wind
/// down (the directory itself is free at once).
async fn start_again(opts: impl Fn() -> homelab_sim::lab::LabOptions) -> homelab_sim::lab::Lab {
    let deadline = Instant::now() + WAIT;
    loop {
        match homelab_sim::lab::Lab::start(opts()).await {
            Ok(lab) => return lab,
            Err(e) if e.is_address_in_use() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the lab starts again: {e}"),
        }
    }
}

#[tokio::test]
async fn two_labs_never_share_a_state_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = || {
        let mut o = homelab_sim::lab::LabOptions::fast(46);
        o.state_dir = Some(dir.path().to_path_buf());
        o
    };
    let first = homelab_sim::lab::Lab::start(opts()).await.expect("first");
    let Err(err) = homelab_sim::lab::Lab::start(opts()).await else {
        panic!("a second lab on the same state directory started")
    };
    assert!(err.is_busy(), "{err}");
    drop(first);
    start_again(opts).await;
}

#[tokio::test]
async fn a_running_vm_whose_boot_was_not_saved_gets_a_fresh_node_on_restore() {
    use homelab_sim::lab::{Lab, LabOptions, LabState};
    use homelab_sim::talos::NodePhase;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = || {
        let mut o = LabOptions::fast(48);
        o.state_dir = Some(dir.path().to_path_buf());
        o
    };
    let lab = Lab::start(opts()).await.expect("lab");
    let mut state = lab.state();
    drop(lab);
    // A lab killed right after a VM booted: the VM runs with its lease, its node was never saved.
    let address = ip("127.0.48.200");
    state.proxmox.vms.push(homelab_sim::proxmox::VmSnapshot {
        vmid: 100,
        node: None,
        config: [(
            "net0".to_string(),
            "virtio=BC:24:11:00:00:30,bridge=vmbr0".to_string(),
        )]
        .into(),
        running: true,
        firmware: Default::default(),
        address: match address {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        },
    });
    let bytes = state.to_bytes(dir.path()).expect("bytes");
    LabState::write(dir.path(), &bytes).expect("write");

    let lab = start_again(opts).await;
    let node = lab.node(100).expect("a node for the running VM");
    let apid = SocketAddr::new(address, homelab_apid::APID_PORT);
    assert_eq!(node.phase(), NodePhase::Maintenance(apid));
}
