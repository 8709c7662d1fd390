//! The control plane's static pods (kube-apiserver, kube-controller-manager, kube-scheduler) as their
//! mirror pods in `kube-system`, and the kube-proxy DaemonSet. Each pod runs the image of its node's
//! applied config; a config applied without a reboot that changes an image restarts that pod: the
//! mirror pod shows the new image not Ready at once, Ready after the restart delay, and only then does
//! that node's API server answer `/version` with the new version (what talosctl's upgrade-k8s waits
//! for). The simulator counts how many control planes were restarting static pods at the same moment,
//! so tests can assert that an upgrade rolled them one at a time.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Inner, NodeSim, node_name};
use crate::kube::KubeSim;
use crate::talos::config::MachineType;
use crate::talos::kubernetes::{ConfigImages, STATIC_PODS, StaticPods};

/// What the hooks need of a control plane, read under its lock.
struct View {
    ca: String,
    name: String,
    ip: String,
    images: ConfigImages,
    generation: u64,
}

fn view(node: &Inner) -> Option<View> {
    let st = node.lock();
    let inst = st.installed.as_ref()?;
    (inst.config.machine_type == MachineType::ControlPlane && inst.kube.is_some()).then(|| View {
        ca: inst.config.os_ca_pem.clone(),
        name: node_name(inst),
        ip: inst.addr.ip().to_string(),
        images: inst.config.images.clone(),
        generation: st.generation,
    })
}

fn mirror_pod(pod: &str, v: &View, image: &str, ready: bool) -> Value {
    let status = if ready { "True" } else { "False" };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{pod}-{}", v.name), "namespace": "kube-system",
            "labels": {"k8s-app": pod, "tier": "control-plane"},
            "annotations": {"kubernetes.io/config.source": "file", "kubernetes.io/config.mirror": "static"},
        },
        "spec": {"nodeName": v.name, "containers": [{"name": pod, "image": image}], "priorityClassName": "system-cluster-critical"},
        "status": {
            "phase": if ready { "Running" } else { "Pending" }, "hostIP": v.ip,
            "conditions": [{"type": "Ready", "status": status}, {"type": "ContainersReady", "status": status}],
            "containerStatuses": [{"name": pod, "image": image, "ready": ready, "started": ready}],
        },
    })
}

fn kube_proxy(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy", "tier": "node"}},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy", "tier": "node"}},
                "spec": {"containers": [{"name": "kube-proxy", "image": image}], "hostNetwork": true},
            },
        },
    })
}

/// Writes a pod or DaemonSet, logging (not failing) when the store refuses it.
fn put(kube: &KubeSim, gvr: (&str, &str, &str), object: Value) {
    if let Err(e) = kube.put(gvr, Some("kube-system"), object) {
        tracing::debug!(error = ?e, "simulated kubelet cannot write a kube-system object");
    }
}

