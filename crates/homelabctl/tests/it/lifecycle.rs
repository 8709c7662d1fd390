//! Removing and replacing nodes through the real binary against the in-process lab (issue 16 §1): the HA
//! example loses its worker (drained past a PodDisruptionBudget, reset, Node and VM gone), then a control
//! plane that is already down (its etcd member removed through a healthy one; two members left, no moment
//! without quorum); a further removal is refused without `--allow-remove`, and once another control plane
//! is stopped a replacement is refused naming it and a removal leaving etcd without quorum is refused even
//! with the flag. `replace talos-cp-02` (EtcdLeaveCluster path) builds one new VM with the cluster healthy
//! throughout, also when SIGKILLed at every step boundary; `replace talos-worker-01` drains the worker
//! through the budgets and brings it back Ready; a drain a budget holds stops at `--drain-timeout` and the
//! next run finishes it; a control plane's removal SIGKILLed at every step boundary is continued by the
//! next apply; `destroy` leaves a VM homelabctl did not create
//! alone.

use std::time::Duration;

use homelab_sim::kube::KubeSim;
use homelab_sim::lab::{Lab, LabOptions};
use homelab_sim::talos::ClusterHealth;
use serde_json::{Value, json};

use crate::etcd::{example, homelabctl, ok};
use crate::upgrade::{Site, kill_at, proxmox_client, text};

/// homelab.yaml without node `name`'s block (each block ends at a blank line).
fn drop_node(site: &Site, name: &str) {
    let path = site.dir().join("homelab.yaml");
    let yaml = std::fs::read_to_string(&path).expect("homelab.yaml");
    let start = yaml
        .find(&format!("  - name: {name}\n"))
        .unwrap_or_else(|| panic!("homelab.yaml names {name}"));
    let end = start
        + yaml[start..]
            .find("\n\n")
            .expect("a blank line after the block");
    std::fs::write(path, format!("{}{}", &yaml[..start], &yaml[end + 2..])).expect("homelab.yaml");
}

fn kube(lab: &Lab) -> KubeSim {
    lab.node(111)
        .and_then(|n| n.kube())
        .expect("the cluster's API server")
}

/// A ReplicaSet `shop` of four pods with a PodDisruptionBudget of three (besides the lab's own `web`
/// Deployment and its budget): a drain evicts one pod at a time, each once its replacement is Ready
/// elsewhere.
fn budgeted_workload(kube: &KubeSim) {
    budgeted_workload_of(kube, 3);
}

/// The `shop` ReplicaSet of four pods with a budget of `min_available` of them. Its pods tolerate the
/// control-plane taint: the HA example's control planes take no workloads (no
/// allow_scheduling_on_control_planes), and without it draining its only worker would leave the budget
/// nowhere to go.
fn budgeted_workload_of(kube: &KubeSim, min_available: u32) {
    replica_set(kube, "shop", 4, true);
    budget(kube, "shop", min_available);
}

/// A ReplicaSet `app` of `replicas` pods labelled `app=APP`, tolerating the control-plane taint or not.
fn replica_set(kube: &KubeSim, app: &str, replicas: u32, tolerates_control_planes: bool) {
    let labels = json!({"app": app});
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
    if tolerates_control_planes {
        spec["tolerations"] = json!([{"key": "node-role.kubernetes.io/control-plane",
                                      "operator": "Exists", "effect": "NoSchedule"}]);
    }
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": app, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": spec}},
    });
    kube.create(("apps", "v1", "replicasets"), Some("default"), rs)
        .expect("replicaset");
}

/// The PodDisruptionBudget of `app`'s pods, made anew with `min_available`.
fn budget(kube: &KubeSim, app: &str, min_available: u32) {
    const PDB: (&str, &str, &str) = ("policy", "v1", "poddisruptionbudgets");
    let _ = kube.delete(PDB, Some("default"), app);
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": app, "namespace": "default"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
    });
    kube.create(PDB, Some("default"), pdb).expect("pdb");
}

