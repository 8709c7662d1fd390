//! A small HA cluster (three control planes behind a VIP, one worker) against the simulators over
//! loopback sockets: it converges with one bootstrap, every control plane in etcd and every node
//! Ready through the VIP; the VIP survives its holder going down; an interrupted apply resumes.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use homelab_engine::events::{Event, EventSink};
use homelab_engine::plan::Action;
use homelab_engine::ports::{Hypervisor, KubeApi};
use homelab_kube::KubeClient;
use homelab_sim::lab::{Lab, LabOptions};
use tokio::sync::Notify;

use super::lab::World;

pub(super) const CONTROL_PLANES: [(&str, u32); 3] =
    [("ha-cp-1", 301), ("ha-cp-2", 302), ("ha-cp-3", 303)];
pub(super) const WORKER: (&str, u32) = ("ha-worker-1", 311);

/// The second address octet of this test process: the same test run at the same time by another
/// worktree's gate (another process) lands on other loopback addresses, 127.<octet>.<subnet>.0/24.
pub(super) fn octet() -> u8 {
    (std::process::id() % 250) as u8 + 1
}

/// `127.<octet>.<subnet>`: the /24 of a test's lab.
pub(super) fn net(subnet: u8) -> String {
    format!("127.{}.{subnet}", octet())
}

/// A world on this process's /24 for `subnet` (DHCP leases from .200).
pub(super) async fn ha_world(subnet: u8, yaml: fn(&Lab, u8) -> String) -> World {
    let mut options = LabOptions::fast(subnet);
    options.dhcp_first = Ipv4Addr::new(127, octet(), subnet, 200);
    World::start_lab(subnet, options, yaml).await
}

/// homelab.yaml for the HA cluster on 127.<octet>.`subnet`.0/24: control planes at .11–.13, the
/// worker at .21, the VIP (and so the endpoint) at .10.
pub(super) fn ha_yaml(lab: &Lab, subnet: u8) -> String {
    cluster_yaml(lab, subnet, true)
}

/// The first control plane alone, endpoint on its own address: where an HA cluster grows from.
fn single_yaml(lab: &Lab, subnet: u8) -> String {
    cluster_yaml(lab, subnet, false)
}

fn cluster_yaml(lab: &Lab, subnet: u8, ha: bool) -> String {
    let info = lab.info();
    let vip = if ha {
        format!("  vip: {}.10\n", net(subnet))
    } else {
        String::new()
    };
    let mut yaml = format!(
        "proxmox:\n  endpoint: {}\n  node: {}\n  token_id: \"{}\"\n  tls:\n    fingerprint: \"{}\"\n\
         image:\n  factory: {}\ncluster:\n  name: ha\n{vip}nodes:\n",
        info.proxmox_endpoint, info.proxmox_node, info.token_id, info.fingerprint, info.factory_url
    );
    let nodes = CONTROL_PLANES
        .iter()
        .map(|(n, id)| (*n, *id, "controlplane"))
        .chain([(WORKER.0, WORKER.1, "worker")])
        .take(if ha { 4 } else { 1 });
    for (i, (name, vm_id, role)) in nodes.enumerate() {
        let host = if role == "worker" { 21 } else { 11 + i };
        yaml.push_str(&format!(
            "  - name: {name}\n    role: {role}\n    vm_id: {vm_id}\n    network:\n      mac: \"BC:24:11:{subnet:02X}:00:{i:02X}\"\n      address: {net}.{host}/24\n      gateway: {net}.1\n",
            net = net(subnet)
        ));
    }
    yaml
}

pub(super) fn all_vm_ids() -> Vec<u32> {
    CONTROL_PLANES
        .iter()
        .map(|(_, id)| *id)
        .chain([WORKER.1])
        .collect()
}

pub(super) fn events_text(w: &World) -> String {
    format!("{:#?}", w.events.lock().expect("lock"))
}

