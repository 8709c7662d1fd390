//! What runs in a simulated cluster besides the control plane, published when a control plane's API
//! server starts (only with [`super::NodeOptions::workloads`]): Talos' CoreDNS Deployment (two
//! replicas tolerating the control-plane taint, as Talos' bootstrap manifests deploy it), and a
//! stand-in for the homelab's own apps, the `default/web` Deployment of two replicas with a
//! PodDisruptionBudget of `minAvailable: 1`. The simulator's scheduler spreads each over the Nodes,
//! so draining a Node has to wait until the evicted `web` pod's replacement is Ready elsewhere.

use serde_json::{Value, json};

use crate::kube::KubeSim;

/// The workload's namespace, name and label (`app=web`).
const WEB: (&str, &str) = ("default", "web");

fn coredns() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.4"}],
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node.cloudprovider.kubernetes.io/uninitialized", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                },
            },
        },
    })
}

fn web() -> (Value, Value) {
    let (namespace, name) = WEB;
    let labels = json!({"app": name});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.29"}],
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        },
    });
    let budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
    });
    (deployment, budget)
}

/// Creates what is missing (objects someone changed or deleted since are left as they are).
pub(super) fn publish(kube: &KubeSim) {
    let (deployment, budget) = web();
    let objects = [
        (("apps", "v1", "deployments"), "kube-system", coredns()),
        (("apps", "v1", "deployments"), WEB.0, deployment),
        (("policy", "v1", "poddisruptionbudgets"), WEB.0, budget),
    ];
    for ((group, version, plural), namespace, object) in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if kube
            .get(group, version, plural, Some(namespace), name)
            .is_some()
        {
            continue;
        }
        if let Err(e) = kube.create((group, version, plural), Some(namespace), object) {
            tracing::debug!(error = ?e, "simulated cluster cannot create its workload");
        }
    }
}
