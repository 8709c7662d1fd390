//! Cordon, drain and Node deletion against the simulator's controllers: a PodDisruptionBudget
//! refusing an eviction until a replacement is Ready elsewhere, a drain timing out with the pod and
//! budget named, DaemonSet and mirror pods left alone, unmanaged pods refused, a deleted Node's pods.

use std::time::Duration;

use homelab_kube::{DrainOptions, KubeClient, KubeError};
use homelab_sim::kube::{KubeNode, KubeSim};
use serde_json::{Value, json};

use crate::cluster::{env, ok};

fn node(name: &str, last: u8) -> KubeNode {
    KubeNode {
        name: name.into(),
        internal_ip: std::net::IpAddr::from([127, 0, 21, last]),
        ready: true,
        control_plane: false,
        no_schedule_taint: false,
        kubelet_version: "v1.35.0".into(),
        os_image: "Talos (v1.12.4)".into(),
    }
}

const FAST: DrainOptions = DrainOptions {
    timeout: Duration::from_secs(20),
    poll: Duration::from_millis(50),
};

/// A ReplicaSet of `replicas` pods labelled `app=NAME`, with a PDB of `min_available`.
fn workload(sim: &KubeSim, name: &str, replicas: i64, min_available: Option<i64>) {
    let labels = json!({"app": name});
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}],
                                       "volumes": [{"name": "scratch", "emptyDir": {}}]}}},
    });
    ok(
        sim.create(("apps", "v1", "replicasets"), Some("default"), rs),
        "replicaset",
    );
    if let Some(min) = min_available {
        let pdb = json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"minAvailable": min, "selector": {"matchLabels": labels}},
        });
        ok(
            sim.create(
                ("policy", "v1", "poddisruptionbudgets"),
                Some("default"),
                pdb,
            ),
            "pdb",
        );
    }
}

/// The pods of `app=NAME`, as (name, node, ready), once every one of them is Ready.
async fn ready_pods(client: &KubeClient, app: &str, count: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let pods = ok(client.pods("default", &format!("app={app}")).await, "pods");
        if pods.len() == count && pods.iter().all(|p| p.ready) {
            return pods.into_iter().map(|p| (p.name, p.node_name)).collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{count} pods of {app} never became Ready");
}

fn evictions(sim: &KubeSim) -> u64 {
    sim.requests()
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with("/eviction"))
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test]
async fn a_budget_refuses_the_second_eviction_until_the_first_replacement_is_ready() {
    let env = env().await;
    let client = env.client();
    env.sim.upsert_node(node("w1", 1));
    workload(&env.sim, "web", 2, Some(1));
    let before = ready_pods(&client, "web", 2).await;
    assert!(before.iter().all(|(_, n)| n == "w1"), "{before:?}");
    env.sim.upsert_node(node("w2", 2));
    let report = ok(client.drain("w1", &FAST).await, "drain");
    let mut evicted = report.evicted.clone();
    evicted.sort();
    let mut expected: Vec<String> = before.iter().map(|(p, _)| format!("default/{p}")).collect();
    expected.sort();
    assert_eq!(evicted, expected);
    // One eviction went through at once; the other was refused (429) at least once and retried.
    assert!(
        evictions(&env.sim) >= 3,
        "{:?}",
        env.sim.requests().snapshot()
    );
    let after = ready_pods(&client, "web", 2).await;
    assert!(after.iter().all(|(_, n)| n == "w2"), "{after:?}");
    let w1 = env
        .sim
        .get("", "v1", "nodes", None, "w1")
        .unwrap_or_default();
    assert_eq!(w1["spec"]["unschedulable"], json!(true));
}

#[tokio::test]
async fn a_drain_that_cannot_finish_names_the_pod_and_its_budget() {
    let env = env().await;
    let client = env.client();
    env.sim.upsert_node(node("w1", 1));
    workload(&env.sim, "db", 1, Some(1));
    let pods = ready_pods(&client, "db", 1).await;
    let short = DrainOptions {
        timeout: Duration::from_millis(600),
        poll: Duration::from_millis(50),
    };
    let err = client
        .drain("w1", &short)
        .await
        .expect_err("the budget allows nothing");
    let KubeError::DrainTimeout {
        node, pods: stuck, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(node, "w1");
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].pod, format!("default/{}", pods[0].0));
    assert_eq!(stuck[0].budget.as_deref(), Some("default/db"));
    let text = err.to_string();
    assert!(text.contains(&format!("default/{}", pods[0].0)), "{text}");
    assert!(
        text.contains("The disruption budget db needs 1 healthy pods and has 1 currently"),
        "{text}"
    );
    // The pod is still there, untouched.
    assert_eq!(ready_pods(&client, "db", 1).await, pods);
}

