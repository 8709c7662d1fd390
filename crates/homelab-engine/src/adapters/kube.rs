//! [`KubeApi`] over the Kubernetes client: API readiness and a node's Ready condition, which is all the
//! flow waits for.

use homelab_kube::{KubeClient, KubeError};

use crate::ports::{KubeApi, PortError, PortResult};

#[derive(Default)]
pub struct Kube;

fn client(kubeconfig: &[u8]) -> PortResult<KubeClient> {
    let text = std::str::from_utf8(kubeconfig)
        .map_err(|_| PortError::permanent("the kubeconfig is not UTF-8"))?;
    KubeClient::from_kubeconfig_yaml(text).map_err(|e| PortError::permanent(e.to_string()))
}

fn port_error(e: KubeError) -> PortError {
    match e.status_code() {
        Some(401 | 403) => PortError::permanent(e.to_string()),
        _ => PortError::transient(e.to_string()),
    }
}

impl KubeApi for Kube {
    async fn api_ready(&self, kubeconfig: &[u8]) -> PortResult<bool> {
        client(kubeconfig)?.is_ready().await.map_err(port_error)
    }

    async fn node_ready(&self, kubeconfig: &[u8], node: &str) -> PortResult<bool> {
        let nodes = client(kubeconfig)?.nodes().await.map_err(port_error)?;
        Ok(nodes.iter().any(|n| n.name == node && n.ready))
    }
}