async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts etcd has exactly the three control planes, bootstrapped once, on the first.
fn assert_one_etcd_of_three(w: &World) {
    let nodes: Vec<_> = all_vm_ids()
        .into_iter()
        .map(|id| w.lab.node(id).unwrap_or_else(|| panic!("node {id} booted")))
        .collect();
    assert_eq!(nodes[0].cluster_etcd_bootstraps(), 1, "one bootstrap");
    assert!(nodes[0].is_bootstrapped(), "bootstrapped on the first");
    assert!(
        nodes[1..].iter().all(|n| !n.is_bootstrapped()),
        "joining control planes are never bootstrapped"
    );
    let mut members = nodes[0].cluster_etcd_members();
    members.sort();
    assert_eq!(members, ["ha-cp-1", "ha-cp-2", "ha-cp-3"]);
    assert!(nodes[..3].iter().all(|n| n.is_etcd_member()));
    assert!(!nodes[3].is_etcd_member(), "the worker runs no etcd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_control_planes_with_a_vip_and_a_worker_converge_and_survive_the_vip_holder_going_down()
 {
    let w = ha_world(183, ha_yaml).await;
    let plan = w.engine().plan().await.expect("plan");
    let creates = plan
        .changes
        .iter()
        .filter(|c| c.address.starts_with("vm.") && c.action == Action::Create)
        .count();
    assert_eq!(creates, 4, "{plan:?}");

    let done = w
        .engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{}", events_text(&w)));
    assert_eq!(w.lab.proxmox.vms().len(), 4);
    assert_eq!(w.lab.proxmox.task_count("qmcreate"), 4);
    assert_one_etcd_of_three(&w);
    let kubeconfig = String::from_utf8(done.kubeconfig.to_vec()).expect("utf8 kubeconfig");
    assert!(
        kubeconfig.contains(&format!("server: https://{}.10:6443", net(183))),
        "the kubeconfig names the VIP endpoint"
    );

    // The Kubernetes API, reached through the VIP, lists all four nodes Ready with their roles.
    let client = KubeClient::from_kubeconfig_yaml(&kubeconfig).expect("kubeconfig");
    let mut nodes = client.nodes().await.expect("list nodes through the VIP");
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let seen: Vec<(&str, bool)> = nodes.iter().map(|n| (n.name.as_str(), n.ready)).collect();
    assert_eq!(
        seen,
        [
            ("ha-cp-1", true),
            ("ha-cp-2", true),
            ("ha-cp-3", true),
            ("ha-worker-1", true)
        ]
    );
    let kube = w.lab.node(301).and_then(|n| n.kube()).expect("API on cp-1");
    let is_control_plane = |name: &str| {
        kube.get("", "v1", "nodes", None, name).is_some_and(|n| {
            n["metadata"]["labels"]
                .get("node-role.kubernetes.io/control-plane")
                .is_some()
        })
    };
    assert!(CONTROL_PLANES.iter().all(|(n, _)| is_control_plane(n)));
    assert!(!is_control_plane(WORKER.0));

    // Status has a row per node and component, all healthy.
    let rows = w.engine().status().await;
    let expected = [
        ("vm", 4),
        ("talos", 4),
        ("services", 4),
        ("etcd", 3),
        ("kubernetes", 5),
    ];
    for (component, count) in expected {
        let of: Vec<_> = rows.iter().filter(|r| r.component == component).collect();
        assert_eq!(of.len(), count, "{component} rows: {rows:?}");
        assert!(of.iter().all(|r| r.healthy), "{rows:?}");
    }

    let again = w.engine().plan().await.expect("second plan");
    assert!(!again.has_changes(), "{again:?}");
    w.events.lock().expect("lock").clear();
    w.engine().converge(false).await.expect("second apply");
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        4,
        "nothing created again"
    );
    let acted = w
        .events
        .lock()
        .expect("lock")
        .iter()
        .any(|e| matches!(e, Event::StepStarted { resource, .. } if resource != "kubernetes"));
    assert!(
        !acted,
        "a second apply acts on nothing (it only checks Kubernetes): {}",
        events_text(&w)
    );
    assert_eq!(
        w.lab.node(301).map(|n| n.cluster_etcd_bootstraps()),
        Some(1)
    );

    // The VIP moves when the control plane holding it goes down; the API answers there again.
    let holder = CONTROL_PLANES
        .iter()
        .find(|(_, id)| w.lab.node(*id).is_some_and(|n| n.holds_vip()))
        .map(|(_, id)| *id)
        .expect("a control plane holds the VIP");
    w.proxmox
        .stop_vm(&w.config.proxmox.node, holder)
        .await
        .expect("stop the VIP holder");
    eventually("the VIP to move", Duration::from_secs(20), async || {
        CONTROL_PLANES
            .iter()
            .any(|(_, id)| *id != holder && w.lab.node(*id).is_some_and(|n| n.holds_vip()))
    })
    .await;
    eventually(
        "the API at the VIP after failover",
        Duration::from_secs(20),
        async || {
            w.kube
                .api_ready(kubeconfig.as_bytes())
                .await
                .unwrap_or(false)
        },
    )
    .await;

    // The plan wants the stopped control plane running again; apply brings it back into etcd (no
    // second bootstrap) and every node is Ready again.
    let name = CONTROL_PLANES
        .iter()
        .find(|(_, id)| *id == holder)
        .map(|(n, _)| *n)
        .expect("holder name");
    let plan = w.engine().plan().await.expect("plan after failover");
    let vm = plan
        .changes
        .iter()
        .find(|c| c.address == format!("vm.{name}"))
        .expect("the stopped VM is planned");
    assert_eq!(vm.action, Action::Update, "{vm:?}");
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("apply after failover: {e}\n{}", events_text(&w)));
    assert_one_etcd_of_three(&w);
    eventually(
        "every node Ready again",
        Duration::from_secs(20),
        async || {
            client
                .nodes()
                .await
                .is_ok_and(|n| n.len() == 4 && n.iter().all(|n| n.ready))
        },
    )
    .await;
    assert!(!w.engine().plan().await.expect("plan").has_changes());

    w.engine().destroy(true, true).await.expect("destroy");
    assert!(w.lab.proxmox.vms().is_empty());
}