#[tokio::test]
async fn daemonset_and_mirror_pods_are_skipped_and_unmanaged_pods_refused() {
    let env = env().await;
    let client = env.client();
    env.sim.upsert_node(node("w1", 1));
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "agent"}]}}},
    });
    ok(
        env.sim
            .create(("apps", "v1", "daemonsets"), Some("kube-system"), ds),
        "ds",
    );
    let mirror = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "static-w1", "namespace": "kube-system",
                     "annotations": {"kubernetes.io/config.mirror": "abc"}},
        "spec": {"nodeName": "w1", "containers": [{"name": "s", "image": "s"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    });
    ok(
        env.sim.put(("", "v1", "pods"), Some("kube-system"), mirror),
        "mirror",
    );
    workload(&env.sim, "web", 1, None);
    let web = ready_pods(&client, "web", 1).await;
    let report = ok(client.drain("w1", &FAST).await, "drain");
    assert_eq!(report.evicted, vec![format!("default/{}", web[0].0)]);
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .any(|p| p.starts_with("kube-system/agent-"))
    );
    assert!(report.skipped.contains(&"kube-system/static-w1".to_owned()));

    // A bare pod would not come back anywhere: nothing is evicted, the error names it.
    let bare = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "default"},
        "spec": {"nodeName": "w1", "containers": [{"name": "b", "image": "b"}]},
        "status": {"phase": "Running"},
    });
    ok(
        env.sim.put(("", "v1", "pods"), Some("default"), bare),
        "bare pod",
    );
    let err = client.drain("w1", &FAST).await.expect_err("bare pod");
    assert!(
        matches!(&err, KubeError::DrainRefused { pods, .. } if pods == &["default/bare".to_owned()]),
        "{err}"
    );
    assert!(err.to_string().contains("declare no controller"), "{err}");
}

#[tokio::test]
async fn cordon_is_idempotent_and_survives_the_kubelet_heartbeat() {
    let env = env().await;
    let client = env.client();
    env.sim.upsert_node(node("w1", 1));
    assert!(ok(client.cordon("w1").await, "cordon"));
    assert!(!ok(client.cordon("w1").await, "cordon again"));
    env.sim.upsert_node(node("w1", 1));
    let w1: Value = env
        .sim
        .get("", "v1", "nodes", None, "w1")
        .unwrap_or_default();
    assert_eq!(w1["spec"]["unschedulable"], json!(true));
    assert!(!ok(client.cordon("gone").await, "cordon a missing node"));
}

#[tokio::test]
async fn a_deleted_node_takes_its_pods_and_the_kubelet_does_not_bring_it_back() {
    let env = env().await;
    let client = env.client();
    env.sim.upsert_node(node("w1", 1));
    env.sim.upsert_node(node("w2", 2));
    workload(&env.sim, "web", 2, Some(1));
    let before = ready_pods(&client, "web", 2).await;
    let mut on: Vec<&str> = before.iter().map(|(_, n)| n.as_str()).collect();
    on.sort_unstable();
    assert_eq!(on, ["w1", "w2"], "spread over both nodes");
    assert!(ok(client.delete_node("w1").await, "delete"));
    assert!(!ok(client.delete_node("w1").await, "delete again"));
    // The kubelet keeps running but only updates status: the Node stays gone.
    let mut heartbeat = node("w1", 1);
    heartbeat.ready = false;
    assert!(!env.sim.update_node_status(heartbeat));
    let names: Vec<String> = ok(client.nodes().await, "nodes")
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["w2"]);
    let after = ready_pods(&client, "web", 2).await;
    assert!(after.iter().all(|(_, n)| n == "w2"), "{after:?}");
}
