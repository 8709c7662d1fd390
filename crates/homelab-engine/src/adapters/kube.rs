//! [`KubeApi`] over HTTPS with the kubeconfig's client certificate: API readiness (`/readyz`) and a node's
//! Ready condition. Only what the flow waits for; Flux operations live in their own crate.

use std::time::Duration;

use base64::Engine as _;
use homelab_talos::kubeconfig::Kubeconfig;
use zeroize::Zeroizing;

use crate::ports::{KubeApi, PortError, PortResult};

#[derive(Default)]
pub struct Kube;

struct Connection {
    http: reqwest::Client,
    server: String,
}

fn decode(field: &str, data: &str) -> PortResult<Zeroizing<Vec<u8>>> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map(Zeroizing::new)
        .map_err(|e| PortError::permanent(format!("kubeconfig {field} is not base64: {e}")))
}

fn connect(kubeconfig: &[u8]) -> PortResult<Connection> {
    let text = std::str::from_utf8(kubeconfig)
        .map_err(|_| PortError::permanent("kubeconfig is not UTF-8"))?;
    let config = Kubeconfig::from_yaml(text).map_err(|e| PortError::permanent(e.to_string()))?;
    let cluster = config
        .clusters
        .first()
        .ok_or_else(|| PortError::permanent("kubeconfig names no cluster"))?;
    let user = config
        .users
        .first()
        .ok_or_else(|| PortError::permanent("kubeconfig names no user"))?;
    let ca = decode(
        "certificate-authority-data",
        &cluster.cluster.certificate_authority_data,
    )?;
    let mut identity = decode(
        "client-certificate-data",
        &user.user.client_certificate_data,
    )?
    .to_vec();
    identity.extend_from_slice(&decode(
        "client-key-data",
        user.user.client_key_data.expose(),
    )?);
    let identity = Zeroizing::new(identity);
    let ca = reqwest::Certificate::from_pem(&ca)
        .map_err(|e| PortError::permanent(format!("kubeconfig CA: {e}")))?;
    let identity = reqwest::Identity::from_pem(&identity)
        .map_err(|e| PortError::permanent(format!("kubeconfig client certificate: {e}")))?;
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(identity)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| PortError::permanent(format!("cannot build the Kubernetes client: {e}")))?;
    Ok(Connection {
        http,
        server: cluster.cluster.server.trim_end_matches('/').to_string(),
    })
}

async fn get_json(c: &Connection, path: &str) -> PortResult<Option<serde_json::Value>> {
    let response = c
        .http
        .get(format!("{}{path}", c.server))
        .send()
        .await
        .map_err(|e| PortError::transient(format!("Kubernetes API at {}: {e}", c.server)))?;
    match response.status().as_u16() {
        200 => response
            .json()
            .await
            .map(Some)
            .map_err(|e| PortError::transient(e.to_string())),
        404 => Ok(None),
        401 | 403 => Err(PortError::permanent(format!(
            "the Kubernetes API at {} refused the kubeconfig's credentials",
            c.server
        ))),
        s => Err(PortError::transient(format!(
            "Kubernetes API answered {s} to {path}"
        ))),
    }
}

impl KubeApi for Kube {
    async fn api_ready(&self, kubeconfig: &[u8]) -> PortResult<bool> {
        let c = connect(kubeconfig)?;
        Ok(get_json(&c, "/version").await?.is_some())
    }

    async fn node_ready(&self, kubeconfig: &[u8], node: &str) -> PortResult<bool> {
        let c = connect(kubeconfig)?;
        let Some(node) = get_json(&c, &format!("/api/v1/nodes/{node}")).await? else {
            return Ok(false);
        };
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|cond| cond["type"] == "Ready" && cond["status"] == "True");
        Ok(ready)
    }
}