/// kube-proxy follows `cluster.proxy.image` of the control plane last configured.
fn publish_proxy(kube: &KubeSim, images: &ConfigImages) {
    let Some(image) = images.proxy.as_deref() else {
        return;
    };
    let current = kube
        .get(
            "apps",
            "v1",
            "daemonsets",
            Some("kube-system"),
            "kube-proxy",
        )
        .and_then(|ds| {
            ds.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    if current.as_deref() != Some(image) {
        put(kube, ("apps", "v1", "daemonsets"), kube_proxy(image));
    }
}

/// A control plane's API server started (a boot, a join, a bootstrap): its static pods run its config's
/// images, Ready.
pub(super) fn started(node: &Inner) {
    let Some(v) = view(node) else { return };
    let Some(kube) = node.opts.clusters.live_kube(&v.ca) else {
        return;
    };
    for pod in STATIC_PODS {
        let Some(image) = v.images.static_pod(pod) else {
            continue;
        };
        node.opts.clusters.static_pods(&v.ca, |c: &mut StaticPods| {
            c.running.insert((v.name.clone(), pod), image.to_owned());
        });
        put(&kube, ("", "v1", "pods"), mirror_pod(pod, &v, image, true));
    }
    publish_proxy(&kube, &v.images);
}

/// A config applied without a reboot: every static pod whose image changed restarts on the new one.
pub(super) fn reconfigured(node: &Arc<Inner>) {
    let Some(v) = view(node) else { return };
    let Some(kube) = node.opts.clusters.live_kube(&v.ca) else {
        return;
    };
    publish_proxy(&kube, &v.images);
    let changed: Vec<(&'static str, String)> = STATIC_PODS
        .into_iter()
        .filter_map(|pod| {
            let image = v.images.static_pod(pod)?;
            let running = node.opts.clusters.static_pods(&v.ca, |c: &mut StaticPods| {
                c.running.get(&(v.name.clone(), pod)).cloned()
            });
            (running.as_deref() != Some(image)).then(|| (pod, image.to_owned()))
        })
        .collect();
    for (pod, image) in changed {
        node.opts.clusters.static_pods(&v.ca, |c: &mut StaticPods| {
            *c.restarting.entry(v.name.clone()).or_default() += 1;
            c.max_restarting = c.max_restarting.max(c.restarting.len());
            *c.restarts.entry(v.name.clone()).or_default() += 1;
        });
        put(
            &kube,
            ("", "v1", "pods"),
            mirror_pod(pod, &v, &image, false),
        );
        let node = node.clone();
        let kube = kube.clone();
        let delay = node.opts.static_pod_restart;
        let v = View {
            ca: v.ca.clone(),
            name: v.name.clone(),
            ip: v.ip.clone(),
            images: v.images.clone(),
            generation: v.generation,
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            finish_restart(&node, &kube, &v, pod, &image);
        });
    }
}

/// The restarted pod runs (unless the node went down or was reconfigured to another image meanwhile).
fn finish_restart(node: &Inner, kube: &KubeSim, v: &View, pod: &'static str, image: &str) {
    let still = {
        let st = node.lock();
        let inst = st.installed.as_ref();
        let current = inst.and_then(|i| i.config.images.static_pod(pod).map(str::to_owned));
        let up = st.generation == v.generation && inst.is_some_and(|i| i.kube.is_some());
        if up && current.as_deref() == Some(image) && pod == "kube-apiserver" {
            let version = crate::talos::config::image_tag(Some(image));
            for api in inst
                .into_iter()
                .flat_map(|i| i.kube.iter().chain(i.vip.iter()))
            {
                if let Some(version) = &version {
                    api.set_version(version);
                }
            }
        }
        up && current.as_deref() == Some(image)
    };
    node.opts.clusters.static_pods(&v.ca, |c: &mut StaticPods| {
        if let Some(n) = c.restarting.get_mut(&v.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.restarting.remove(&v.name);
            }
        }
        if still {
            c.running.insert((v.name.clone(), pod), image.to_owned());
        }
    });
    if still {
        put(kube, ("", "v1", "pods"), mirror_pod(pod, v, image, true));
    }
}

impl NodeSim {
    /// The most control planes of this node's cluster that were restarting static pods at the same
    /// moment (a rolling Kubernetes upgrade keeps it at 1).
    pub fn cluster_max_static_pod_restarts(&self) -> usize {
        self.os_ca_pem()
            .map(|ca| {
                self.inner
                    .opts
                    .clusters
                    .static_pods(&ca, |c| c.max_restarting)
            })
            .unwrap_or_default()
    }

    /// How many static-pod restarts this node went through (one per changed image per no-reboot apply).
    pub fn static_pod_restarts(&self) -> u32 {
        let name = {
            let st = self.inner.lock();
            st.installed.as_ref().map(node_name)
        };
        match (self.os_ca_pem(), name) {
            (Some(ca), Some(name)) => self
                .inner
                .opts
                .clusters
                .static_pods(&ca, |c| c.restarts.get(&name).copied().unwrap_or(0)),
            _ => 0,
        }
    }

    /// The images this control plane's static pods run now, by pod name.
    pub fn static_pod_images(&self) -> Vec<(String, String)> {
        let name = {
            let st = self.inner.lock();
            st.installed.as_ref().map(node_name)
        };
        let (Some(ca), Some(name)) = (self.os_ca_pem(), name) else {
            return Vec::new();
        };
        self.inner.opts.clusters.static_pods(&ca, |c| {
            STATIC_PODS
                .into_iter()
                .filter_map(|pod| {
                    let image = c.running.get(&(name.clone(), pod))?;
                    Some((pod.to_owned(), image.clone()))
                })
                .collect()
        })
    }
}
