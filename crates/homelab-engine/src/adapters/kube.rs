//! [`KubeApi`] over the Kubernetes client: API readiness, the nodes with their Ready condition and kubelet
//! version, the API server's version, the control planes' static pods and a DaemonSet's image (what the
//! flow and the Kubernetes upgrade wait for), and a removed node's cordon, drain and Node delete. The client
//! for the last kubeconfig is kept, so polls reuse one TLS connection.

use std::sync::Mutex;

use homelab_kube::{DrainOptions, KubeClient, KubeError};
use zeroize::Zeroizing;

use crate::ports::{Drained, ErrorKind, KubeApi, NodeStatus, PortError, PortResult, StaticPod};

#[derive(Default)]
pub struct Kube {
    last: Mutex<Option<(Zeroizing<Vec<u8>>, KubeClient)>>,
}

fn port_error(e: KubeError) -> PortError {
    match &e {
        // The drain waited its whole budget: running the removal again resumes it.
        KubeError::DrainTimeout { .. } => return PortError::new(ErrorKind::Timeout, e.to_string()),
        // Pods no controller would recreate: the operator decides.
        KubeError::DrainRefused { .. } => {
            return PortError::new(ErrorKind::Conflict, e.to_string());
        }
        _ => {}
    }
    match e.status_code() {
        Some(401 | 403) => PortError::new(ErrorKind::Auth, e.to_string()),
        _ => PortError::transient(e.to_string()),
    }
}

impl Kube {
    /// The client for `kubeconfig`: the kept one when the kubeconfig is the same, else a new one.
    fn client(&self, kubeconfig: &[u8]) -> PortResult<KubeClient> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((kept, client)) = last.as_ref()
            && kept.as_slice() == kubeconfig
        {
            return Ok(client.clone());
        }
        let text = std::str::from_utf8(kubeconfig)
            .map_err(|_| PortError::permanent("the kubeconfig is not UTF-8"))?;
        let client = KubeClient::from_kubeconfig_yaml(text)
            .map_err(|e| PortError::permanent(e.to_string()))?;
        *last = Some((Zeroizing::new(kubeconfig.to_vec()), client.clone()));
        Ok(client)
    }
}

impl KubeApi for Kube {
    async fn api_ready(&self, kubeconfig: &[u8]) -> PortResult<bool> {
        self.client(kubeconfig)?
            .is_ready()
            .await
            .map_err(port_error)
    }

    async fn node_ready(&self, kubeconfig: &[u8], node: &str) -> PortResult<bool> {
        let nodes = self.client(kubeconfig)?.nodes().await.map_err(port_error)?;
        Ok(nodes.iter().any(|n| n.name == node && n.ready))
    }

    async fn server_version(&self, kubeconfig: &[u8]) -> PortResult<String> {
        let v = self
            .client(kubeconfig)?
            .version()
            .await
            .map_err(port_error)?;
        Ok(v.git_version)
    }

    async fn nodes(&self, kubeconfig: &[u8]) -> PortResult<Vec<NodeStatus>> {
        let nodes = self.client(kubeconfig)?.nodes().await.map_err(port_error)?;
        Ok(nodes
            .into_iter()
            .map(|n| NodeStatus {
                internal_ip: n.internal_ip.as_deref().and_then(|ip| ip.parse().ok()),
                name: n.name,
                ready: n.ready,
                kubelet_version: n.kubelet_version,
            })
            .collect())
    }

    async fn static_pods(&self, kubeconfig: &[u8], component: &str) -> PortResult<Vec<StaticPod>> {
        let pods = self
            .client(kubeconfig)?
            .pods("kube-system", &format!("k8s-app={component}"))
            .await
            .map_err(port_error)?;
        Ok(pods
            .into_iter()
            .map(|p| StaticPod {
                host_ip: p.host_ip.as_deref().and_then(|ip| ip.parse().ok()),
                image: p.images.into_iter().next().unwrap_or_default(),
                node: p.node_name,
                ready: p.ready,
            })
            .collect())
    }

    async fn daemonset_image(
        &self,
        kubeconfig: &[u8],
        namespace: &str,
        name: &str,
    ) -> PortResult<Option<String>> {
        let images = self
            .client(kubeconfig)?
            .daemonset_images(namespace, name)
            .await
            .map_err(port_error)?;
        Ok(images.and_then(|i| i.into_iter().next()))
    }

    async fn cordon(&self, kubeconfig: &[u8], node: &str) -> PortResult<()> {
        self.client(kubeconfig)?
            .cordon(node)
            .await
            .map(|_| ())
            .map_err(port_error)
    }

    async fn drain(
        &self,
        kubeconfig: &[u8],
        node: &str,
        timeout: std::time::Duration,
        poll: std::time::Duration,
    ) -> PortResult<Drained> {
        let report = self
            .client(kubeconfig)?
            .drain(node, &DrainOptions { timeout, poll })
            .await
            .map_err(port_error)?;
        Ok(Drained {
            evicted: report.evicted,
        })
    }

    async fn delete_node(&self, kubeconfig: &[u8], node: &str) -> PortResult<()> {
        self.client(kubeconfig)?
            .delete_node(node)
            .await
            .map(|_| ())
            .map_err(port_error)
    }
}
