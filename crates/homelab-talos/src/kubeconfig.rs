//! kubeconfig: an admin kubeconfig made locally from the bundle — a client certificate `CN=admin,
//! O=system:masters` signed by the Kubernetes CA, the cluster endpoint as server (what Talos' `Kubeconfig`
//! RPC returns, without asking the node).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::pki::{self, LeafRequest, PkiError};
use crate::secret::Secret;
use crate::secrets::SecretsBundle;

/// Default validity of the admin client certificate (Talos `adminKubeconfig.certLifetime`: 1 year).
pub const ADMIN_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a kubeconfig could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("kubeconfig: {0}")]
    Format(String),
}

/// A kubeconfig (`apiVersion: v1, kind: Config`) with one cluster, user and context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub clusters: Vec<NamedCluster>,
    pub users: Vec<NamedUser>,
    pub contexts: Vec<NamedContext>,
    #[serde(rename = "current-context")]
    pub current_context: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub server: String,
    #[serde(rename = "certificate-authority-data")]
    pub certificate_authority_data: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "client-certificate-data")]
    pub client_certificate_data: String,
    #[serde(rename = "client-key-data")]
    pub client_key_data: Secret,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    pub namespace: String,
    pub user: String,
}

impl Kubeconfig {
    /// An admin kubeconfig for `cluster_name` at `endpoint` (e.g. `https://192.168.20.100:6443`), with the
    /// context `admin@<cluster>` as Talos names it.
    pub fn generate_admin(
        bundle: &SecretsBundle,
        cluster_name: &str,
        endpoint: &str,
        validity: Duration,
    ) -> Result<Self, KubeconfigError> {
        let client = pki::issue(
            &bundle.certs.k8s,
            &LeafRequest {
                common_name: Some("admin".into()),
                organizations: vec!["system:masters".into()],
                client_auth: true,
                validity,
                ..LeafRequest::default()
            },
        )?;
        let user = format!("admin@{cluster_name}");
        Ok(Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: cluster_name.to_string(),
                cluster: Cluster {
                    server: endpoint.to_string(),
                    certificate_authority_data: STANDARD.encode(bundle.certs.k8s.crt.as_bytes()),
                },
            }],
            users: vec![NamedUser {
                name: user.clone(),
                user: User {
                    client_certificate_data: STANDARD.encode(client.crt.as_bytes()),
                    client_key_data: Secret::new(STANDARD.encode(client.key.expose().as_bytes())),
                },
            }],
            contexts: vec![NamedContext {
                name: user.clone(),
                context: Context {
                    cluster: cluster_name.to_string(),
                    namespace: "default".into(),
                    user: user.clone(),
                },
            }],
            current_context: user,
        })
    }

    /// The YAML kubectl reads (secret: encrypt before writing to disk).
    pub fn to_yaml(&self) -> Result<Zeroizing<String>, KubeconfigError> {
        let options = serde_saphyr::ser_options! { indent_step: 4, compact_list_indent: false, prefer_block_scalars: false };
        serde_saphyr::to_string_with_options(self, options)
            .map(Zeroizing::new)
            .map_err(|e| KubeconfigError::Format(e.to_string()))
    }

    /// Read a kubeconfig of this shape (e.g. one returned by Talos' `Kubeconfig` RPC).
    pub fn from_yaml(text: &str) -> Result<Self, KubeconfigError> {
        homelab_goyaml::alias::check(text).map_err(|e| KubeconfigError::Format(e.to_string()))?;
        serde_saphyr::from_str(text).map_err(|e| {
            KubeconfigError::Format(
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid YAML")
                    .to_string(),
            )
        })
    }

    /// When the first user's client certificate expires.
    pub fn client_cert_expiry(&self) -> Result<OffsetDateTime, KubeconfigError> {
        let user = self
            .users
            .first()
            .ok_or_else(|| KubeconfigError::Format("no users".into()))?;
        let crt = STANDARD
            .decode(user.user.client_certificate_data.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                KubeconfigError::Format("client-certificate-data is not base64 of PEM".into())
            })?;
        Ok(pki::not_after(&crt)?)
    }
}
