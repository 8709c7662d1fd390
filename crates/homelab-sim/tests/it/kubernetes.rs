//! Kubernetes versions on the simulated nodes, through the real apid client: each node validates a config
//! against the schema of the Talos release it runs (exact patch), refuses Kubernetes images outside that
//! release's range as Talos does, and restarts its static pods on a no-reboot apply that changes their
//! images (mirror pods, API server `/version`, kube-proxy DaemonSet).

use homelab_apid::{ApidClient, ApplyMode};
use homelab_sim::talos::NodeSim;
use serde_json::Value;
use tonic::Code;

use crate::fixture::{Cluster, install, ip, node, ok};
use crate::talos_ha::{at, eventually};

/// A `runtime.OOMV1Alpha1` key that Talos v1.12.11's schema has and v1.12.4's has not.
const OOM_CONFIG: &str =
    "---\napiVersion: v1alpha1\nkind: OOMConfig\nstrictCgroupClassOrdering: true\n";

/// A control-plane config installed by the `talos` installer, naming Kubernetes `k8s` for the kubelet and
/// every static pod and kube-proxy.
fn config(cluster: &Cluster, name: &str, addr: &str, talos: &str, k8s: &str) -> String {
    cluster
        .config(name, ip(addr), "")
        .replace(":v1.12.4\n", &format!(":{talos}\n"))
        .replace("kubelet:v1.35.0", &format!("kubelet:v{k8s}"))
        .replace(
            "  clusterName: homelab\n",
            &format!(
                "  clusterName: homelab\n  apiServer:\n    image: registry.k8s.io/kube-apiserver:v{k8s}\n  \
                 controllerManager:\n    image: registry.k8s.io/kube-controller-manager:v{k8s}\n  \
                 scheduler:\n    image: registry.k8s.io/kube-scheduler:v{k8s}\n  \
                 proxy:\n    image: registry.k8s.io/kube-proxy:v{k8s}\n"
            ),
        )
}