/// The pods labelled `app=APP` as (node, ready), not counting those being deleted.
fn pods_of(kube: &KubeSim, app: &str) -> Vec<(String, bool)> {
    // A read runs the simulator's controllers first.
    let _ = kube.get("", "v1", "namespaces", None, "default");
    kube.data()
        .objects
        .into_iter()
        .filter(|o| o.plural == "pods" && o.object["metadata"]["labels"]["app"] == app)
        .filter(|o| !o.object["metadata"]["deletionTimestamp"].is_string())
        .map(|o| {
            let node = o.object["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ready = o.object["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (node, ready)
        })
        .collect()
}

/// The `count` pods of `app`, once all are scheduled and Ready.
fn ready_pods(kube: &KubeSim, app: &str, count: usize) -> Vec<(String, bool)> {
    for _ in 0..400 {
        let pods = pods_of(kube, app);
        if pods.len() == count && pods.iter().all(|(n, r)| *r && !n.is_empty()) {
            return pods;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "the {app} pods never were all Ready: {:?}",
        pods_of(kube, app)
    );
}

fn evictions(kube: &KubeSim) -> u64 {
    kube.requests()
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with("/eviction"))
        .map(|(_, n)| *n)
        .sum()
}

fn etcd_members(lab: &Lab) -> Vec<String> {
    let mut members = lab.node(111).expect("cp-01").cluster_etcd_members();
    members.sort();
    members
}

fn has_node_object(kube: &KubeSim, name: &str) -> bool {
    kube.get("", "v1", "nodes", None, name).is_some()
}

#[test]
fn the_ha_example_loses_its_worker_then_a_control_plane_and_refuses_what_would_break_quorum() {
    let site = Site::new("ha", 50, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let kube = kube(lab);
    budgeted_workload(&kube);
    let before = ready_pods(&kube, "shop", 4);
    // The lab's own `web` Deployment (two pods, a budget of one) is spread over the nodes as well.
    ready_pods(&kube, "web", 2);
    assert!(
        before.iter().any(|(n, _)| n == "talos-worker-01"),
        "some pod runs on the worker: {before:?}"
    );

    // The worker leaves homelab.yaml: the plan says what will happen and that apply needs the flag.
    drop_node(&site, "talos-worker-01");
    let plan = homelabctl(dir, &["plan", "--detailed-exitcode"], None);
    let said = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{said}");
    assert!(
        said.contains("remove.talos-worker-01")
            && said.contains("remove node talos-worker-01 (worker, not in homelab.yaml)")
            && said.contains("cordon and drain it")
            && said.contains("delete VM 121")
            && said.contains("--allow-remove"),
        "{said}"
    );
    let refused = homelabctl(dir, &["apply", "--yes"], None);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("talos-worker-01") && said.contains("--allow-remove"),
        "{said}"
    );
    assert!(
        lab.proxmox.vm(121).is_some(),
        "nothing done without the flag"
    );

    let removed = homelabctl(dir, &["apply", "--yes", "--allow-remove"], None);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(lab.proxmox.vm(121).is_none(), "the worker's VM is gone");
    assert!(
        !has_node_object(&kube, "talos-worker-01"),
        "its Node is gone"
    );
    assert!(said.contains("drained: evicted default/shop-"), "{said}");
    assert!(said.contains("remove.talos-worker-01: reset"), "{said}");
    for (app, count) in [("shop", 4), ("web", 2)] {
        let after = ready_pods(&kube, app, count);
        assert!(
            after.iter().all(|(n, _)| n != "talos-worker-01"),
            "the budgeted {app} moved: {after:?}"
        );
    }
    assert!(evictions(&kube) >= 1, "through the Eviction API");
    site.nothing_left_to_plan();

    // A control plane that is already down leaves: its etcd member is removed through a healthy one
    // (EtcdRemoveMemberByID), etcd keeps two members, and nothing lost quorum on the way.
    stop_vm(&site, 113);
    drop_node(&site, "talos-cp-03");
    let plan = ok(dir, &["plan"], None);
    assert!(
        plan.contains(
            "remove its etcd member through a healthy control plane (it does not answer)"
        ) && plan.contains("what remains (2 control planes) tolerates no further failure"),
        "{plan}"
    );
    let removed = homelabctl(dir, &["apply", "--yes", "--allow-remove"], None);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(
        said.contains("etcd member talos-cp-03 removed through talos-cp-01"),
        "{said}"
    );
    assert_eq!(etcd_members(lab), ["talos-cp-01", "talos-cp-02"]);
    assert!(lab.proxmox.vm(113).is_none(), "its VM is gone");
    assert!(!has_node_object(&kube, "talos-cp-03"));
    assert_eq!(lab.cluster_health(), ClusterHealth::default());
    site.nothing_left_to_plan();

    // Another removal is refused without the flag, naming the node.
    let path = dir.join("homelab.yaml");
    let two = std::fs::read_to_string(&path).expect("homelab.yaml");
    drop_node(&site, "talos-cp-02");
    let refused = homelabctl(dir, &["apply", "--yes"], None);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("talos-cp-02") && said.contains("--allow-remove"),
        "{said}"
    );
    assert!(lab.proxmox.vm(112).is_some_and(|v| v.running));

    // cp-01 stopped behind homelabctl's back: replacing cp-02 is refused, naming cp-01, and removing it
    // would leave etcd no member up: refused even with the flag, before anything is done (cp-01 is not
    // even started).
    std::fs::write(&path, &two).expect("homelab.yaml");
    stop_vm(&site, 111);
    let refused = homelabctl(dir, &["replace", "talos-cp-02", "--yes"], None);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("talos-cp-01 is not a healthy voting member"),
        "{said}"
    );
    drop_node(&site, "talos-cp-02");
    let plan = ok(dir, &["plan"], None);
    assert!(
        plan.contains("REFUSED: etcd would lose its quorum"),
        "{plan}"
    );
    let refused = homelabctl(dir, &["apply", "--yes", "--allow-remove"], None);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("remove.talos-cp-02") && said.contains("without quorum"),
        "{said}"
    );
    assert!(lab.proxmox.vm(112).is_some_and(|v| v.running));
    assert!(lab.proxmox.vm(111).is_some_and(|v| !v.running));
    assert_eq!(
        lab.proxmox.task_count("qmdestroy"),
        2,
        "only the two removed"
    );
}

