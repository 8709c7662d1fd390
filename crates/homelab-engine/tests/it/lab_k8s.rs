//! The Kubernetes upgrade against the simulators over loopback, through the real clients: the HA example
//! (three control planes behind a VIP and a worker) on Talos v1.13.9 goes from Kubernetes 1.35.0 to
//! 1.36.2 one control plane at a time; killed at every step boundary it finishes without patching a node
//! twice; a skipped minor is refused before anything is touched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use homelab_config::Role;
use homelab_engine::desired::{ImageWanted, installed_address};
use homelab_engine::events::{Event, EventSink};
use homelab_engine::kubernetes_upgrade::{
    Component, KubernetesUpgrade, KubernetesUpgradeError, StagedRenderer, StagedVersions,
    TalosStagedRenderer, UpgradeNode, UpgradeReport, UpgradeTimeouts, oldest_running,
    upgrade_kubernetes,
};
use homelab_engine::ports::{ImageFactory, KubeApi};
use homelab_engine::versions::{Version, VersionRefusal};
use homelab_sim::lab::Lab;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::lab::World;
use super::lab_ha::{CONTROL_PLANES, WORKER, all_vm_ids, events_text, ha_world, ha_yaml};

const APPLY: &str = "apid /machine.MachineService/ApplyConfiguration";

fn v(s: &str) -> Version {
    s.parse().expect("version")
}

/// The HA example on Talos v1.13.9 running Kubernetes 1.35.0.
fn ha_on_1_13(lab: &Lab, subnet: u8) -> String {
    ha_yaml(lab, subnet).replace(
        "cluster:\n  name: ha\n",
        "  talos_version: v1.13.9\ncluster:\n  name: ha\n  kubernetes_version: 1.35.0\n",
    )
}

/// ApplyConfiguration calls each node has served so far, by VM id.
fn applies(w: &World) -> BTreeMap<u32, u64> {
    all_vm_ids()
        .into_iter()
        .map(|id| {
            let n = w.lab.node(id).unwrap_or_else(|| panic!("node {id}"));
            (id, n.requests().get(APPLY))
        })
        .collect()
}

struct Upgrade {
    nodes: Vec<UpgradeNode>,
    kubeconfig: Vec<u8>,
    installer_image: String,
}

/// Converges the HA cluster and gathers what the upgrade needs.
async fn converged(w: &World) -> Upgrade {
    let done = w
        .engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{}", events_text(w)));
    let schematic = w
        .factory
        .schematic(&ImageWanted::from_config(&w.config).extensions)
        .await
        .expect("schematic");
    Upgrade {
        nodes: w
            .config
            .nodes
            .iter()
            .map(|n| UpgradeNode {
                name: n.name.clone(),
                control_plane: n.role == Role::Controlplane,
                apid: installed_address(n),
            })
            .collect(),
        kubeconfig: done.kubeconfig.to_vec(),
        installer_image: w.factory.installer_image(&schematic),
    }
}

fn timeouts() -> UpgradeTimeouts {
    UpgradeTimeouts {
        static_pod: Duration::from_secs(30),
        kubelet: Duration::from_secs(30),
        poll: Duration::from_millis(100),
    }
}

/// The staged renderer, refusing to render once `killed` is set: a run cut at a step boundary never
/// patches the next node (whether or not the cancellation reached it before its next patch).
struct Gated<'a> {
    inner: TalosStagedRenderer<'a>,
    killed: Arc<AtomicBool>,
}

impl StagedRenderer for Gated<'_> {
    fn render_staged(
        &self,
        node: &str,
        versions: &StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        if self.killed.load(Ordering::SeqCst) {
            return Err("killed at the step boundary".into());
        }
        self.inner.render_staged(node, versions)
    }
}

async fn run(
    w: &World,
    u: &Upgrade,
    to: &str,
    events: &EventSink,
) -> Result<UpgradeReport, KubernetesUpgradeError> {
    run_gated(w, u, to, events, Arc::default()).await
}

