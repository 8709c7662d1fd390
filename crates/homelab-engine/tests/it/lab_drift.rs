//! Drift and re-creation against the simulators over real sockets: a VM changed behind homelabctl's back
//! shows as drift in the plan and apply puts it back; after destroy, apply builds the cluster again.

use homelab_engine::plan::Action;

use super::lab::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_in_proxmox_is_planned_and_fixed_then_destroy_and_apply_again_rebuild() {
    let w = World::start(45).await;
    w.engine().converge(false).await.expect("first apply");
    let rows = w.engine().status().await;
    let services = rows
        .iter()
        .find(|r| r.component == "services" && r.name == "talos-cp-01")
        .expect("a services row per node");
    assert!(services.healthy, "{services:?}");
    for id in ["apid", "etcd", "kubelet"] {
        assert!(services.detail.contains(id), "{services:?}");
    }
    assert!(rows.iter().all(|r| r.healthy), "{rows:?}");
    let node = w.lab.proxmox.node();
    let outside = [
        ("memory".to_string(), "2048".to_string()),
        ("cores".to_string(), "1".to_string()),
    ];
    w.proxmox
        .client
        .set_vm_config(&node, 100, &outside, None)
        .await
        .expect("a change made outside homelabctl");

    let plan = w.engine().plan().await.expect("plan");
    let vm = plan
        .changes
        .iter()
        .find(|c| c.address == "vm.talos-cp-01")
        .expect("the VM is in the plan");
    assert_eq!(vm.action, Action::Update, "{vm:?}");
    for field in ["memory", "cores"] {
        let f = vm
            .fields
            .iter()
            .find(|f| f.field == field)
            .unwrap_or_else(|| panic!("{field} changed: {vm:?}"));
        assert!(f.drift, "{field} is marked as drift");
    }

    w.engine()
        .converge(false)
        .await
        .expect("apply fixes the drift");
    let config = &w.lab.proxmox.vms()[0].config;
    assert_ne!(config.get("memory").map(String::as_str), Some("2048"));
    assert_ne!(config.get("cores").map(String::as_str), Some("1"));
    assert!(!w.engine().plan().await.expect("plan").has_changes());

    w.engine().destroy(true, false).await.expect("destroy");
    assert!(w.lab.proxmox.vms().is_empty());
    assert!(w.engine().plan().await.expect("plan").has_changes());
    w.engine().converge(false).await.expect("apply again");
    assert_eq!(w.lab.proxmox.vms().len(), 1);
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        2,
        "one create per apply from nothing"
    );
    assert!(w.lab.node(100).expect("node").is_bootstrapped());
    assert!(!w.engine().plan().await.expect("plan").has_changes());
}