/// Stops VM `vmid` through the PVE API, as someone outside homelabctl would.
fn stop_vm(site: &Site, vmid: u32) {
    site.runtime.block_on(async {
        let info = site.lab().info();
        site.proxmox()
            .ensure_stopped(&info.proxmox_node, vmid, &Default::default())
            .await
            .expect("stopped through the PVE API");
    });
}

#[test]
fn replacing_a_control_plane_builds_one_new_vm_and_keeps_the_cluster_healthy_throughout() {
    let site = Site::new("ha", 51, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let created = lab.proxmox.task_count("qmcreate");
    let replaced = homelabctl(dir, &["replace", "talos-cp-02", "--yes"], None);
    let said = text(&replaced);
    assert!(replaced.status.success(), "{said}");
    assert!(said.contains("talos-cp-02 replaced"), "{said}");
    assert_eq!(
        lab.proxmox.task_count("qmcreate"),
        created + 1,
        "exactly one new VM"
    );
    assert_eq!(
        lab.proxmox.task_count("qmdestroy"),
        1,
        "the old one deleted"
    );
    let vm = lab.proxmox.vm(112).expect("a VM 112 again");
    assert!(vm.running);
    assert!(
        vm.mac
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("BC:24:11:CA:FE:12")),
        "the same MAC: {:?}",
        vm.mac
    );
    assert_eq!(
        etcd_members(lab),
        ["talos-cp-01", "talos-cp-02", "talos-cp-03"]
    );
    assert_eq!(
        lab.cluster_health(),
        ClusterHealth::default(),
        "no moment without quorum or without a VIP holder"
    );
    let status = ok(dir, &["status"], None);
    assert!(status.contains("talos-cp-02"), "{status}");
    site.nothing_left_to_plan();
}