async fn installed(cluster: &Cluster, n: &NodeSim, cfg: &str) -> ApidClient {
    let at = install(n, cfg).await;
    ok(
        ApidClient::connect(at, &cluster.creds(&["os:admin"])).await,
        "connect",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_validates_with_the_schema_of_the_exact_release_it_runs() {
    for (talos, net, accepted) in [("v1.12.4", 1, false), ("v1.12.11", 2, true)] {
        let cluster = Cluster::new();
        let n = node(&at(197, net), |_| {}).await;
        let addr = at(197, 10 + net);
        let cfg = config(&cluster, "cp1", &addr, talos, "1.35.0");
        let mut c = installed(&cluster, &n, &cfg).await;
        assert_eq!(n.talos_version(), talos, "the installer's release runs");
        let with_oom = format!("{cfg}{OOM_CONFIG}");
        let applied = c
            .apply_configuration(with_oom.as_bytes(), ApplyMode::NoReboot, false)
            .await;
        match applied {
            Ok(_) => assert!(accepted, "{talos} accepted a key its schema lacks"),
            Err(e) => {
                assert!(!accepted, "{talos} refused: {e}");
                assert_eq!(e.code(), Some(Code::InvalidArgument));
                assert!(e.to_string().contains("strictCgroupClassOrdering"), "{e}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_outside_the_running_talos_range_is_refused_as_talos_words_it() {
    let cluster = Cluster::new();
    let n = node(&at(197, 3), |_| {}).await;
    let addr = at(197, 13);
    let cfg = config(&cluster, "cp1", &addr, "v1.13.9", "1.35.0");
    let mut c = installed(&cluster, &n, &cfg).await;
    let too_new = cfg.replace("v1.35.0", "v1.37.0");
    let err = c
        .apply_configuration(too_new.as_bytes(), ApplyMode::NoReboot, false)
        .await
        .expect_err("1.37 on Talos 1.13");
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    let text = err.to_string();
    assert!(
        text.contains(
            "kubelet image is not valid: version of Kubernetes 1.37.0 is too new to be used with Talos 1.13.9"
        ) && text.contains("kube-apiserver image is not valid"),
        "{text}"
    );
    ok(
        c.apply_configuration(
            cfg.replace("v1.35.0", "v1.36.2").as_bytes(),
            ApplyMode::NoReboot,
            false,
        )
        .await,
        "1.36 on Talos 1.13",
    );
}

fn pod(n: &NodeSim, name: &str) -> Option<Value> {
    n.kube()?.get(
        "",
        "v1",
        "pods",
        Some("kube-system"),
        &format!("{name}-cp1"),
    )
}

fn pod_state(n: &NodeSim, name: &str) -> Option<(String, bool)> {
    let p = pod(n, name)?;
    let image = p["spec"]["containers"][0]["image"].as_str()?.to_owned();
    let ready = p["status"]["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    Some((image, ready))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pods_restart_on_their_new_images_after_a_no_reboot_apply() {
    let cluster = Cluster::new();
    let n = node(&at(197, 4), |o| {
        o.static_pod_restart = std::time::Duration::from_millis(300);
    })
    .await;
    let addr = at(197, 14);
    let cfg = config(&cluster, "cp1", &addr, "v1.13.9", "1.35.0");
    let mut c = installed(&cluster, &n, &cfg).await;
    ok(c.bootstrap().await, "bootstrap");
    eventually("the static pods run", || {
        pod_state(&n, "kube-scheduler").is_some_and(|(_, ready)| ready)
    })
    .await;
    assert_eq!(
        pod_state(&n, "kube-apiserver"),
        Some(("registry.k8s.io/kube-apiserver:v1.35.0".into(), true))
    );

    // Only the API server's image changes: only its pod restarts.
    let api_only = cfg.replace("kube-apiserver:v1.35.0", "kube-apiserver:v1.36.2");
    ok(
        c.apply_configuration(api_only.as_bytes(), ApplyMode::NoReboot, false)
            .await,
        "apply",
    );
    assert_eq!(
        pod_state(&n, "kube-apiserver"),
        Some(("registry.k8s.io/kube-apiserver:v1.36.2".into(), false)),
        "restarting on the new image"
    );
    assert_eq!(
        n.kube().map(|k| k.version()),
        Some("v1.35.0".into()),
        "the old API server answers until the new one runs"
    );
    eventually("the new API server runs", || {
        pod_state(&n, "kube-apiserver").is_some_and(|(_, ready)| ready)
    })
    .await;
    assert_eq!(n.kube().map(|k| k.version()), Some("v1.36.2".into()));
    assert_eq!(n.static_pod_restarts(), 1);
    assert_eq!(
        pod_state(&n, "kube-controller-manager").map(|(i, _)| i),
        Some("registry.k8s.io/kube-controller-manager:v1.35.0".into())
    );

    // kube-proxy follows `cluster.proxy.image`.
    let proxy = api_only.replace("kube-proxy:v1.35.0", "kube-proxy:v1.36.2");
    ok(
        c.apply_configuration(proxy.as_bytes(), ApplyMode::NoReboot, false)
            .await,
        "apply",
    );
    let ds = n.kube().and_then(|k| {
        k.get(
            "apps",
            "v1",
            "daemonsets",
            Some("kube-system"),
            "kube-proxy",
        )
    });
    assert_eq!(
        ds.as_ref()
            .and_then(|d| d.pointer("/spec/template/spec/containers/0/image")),
        Some(&Value::from("registry.k8s.io/kube-proxy:v1.36.2"))
    );
    assert_eq!(n.static_pod_restarts(), 1, "kube-proxy is no static pod");
    assert_eq!(n.cluster_max_static_pod_restarts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_workloads_runs_coredns_and_a_web_deployment_under_a_disruption_budget() {
    let cluster = Cluster::new();
    let n = cluster.node(&at(198, 1), |o| o.workloads = true).await;
    let cfg = cluster.config("cp1", ip(&at(198, 11)), "");
    let mut c = installed(&cluster, &n, &cfg).await;
    ok(c.bootstrap().await, "bootstrap");
    let get = |group: &str, plural: &str, ns: &str, name: &str| {
        n.kube()
            .and_then(|k| k.get(group, "v1", plural, Some(ns), name))
    };
    let available = |ns: &str, name: &str| {
        get("apps", "deployments", ns, name).and_then(|d| d["status"]["availableReplicas"].as_i64())
    };
    eventually("web and coredns available", || {
        available("default", "web") == Some(2) && available("kube-system", "coredns") == Some(2)
    })
    .await;
    eventually("the budget allows one disruption", || {
        get("policy", "poddisruptionbudgets", "default", "web")
            .is_some_and(|p| p["status"]["disruptionsAllowed"] == 1)
    })
    .await;
    let Some(kube) = n.kube() else {
        panic!("no API")
    };
    let data = kube.data();
    let web: Vec<&str> = data
        .objects
        .iter()
        .filter(|o| o.plural == "pods" && o.namespace == "default")
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(web.len(), 2, "{web:?}");
    // Named as a Deployment's pods are: NAME-TEMPLATEHASH-SUFFIX.
    assert!(
        web.iter()
            .all(|p| p.starts_with("web-") && p.split('-').count() == 3),
        "{web:?}"
    );
}