async fn run_gated(
    w: &World,
    u: &Upgrade,
    to: &str,
    events: &EventSink,
    killed: Arc<AtomicBool>,
) -> Result<UpgradeReport, KubernetesUpgradeError> {
    let renderer = Gated {
        inner: TalosStagedRenderer {
            renderer: &w.renderer,
            config: &w.config,
            installer_image: u.installer_image.clone(),
        },
        killed,
    };
    let upgrade = KubernetesUpgrade {
        nodes: &u.nodes,
        kubeconfig: &u.kubeconfig,
        from: v("1.35.0"),
        to: v(to),
        timeouts: timeouts(),
    };
    upgrade_kubernetes(&w.talos, &w.kube, &renderer, &upgrade, events).await
}

/// Every Node reports kubelet v1.36.2, every control plane's API server answers v1.36.2, its static
/// pods run 1.36.2 images, and kube-proxy too.
async fn assert_on_1_36(w: &World, u: &Upgrade) {
    let nodes = w.kube.nodes(&u.kubeconfig).await.expect("nodes");
    let mut seen: Vec<(String, String, bool)> = nodes
        .into_iter()
        .map(|n| (n.name, n.kubelet_version, n.ready))
        .collect();
    seen.sort();
    let want: Vec<(String, String, bool)> = CONTROL_PLANES
        .iter()
        .map(|(n, _)| *n)
        .chain([WORKER.0])
        .map(|n| (n.to_owned(), "v1.36.2".to_owned(), true))
        .collect();
    assert_eq!(seen, want);
    for (name, id) in CONTROL_PLANES {
        let n = w.lab.node(id).expect("control plane");
        assert_eq!(
            n.kube().map(|k| k.version()),
            Some("v1.36.2".into()),
            "{name}'s API server"
        );
        let images = n.static_pod_images();
        assert_eq!(images.len(), 3, "{images:?}");
        assert!(
            images.iter().all(|(_, i)| i.ends_with(":v1.36.2")),
            "{images:?}"
        );
    }
    assert_eq!(
        w.kube.server_version(&u.kubeconfig).await.expect("version"),
        "v1.36.2"
    );
    assert_eq!(
        w.kube
            .daemonset_image(&u.kubeconfig, "kube-system", "kube-proxy")
            .await
            .expect("kube-proxy"),
        Some("registry.k8s.io/kube-proxy:v1.36.2".into())
    );
}

/// What a whole upgrade patches: each control plane three static pods, kube-proxy and the kubelet, the
/// worker its kubelet.
fn one_upgrade_of_applies() -> BTreeMap<u32, u64> {
    all_vm_ids()
        .into_iter()
        .map(|id| (id, if id == WORKER.1 { 1 } else { 5 }))
        .collect()
}