/// A budget that allows no disruption holds the drain until `--drain-timeout`: apply fails naming the
/// pods still there and their budget, the worker stays (cordoned, its VM untouched), and once the budget
/// is relaxed the next run resumes the drain and removes it.
#[test]
fn a_drain_held_by_its_budget_stops_at_the_drain_timeout_and_the_next_run_finishes_it() {
    let site = Site::new("ha", 55, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let kube = kube(lab);
    budgeted_workload_of(&kube, 4);
    let before = ready_pods(&kube, "shop", 4);
    assert!(
        before.iter().any(|(n, _)| n == "talos-worker-01"),
        "some pod runs on the worker: {before:?}"
    );
    drop_node(&site, "talos-worker-01");

    let args = ["apply", "--yes", "--allow-remove", "--drain-timeout", "2s"];
    let held = homelabctl(dir, &args, None);
    let said = text(&held);
    assert_eq!(held.status.code(), Some(1), "{said}");
    assert!(
        said.contains("draining node talos-worker-01 timed out after 2s")
            && said.contains("default/shop-")
            && said.contains("shop"),
        "{said}"
    );
    assert!(
        lab.proxmox.vm(121).is_some_and(|v| v.running),
        "VM untouched"
    );
    let node = kube.get("", "v1", "nodes", None, "talos-worker-01");
    assert_eq!(
        node.map(|n| n["spec"]["unschedulable"].clone()),
        Some(json!(true)),
        "left cordoned, as kubectl drain leaves it"
    );
    assert_eq!(pods_of(&kube, "shop").len(), 4, "no pod of the budget lost");

    let bad = homelabctl(dir, &["apply", "--yes", "--drain-timeout", "0s"], None);
    let said = text(&bad);
    assert_eq!(bad.status.code(), Some(64), "a usage error: {said}");
    assert!(said.contains("longer than 0s"), "{said}");

    budget(&kube, "shop", 3);
    let removed = homelabctl(dir, &["apply", "--yes", "--allow-remove"], None);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(lab.proxmox.vm(121).is_none(), "the worker's VM is gone");
    assert!(!has_node_object(&kube, "talos-worker-01"));
    let after = ready_pods(&kube, "shop", 4);
    assert!(
        after.iter().all(|(n, _)| n != "talos-worker-01"),
        "{after:?}"
    );
    site.nothing_left_to_plan();
}

/// The HA example's only worker leaves and its control planes are allowed to take workloads in the same
/// change: their configs change first (no reboot), Talos lifts their taint, and only then is the worker
/// drained, so pods that do not tolerate the control-plane taint find a place instead of holding the drain.
#[test]
fn without_its_last_worker_the_control_planes_take_the_workloads_before_the_drain() {
    let site = Site::new("ha", 57, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let kube = kube(lab);
    replica_set(&kube, "plain", 2, false);
    budget(&kube, "plain", 1);
    let before = ready_pods(&kube, "plain", 2);
    assert!(
        before.iter().all(|(n, _)| n == "talos-worker-01"),
        "the tainted control planes take none: {before:?}"
    );

    drop_node(&site, "talos-worker-01");
    let path = dir.join("homelab.yaml");
    let yaml = std::fs::read_to_string(&path).expect("homelab.yaml");
    let allowing = yaml.replace(
        "allow_scheduling_on_control_planes: false",
        "allow_scheduling_on_control_planes: true",
    );
    assert_ne!(yaml, allowing, "the example names the setting");
    std::fs::write(&path, allowing).expect("homelab.yaml");
    let args = ["apply", "--yes", "--allow-remove", "--drain-timeout", "30s"];
    let removed = homelabctl(dir, &args, None);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(lab.proxmox.vm(121).is_none(), "the worker's VM is gone");
    let after = ready_pods(&kube, "plain", 2);
    assert!(
        after.iter().all(|(n, _)| n.starts_with("talos-cp-")),
        "{after:?}"
    );
    let cp = kube.get("", "v1", "nodes", None, "talos-cp-01");
    assert_eq!(cp.map(|n| n["spec"]["taints"].clone()), Some(Value::Null));
    assert_eq!(lab.cluster_health(), ClusterHealth::default());
    site.nothing_left_to_plan();
}

/// A worker is replaced the way a control plane is, minus etcd: drained through the budgets (its pods
/// move to the control planes, which the lab's workloads tolerate), reset, its VM rebuilt with the same
/// MAC, and its Node registered again and Ready; etcd and the VIP never notice.
#[test]
fn replacing_the_worker_drains_it_through_the_budgets_and_brings_it_back_ready() {
    let site = Site::new("ha", 54, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let kube = kube(lab);
    budgeted_workload(&kube);
    let before = ready_pods(&kube, "shop", 4);
    assert!(
        before.iter().any(|(n, _)| n == "talos-worker-01"),
        "some pod runs on the worker: {before:?}"
    );
    let created = lab.proxmox.task_count("qmcreate");
    let evicted = evictions(&kube);
    let cp = kube.get("", "v1", "nodes", None, "talos-cp-01");
    assert_eq!(
        cp.map(|n| n["spec"]["taints"][0]["key"].clone()),
        Some(json!("node-role.kubernetes.io/control-plane")),
        "the HA example's control planes take no workloads that do not tolerate it"
    );

    let replaced = homelabctl(dir, &["replace", "talos-worker-01", "--yes"], None);
    let said = text(&replaced);
    assert!(replaced.status.success(), "{said}");
    assert!(said.contains("talos-worker-01 replaced"), "{said}");
    assert!(said.contains("drained: evicted default/shop-"), "{said}");
    assert!(
        !said.contains("etcd leave") && !said.contains("etcd remove member"),
        "a worker has no etcd member: {said}"
    );
    assert!(evictions(&kube) > evicted, "through the Eviction API");
    assert_eq!(
        lab.proxmox.task_count("qmcreate"),
        created + 1,
        "one new VM"
    );
    assert_eq!(
        lab.proxmox.task_count("qmdestroy"),
        1,
        "the old one deleted"
    );
    let vm = lab.proxmox.vm(121).expect("a VM 121 again");
    assert!(vm.running);
    assert!(
        vm.mac
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("BC:24:11:CA:FE:21")),
        "the same MAC: {:?}",
        vm.mac
    );
    assert!(
        has_node_object(&kube, "talos-worker-01"),
        "registered again"
    );
    let status = ok(dir, &["status"], None);
    assert!(
        status
            .lines()
            .any(|l| l.contains("talos-worker-01") && l.contains("Ready")),
        "{status}"
    );
    ready_pods(&kube, "shop", 4);
    assert_eq!(
        etcd_members(lab),
        ["talos-cp-01", "talos-cp-02", "talos-cp-03"]
    );
    assert_eq!(lab.cluster_health(), ClusterHealth::default());
    site.nothing_left_to_plan();
}

/// Runs `args` again and again, SIGKILLing each run at the first of `boundaries` (resource, action, event)
/// it has not passed yet, until every boundary was passed; most must have been cut at. A SIGKILL lands a
/// moment after the event is read, so a run may get past the next boundary (an etcd leave is quick).
fn cut_at_every_boundary(dir: &std::path::Path, args: &[&str], boundaries: &[(&str, &str, &str)]) {
    let is = |v: &Value, (resource, action, event): &(&str, &str, &str)| {
        v["event"] == *event && v["resource"] == *resource && v["action"] == *action
    };
    let mut next = 0;
    let mut cuts = 0;
    while next < boundaries.len() {
        let hit = kill_at(dir, args, |v| boundaries[next..].iter().any(|b| is(v, b)));
        next += boundaries[next..]
            .iter()
            .position(|b| is(&hit, b))
            .expect("a boundary")
            + 1;
        cuts += 1;
        eprintln!("killed at {hit}");
    }
    assert!(
        cuts * 2 > boundaries.len(),
        "most boundaries were cut at: {cuts} of {}",
        boundaries.len()
    );
}

/// The step boundaries of a control-plane replacement, in order: the old node retired part by part, then
/// the new VM created, started and given its config.
fn replace_boundaries() -> Vec<(&'static str, &'static str, &'static str)> {
    const R: &str = "replace.talos-cp-02";
    const VM: &str = "vm.talos-cp-02";
    vec![
        (R, "retire", "step_started"),
        (R, "etcd leave", "step_started"),
        (R, "etcd leave", "step_finished"),
        (R, "drain", "step_started"),
        (R, "delete node", "step_started"),
        (R, "reset", "step_started"),
        (R, "delete vm", "step_started"),
        (R, "retire", "step_finished"),
        (VM, "create", "step_started"),
        (VM, "create", "step_finished"),
        (VM, "start", "step_finished"),
        ("machine_config.talos-cp-02", "install", "step_started"),
    ]
}

#[test]
fn a_replacement_sigkilled_at_every_step_boundary_is_continued_and_builds_one_vm() {
    let site = Site::new("ha", 52, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let created = lab.proxmox.task_count("qmcreate");
    cut_at_every_boundary(
        dir,
        &["replace", "talos-cp-02", "--yes"],
        &replace_boundaries(),
    );
    // What is left of the replacement: the VM created anew, installed and joined.
    let finished = homelabctl(dir, &["replace", "talos-cp-02", "--yes"], None);
    assert!(finished.status.success(), "{}", text(&finished));
    assert_eq!(
        lab.proxmox.task_count("qmcreate"),
        created + 1,
        "one new VM, however often the run was cut"
    );
    assert_eq!(
        etcd_members(lab),
        ["talos-cp-01", "talos-cp-02", "talos-cp-03"]
    );
    assert_eq!(lab.cluster_health(), ClusterHealth::default());
    site.nothing_left_to_plan();
}

/// A control plane's removal SIGKILLed at each of its step boundaries (the next run cut at the first
/// boundary it has not passed yet) is continued by the next run: etcd keeps two members, never loses
/// quorum, the Node and the VM go exactly once, and nothing is left to plan.
#[test]
fn a_removal_sigkilled_at_every_step_boundary_is_continued_by_the_next_apply() {
    let site = Site::new("ha", 56, "v1.12.4");
    let dir = site.dir();
    let lab = site.lab();
    let kube = kube(lab);
    drop_node(&site, "talos-cp-03");
    const R: &str = "remove.talos-cp-03";
    let boundaries = [
        (R, "retire", "step_started"),
        (R, "etcd leave", "step_started"),
        (R, "etcd leave", "step_finished"),
        (R, "drain", "step_started"),
        (R, "drain", "step_finished"),
        (R, "delete node", "step_started"),
        (R, "reset", "step_started"),
        (R, "reset", "step_finished"),
        (R, "delete vm", "step_started"),
    ];
    let args = ["apply", "--yes", "--allow-remove"];
    cut_at_every_boundary(dir, &args, &boundaries);
    let finished = homelabctl(dir, &args, None);
    assert!(finished.status.success(), "{}", text(&finished));
    assert!(lab.proxmox.vm(113).is_none(), "its VM is gone");
    assert_eq!(lab.proxmox.task_count("qmdestroy"), 1, "deleted once");
    assert!(!has_node_object(&kube, "talos-cp-03"));
    assert_eq!(etcd_members(lab), ["talos-cp-01", "talos-cp-02"]);
    assert_eq!(
        lab.cluster_health(),
        ClusterHealth::default(),
        "no moment without quorum or without a VIP holder"
    );
    site.nothing_left_to_plan();
}

#[test]
fn destroy_leaves_a_vm_homelabctl_did_not_create_alone() {
    let (runtime, lab) = crate::start_lab(LabOptions::fast(53));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["init", "."], None);
    std::fs::write(dir.join("homelab.yaml"), example("m710q", &lab, 53)).expect("homelab.yaml");
    let secret = format!("{}\n", lab.info().token_secret);
    ok(dir, &["secrets", "set-proxmox-token"], Some(&secret));
    // Someone made VM 100 by hand, with the node's very name, without homelabctl's tag.
    let info = lab.info();
    runtime.block_on(async {
        let client = proxmox_client(&lab);
        let params = [
            ("vmid".to_string(), "100".to_string()),
            ("name".to_string(), "talos-cp-01".to_string()),
            ("memory".to_string(), "1024".to_string()),
        ];
        let upid = client
            .create_vm_raw(&info.proxmox_node, &params)
            .await
            .expect("a VM made by hand");
        client
            .wait_task(&upid, &Default::default())
            .await
            .expect("created");
    });
    let destroy = homelabctl(dir, &["destroy", "--yes"], None);
    let said = text(&destroy);
    assert_eq!(destroy.status.code(), Some(1), "{said}");
    assert!(
        said.contains("VM 100") && said.contains("not ours"),
        "{said}"
    );
    assert!(
        lab.proxmox.vm(100).is_some(),
        "the foreign VM is still there"
    );
    let _inside = runtime.enter();
    drop(lab);
}
