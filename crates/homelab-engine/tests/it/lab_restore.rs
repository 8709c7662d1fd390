//! A lab that keeps its state directory and is started on it again comes back as it was: the same endpoints
//! and certificate, the VM running, its Talos node installed and bootstrapped, and nothing for apply to change.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use homelab_kube::KubeClient;
use homelab_sim::lab::{Lab, LabOptions, LabState};
use homelab_sim::talos::NodePhase;
use homelab_talos::secrets::SecretsBundle;

use crate::lab::World;

const SUBNET: u8 = 44;

fn options(dir: &Path, subnet: u8) -> LabOptions {
    let mut opts = LabOptions::fast(subnet);
    opts.state_dir = Some(dir.to_path_buf());
    opts
}

/// Starts the lab again, giving the stopped one's tasks a moment to let go of their sockets.
async fn restart(dir: &Path, subnet: u8) -> Lab {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Lab::start(options(dir, subnet)).await {
            Ok(lab) => return lab,
            Err(e) if e.is_address_in_use() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("restored lab: {e}"),
        }
    }
}

/// Waits until the background saver wrote a bootstrapped node for VM 100 whose etcd holds `namespace`.
async fn saved_with_namespace(dir: &Path, namespace: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let state = LabState::read(dir).expect("readable state");
        let disk = state.and_then(|s| s.nodes.get(&100).and_then(|n| n.disk.clone()));
        let has = |d: &homelab_sim::talos::NodeSnapshot| {
            d.bootstrapped
                && d.etcd_data.as_ref().is_some_and(|e| {
                    e.objects
                        .iter()
                        .any(|o| o.plural == "namespaces" && o.name == namespace)
                })
        };
        if disk.as_ref().is_some_and(has) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_lab_keeps_its_endpoints_vm_and_bootstrapped_node() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = SecretsBundle::generate().expect("bundle");
    let lab = Lab::start(options(dir.path(), SUBNET))
        .await
        .expect("lab starts");
    let w = World::with_lab(lab, SUBNET, bundle.clone());
    let done = w
        .engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{:?}", w.events.lock().expect("lock")));
    let before = w.lab.info();
    let kube = KubeClient::from_kubeconfig_yaml(&String::from_utf8_lossy(&done.kubeconfig))
        .expect("kubeconfig");
    kube.ensure_namespace("flux-system")
        .await
        .expect("namespace");
    assert!(
        saved_with_namespace(dir.path(), "flux-system").await,
        "saved on change, without an explicit save"
    );
    let journal = w.state; // the repository's .homelab, which outlives the simulator
    drop(w.lab);

    let lab = restart(dir.path(), SUBNET).await;
    let after = lab.info();
    assert_eq!(after.proxmox_endpoint, before.proxmox_endpoint);
    assert_eq!(after.fingerprint, before.fingerprint);
    assert_eq!(after.token_secret, before.token_secret);
    assert_eq!(after.factory_url, before.factory_url);
    assert!(lab.proxmox.vm(100).expect("the VM is kept").running);
    let node = lab.node(100).expect("the node is back");
    let static_ip = format!("127.0.{SUBNET}.100");
    let apid: SocketAddr = format!("{static_ip}:50000").parse().expect("addr");
    assert_eq!(node.phase(), NodePhase::Installed(apid));
    assert!(node.is_bootstrapped());
    let api: SocketAddr = format!("{static_ip}:6443").parse().expect("addr");
    assert_eq!(node.kube_addr(), Some(api));

    let mut w = World::with_lab(lab, SUBNET, bundle);
    w.state = journal;
    let plan = w.engine().plan().await.expect("plan");
    assert!(!plan.has_changes(), "{plan:?}");
    let rows = w.engine().status().await;
    assert!(rows.iter().all(|r| r.healthy), "{rows:?}");
    assert_eq!(w.lab.proxmox.task_count("qmcreate"), 0, "no VM made again");
    let kept = kube.get("v1", "Namespace", None, "flux-system").await;
    assert!(kept.expect("get").is_some(), "etcd's objects are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_ha_lab_comes_back_with_its_etcd_members_and_nothing_to_change() {
    const HA: u8 = 190;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = SecretsBundle::generate().expect("bundle");
    let lab = Lab::start(options(dir.path(), HA))
        .await
        .expect("lab starts");
    let yaml = crate::lab_ha::ha_yaml(&lab, HA);
    let w = World::with_lab_yaml(lab, &yaml, bundle.clone());
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{:?}", w.events.lock().expect("lock")));
    w.lab.save().expect("save");
    let journal = w.state;
    drop(w.lab);

    let lab = restart(dir.path(), HA).await;
    let mut members = lab.node(301).expect("cp-1").cluster_etcd_members();
    members.sort();
    assert_eq!(members, ["ha-cp-1", "ha-cp-2", "ha-cp-3"]);
    let mut w = World::with_lab_yaml(lab, &yaml, bundle);
    w.state = journal;
    let plan = w.engine().plan().await.expect("plan");
    assert!(!plan.has_changes(), "{plan:?}");
    let rows = w.engine().status().await;
    assert!(rows.iter().all(|r| r.healthy), "{rows:?}");
}