fn difference(after: &BTreeMap<u32, u64>, before: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
    after
        .iter()
        .map(|(id, n)| (*id, n - before.get(id).copied().unwrap_or(0)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_1_35_to_1_36_rolls_one_control_plane_at_a_time_and_1_37_is_refused() {
    let w = ha_world(198, ha_on_1_13).await;
    let u = converged(&w).await;
    assert_eq!(
        w.lab.node(CONTROL_PLANES[0].1).map(|n| n.talos_version()),
        Some("v1.13.9".into())
    );
    let before = applies(&w);
    assert_eq!(
        oldest_running(&w.kube, &u.kubeconfig)
            .await
            .expect("observe"),
        Some(v("1.35.0"))
    );

    // A skipped minor is refused before anything is touched, naming the minor to go through.
    let skip = run(&w, &u, "1.37.0", &EventSink::discard())
        .await
        .expect_err("1.35 → 1.37");
    assert!(
        matches!(&skip, KubernetesUpgradeError::Refused(VersionRefusal::KubernetesSkip { via, .. }) if via == "1.36"),
        "{skip}"
    );
    assert!(skip.to_string().contains("go through 1.36 first"), "{skip}");
    assert_eq!(applies(&w), before, "nothing was applied");

    let sink = w.events.clone();
    let events = EventSink::new(move |e| sink.lock().expect("lock").push(e.clone()));
    let report = run(&w, &u, "1.36.2", &events)
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}\n{}", events_text(&w)));
    assert_on_1_36(&w, &u).await;
    assert_eq!(
        oldest_running(&w.kube, &u.kubeconfig)
            .await
            .expect("observe"),
        Some(v("1.36.2"))
    );
    assert!(report.already.is_empty(), "{report:?}");
    assert_eq!(report.patched.len(), 3 * 3 + 3 + 4, "{report:?}");
    assert_eq!(difference(&applies(&w), &before), one_upgrade_of_applies());

    // Order: each static pod on every control plane in turn, then kube-proxy, then the kubelets.
    let order: Vec<(String, Component)> = report.patched.clone();
    let cp = |i: usize| CONTROL_PLANES[i].0.to_owned();
    let mut want = Vec::new();
    for c in Component::STATIC_PODS {
        want.extend((0..3).map(|i| (cp(i), c)));
    }
    want.extend((0..3).map(|i| (cp(i), Component::Proxy)));
    want.extend((0..3).map(|i| (cp(i), Component::Kubelet)));
    want.push((WORKER.0.to_owned(), Component::Kubelet));
    assert_eq!(order, want);

    // Never two control planes restarting static pods at once; each restarted exactly its three.
    let first = w.lab.node(CONTROL_PLANES[0].1).expect("cp-1");
    assert_eq!(first.cluster_max_static_pod_restarts(), 1);
    for (name, id) in CONTROL_PLANES {
        let n = w.lab.node(id).expect("control plane");
        assert_eq!(n.static_pod_restarts(), 3, "{name}");
    }

    // Run again: everything is found done, nothing is applied.
    let again_before = applies(&w);
    let again = run(&w, &u, "1.36.2", &EventSink::discard())
        .await
        .expect("second run");
    assert!(again.patched.is_empty(), "{again:?}");
    assert_eq!(applies(&w), again_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_boundary_the_upgrade_finishes_without_patching_a_node_twice() {
    let w = ha_world(199, ha_on_1_13).await;
    let u = converged(&w).await;
    let before = applies(&w);
    let mut runs = 0;
    let mut cancelled = 0;
    loop {
        runs += 1;
        assert!(runs <= 40, "the upgrade does not make progress");
        // Each run is cancelled as soon as it finishes one step: the next run starts at the next boundary.
        let boundary = Arc::new(Notify::new());
        let killed = Arc::new(AtomicBool::new(false));
        let (notify, kill) = (boundary.clone(), killed.clone());
        let sink = w.events.clone();
        let events = EventSink::new(move |e| {
            if matches!(e, Event::StepFinished { .. }) {
                kill.store(true, Ordering::SeqCst);
                notify.notify_one();
            }
            sink.lock().expect("lock").push(e.clone());
        });
        tokio::select! {
            done = run_gated(&w, &u, "1.36.2", &events, killed) => match done {
                Ok(report) => {
                    // The run of the last step may finish before its cancellation is polled.
                    assert!(report.patched.len() <= 1, "{report:?}");
                    cancelled += report.patched.len();
                    break;
                }
                Err(KubernetesUpgradeError::Render { message, .. }) if message.contains("killed") => {
                    cancelled += 1;
                }
                Err(e) => panic!("run {runs}: {e}\n{}", events_text(&w)),
            },
            () = boundary.notified() => cancelled += 1,
        }
    }
    // kube-proxy is one DaemonSet: once the first control plane's config changed it, the rerun finds it
    // on the new version and leaves the other control planes' `cluster.proxy.image` to their kubelet step
    // (which applies the final config). So 3 × 3 static pods, 1 kube-proxy, 4 kubelets.
    assert_eq!(
        cancelled,
        3 * 3 + 1 + 4,
        "one run per step, each cut at its end"
    );
    assert_on_1_36(&w, &u).await;
    let mut want = one_upgrade_of_applies();
    for (_, id) in &CONTROL_PLANES[1..] {
        want.insert(*id, 4);
    }
    assert_eq!(
        difference(&applies(&w), &before),
        want,
        "no node was patched twice"
    );
    // Every step finished exactly once: a rerun finds finished steps done.
    let finished: Vec<(String, String)> = w
        .events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished {
                resource, action, ..
            } if resource.starts_with("kubernetes.") => Some((resource.clone(), action.clone())),
            _ => None,
        })
        .collect();
    let mut unique = finished.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        finished.len(),
        "a step finished twice: {finished:?}"
    );
    assert_eq!(finished.len(), 3 * 3 + 1 + 4, "{finished:?}");
    let first = w.lab.node(CONTROL_PLANES[0].1).expect("cp-1");
    assert_eq!(first.cluster_max_static_pod_restarts(), 1);
}
