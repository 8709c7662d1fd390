//! What simulated nodes of one cluster share, keyed by the cluster's OS CA certificate: the OS
//! CA key (a worker's config has only the certificate; a real worker gets its apid certificate
//! from trustd on a control plane), the running Kubernetes API, and the nodes that joined it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::kube::{KubeNode, KubeSim, WeakKubeSim};

#[derive(Default)]
struct Cluster {
    os_ca_key_pem: Option<String>,
    kube: Option<WeakKubeSim>,
    nodes: BTreeMap<String, KubeNode>,
}

#[derive(Default)]
pub(crate) struct Registry {
    clusters: Mutex<HashMap<String, Cluster>>,
}

/// The process-wide registry (clusters never collide: they are keyed by their CA certificate).
pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Cluster>> {
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A control plane published the OS CA key (what trustd serves to workers).
    pub(crate) fn record_os_ca_key(&self, os_ca_pem: &str, key_pem: String) {
        self.lock()
            .entry(os_ca_pem.to_owned())
            .or_default()
            .os_ca_key_pem = Some(key_pem);
    }

    /// The OS CA key, if a control plane of this cluster was installed.
    pub(crate) fn os_ca_key(&self, os_ca_pem: &str) -> Option<String> {
        self.lock()
            .get(os_ca_pem)
            .and_then(|c| c.os_ca_key_pem.clone())
    }

    fn live_kube(cluster: &mut Cluster) -> Option<KubeSim> {
        let kube = cluster.kube.as_ref().and_then(WeakKubeSim::upgrade);
        if kube.is_none() {
            cluster.kube = None;
        }
        kube
    }

    /// A node is up: it registers with the Kubernetes API if one runs (the kubelet's job).
    pub(crate) fn join(&self, os_ca_pem: &str, node: KubeNode) {
        let mut clusters = self.lock();
        let cluster = clusters.entry(os_ca_pem.to_owned()).or_default();
        if let Some(kube) = Self::live_kube(cluster) {
            kube.upsert_node(node.clone());
        }
        cluster.nodes.insert(node.name.clone(), node);
    }

    /// A node powered off: its Node object turns NotReady.
    pub(crate) fn not_ready(&self, os_ca_pem: &str, name: &str) {
        let mut clusters = self.lock();
        let Some(cluster) = clusters.get_mut(os_ca_pem) else {
            return;
        };
        let Some(node) = cluster.nodes.get_mut(name) else {
            return;
        };
        node.ready = false;
        let node = node.clone();
        if let Some(kube) = Self::live_kube(cluster) {
            kube.upsert_node(node);
        }
    }

    /// A node was reset: it leaves the cluster and its Node object is deleted.
    pub(crate) fn leave(&self, os_ca_pem: &str, name: &str) {
        let mut clusters = self.lock();
        let Some(cluster) = clusters.get_mut(os_ca_pem) else {
            return;
        };
        cluster.nodes.remove(name);
        if let Some(kube) = Self::live_kube(cluster) {
            kube.remove_node(name);
        }
    }

    /// The Kubernetes API of this cluster started: every node that joined registers.
    pub(crate) fn kube_started(&self, os_ca_pem: &str, kube: &KubeSim) {
        let mut clusters = self.lock();
        let cluster = clusters.entry(os_ca_pem.to_owned()).or_default();
        cluster.kube = Some(kube.downgrade());
        for node in cluster.nodes.values() {
            kube.upsert_node(node.clone());
        }
    }
}
