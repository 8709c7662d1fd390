//! [`KubeApi`] over the Kubernetes client: API readiness and a node's Ready condition, which is all the
//! flow waits for. The client for the last kubeconfig is kept, so polls reuse one TLS connection.

use std::sync::Mutex;

use homelab_kube::{KubeClient, KubeError};
use zeroize::Zeroizing;

use crate::ports::{ErrorKind, KubeApi, PortError, PortResult};

#[derive(Default)]
pub struct Kube {
    last: Mutex<Option<(Zeroizing<Vec<u8>>, KubeClient)>>,
}

fn port_error(e: KubeError) -> PortError {
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
}