/// Which step event cuts a run off.
type Cut = fn(&Event) -> bool;

/// Runs converge on a fresh HA lab and cuts it off (drops the future, as a SIGKILL would stop the
/// process) at the first step event `cut` accepts.
async fn converge_cut_off(subnet: u8, cut: Cut) -> World {
    let w = ha_world(subnet, ha_yaml).await;
    let kill = Arc::new(Notify::new());
    let trigger = kill.clone();
    let mut engine = w.engine();
    engine.events = EventSink::new(move |e| {
        if cut(e) {
            trigger.notify_one();
        }
    });
    tokio::select! {
        r = engine.converge(false) => panic!("the run was not cut off: {:?}", r.err()),
        () = kill.notified() => {}
    }
    drop(engine);
    tokio::time::sleep(Duration::from_millis(100)).await;
    w
}

/// The next run converges: four VMs ever created, one etcd of three, nothing left to change.
async fn assert_resumes(w: &World, at: &str) {
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("resume after a cut {at}: {e}\n{}", events_text(w)));
    assert_eq!(w.lab.proxmox.vms().len(), 4, "{at}");
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        4,
        "{at}: never a second VM"
    );
    assert_one_etcd_of_three(w);
    let plan = w.engine().plan().await.expect("plan");
    assert!(!plan.has_changes(), "{at}: {plan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_apply_cut_off_after_the_first_config_was_applied_converges_on_the_next_run() {
    let w = converge_cut_off(184, |e| {
        matches!(e, Event::StepFinished { resource, .. } if resource == "machine_config.ha-cp-1")
    })
    .await;
    assert!(
        w.lab.node(301).and_then(|n| n.applied_config()).is_some(),
        "cut off after cp-1 took its config"
    );
    assert_resumes(&w, "after cp-1's config").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_apply_cut_off_around_the_bootstrap_converges_with_one_bootstrap() {
    let cuts: [(u8, &str, Cut); 3] = [
        (
            185,
            "as the bootstrap starts",
            |e| matches!(e, Event::StepStarted { resource, .. } if resource == "bootstrap"),
        ),
        (
            186,
            "after the bootstrap",
            |e| matches!(e, Event::StepFinished { resource, .. } if resource == "bootstrap"),
        ),
        (
            187,
            "before waiting for Kubernetes",
            |e| matches!(e, Event::StepStarted { resource, .. } if resource == "kubernetes"),
        ),
    ];
    for (subnet, at, cut) in cuts {
        let w = converge_cut_off(subnet, cut).await;
        assert!(
            w.lab.node(301).map_or(0, |n| n.cluster_etcd_bootstraps()) <= 1,
            "{at}"
        );
        assert_resumes(&w, at).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_control_plane_grows_into_an_ha_cluster_without_a_second_bootstrap() {
    let w = ha_world(191, single_yaml).await;
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("single node: {e}\n{}", events_text(&w)));
    let grown = homelab_config::parse(&ha_yaml(&w.lab, 191), None)
        .expect("valid HA config")
        .config;
    let mut engine = w.engine();
    engine.config = &grown;
    let plan = engine.plan().await.expect("plan");
    let action = |address: &str| {
        plan.changes
            .iter()
            .find(|c| c.address == address)
            .map(|c| c.action)
    };
    assert_eq!(
        action("machine_config.ha-cp-1"),
        Some(Action::Update),
        "the endpoint moves to the VIP"
    );
    assert_eq!(action("vm.ha-cp-2"), Some(Action::Create));
    assert_eq!(action("bootstrap"), Some(Action::NoChange));
    assert_eq!(action("etcd"), Some(Action::Create));
    let done = engine
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("grow: {e}\n{}", events_text(&w)));
    assert_one_etcd_of_three(&w);
    let kubeconfig = String::from_utf8(done.kubeconfig.to_vec()).expect("utf8 kubeconfig");
    assert!(kubeconfig.contains(&format!("server: https://{}.10:6443", net(191))));
    let nodes = KubeClient::from_kubeconfig_yaml(&kubeconfig)
        .expect("kubeconfig")
        .nodes()
        .await
        .expect("nodes through the VIP");
    assert_eq!(nodes.iter().filter(|n| n.ready).count(), 4, "{nodes:?}");
    assert!(!engine.plan().await.expect("plan").has_changes());
}
