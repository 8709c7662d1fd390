//! The Kubernetes API client: reqwest over rustls (ring) with the kubeconfig's CA and client
//! certificate, resource discovery for arbitrary kinds, and idempotent create-or-replace.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::KubeError;
use crate::kubeconfig::{Credentials, Kubeconfig};

const TIMEOUT: Duration = Duration::from_secs(30);

/// What an idempotent write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// the object did not exist and was created
    Created,
    /// the object existed and differed; it was replaced
    Updated,
    /// the object already matched; nothing was sent
    Unchanged,
}

/// The API server's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// e.g. `v1.35.0`
    pub git_version: String,
    /// major version
    pub major: String,
    /// minor version
    pub minor: String,
}

/// A node and its readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// node name
    pub name: String,
    /// the Ready condition is True
    pub ready: bool,
    /// kubelet version
    pub kubelet_version: String,
    /// InternalIP, if reported
    pub internal_ip: Option<String>,
}

/// One status condition of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// condition type (`Ready`, `Established`...)
    pub type_: String,
    /// `True`, `False` or `Unknown`
    pub status: String,
    /// machine-readable reason
    pub reason: String,
    /// human-readable message
    pub message: String,
}

/// Discovered resources per apiVersion, by kind.
type Discovery = HashMap<String, Arc<HashMap<String, ApiResource>>>;

#[derive(Debug, Clone)]
struct ApiResource {
    plural: String,
    namespaced: bool,
}

/// A client for one cluster (one kubeconfig context).
#[derive(Clone)]
pub struct KubeClient {
    http: reqwest::Client,
    server: String,
    namespace: String,
    discovery: Arc<Mutex<Discovery>>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .finish()
    }
}

/// Secret payload: key → bytes (kept in zeroizing buffers).
pub type SecretData = BTreeMap<String, Zeroizing<Vec<u8>>>;

impl KubeClient {
    /// Builds a client from a resolved kubeconfig context. TLS is always verified: against the
    /// kubeconfig CA when given, else against nothing (the call will fail with a clear error).
    pub fn new(config: &Kubeconfig) -> Result<Self, KubeError> {
        let tls = tls_config(config)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(TIMEOUT)
            .no_proxy();
        if let Credentials::Token(token) = &config.credentials {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
                    .map_err(|_| KubeError::Tls {
                        reason: "the bearer token contains invalid characters".into(),
                    })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        let http = builder.build().map_err(|e| KubeError::Tls {
            reason: e.to_string(),
        })?;
        Ok(Self {
            http,
            server: config.server.clone(),
            namespace: config.namespace.clone(),
            discovery: Arc::default(),
        })
    }

    /// Builds a client from kubeconfig text.
    pub fn from_kubeconfig_yaml(text: &str) -> Result<Self, KubeError> {
        Self::new(&Kubeconfig::from_yaml(text)?)
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(StatusCode, Vec<u8>), KubeError> {
        let url = format!("{}{path}", self.server);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("Accept", "application/json");
        if let Some((ctype, bytes)) = body {
            req = req.header("Content-Type", ctype).body(bytes);
        }
        let resp = req.send().await.map_err(|e| KubeError::Unreachable {
            url: url.clone(),
            message: chain(&e),
        })?;
        let code = resp.status();
        let bytes = resp.bytes().await.map_err(|e| KubeError::Unreachable {
            url: url.clone(),
            message: chain(&e),
        })?;
        Ok((code, bytes.to_vec()))
    }

    /// Sends a request and decodes a JSON answer; non-2xx answers become [`KubeError::Api`].
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, KubeError> {
        let (code, bytes) = self.send(method.clone(), path, body).await?;
        let url = format!("{}{path}", self.server);
        if !code.is_success() {
            let status: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(KubeError::Api {
                method: method.to_string(),
                url,
                code: code.as_u16(),
                reason: status["reason"]
                    .as_str()
                    .unwrap_or(code.canonical_reason().unwrap_or(""))
                    .to_owned(),
                message: status["message"].as_str().map_or_else(
                    || String::from_utf8_lossy(&bytes).into_owned(),
                    str::to_owned,
                ),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| KubeError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<ServerVersion, KubeError> {
        let v = self.call(Method::GET, "/version", None).await?;
        Ok(ServerVersion {
            git_version: v["gitVersion"].as_str().unwrap_or_default().to_owned(),
            major: v["major"].as_str().unwrap_or_default().to_owned(),
            minor: v["minor"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `GET /readyz`: `Ok(true)` when the API server reports ready.
    pub async fn is_ready(&self) -> Result<bool, KubeError> {
        let (code, _) = self.send(Method::GET, "/readyz", None).await?;
        Ok(code.is_success())
    }

    /// The cluster's nodes with their Ready condition.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, KubeError> {
        let list = self.call(Method::GET, "/api/v1/nodes", None).await?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| NodeInfo {
                name: n["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                ready: conditions_of(n)
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                kubelet_version: n["status"]["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                internal_ip: n["status"]["addresses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                    .and_then(|a| a["address"].as_str())
                    .map(str::to_owned),
            })
            .collect())
    }

    async fn resources(
        &self,
        api_version: &str,
    ) -> Result<Arc<HashMap<String, ApiResource>>, KubeError> {
        if let Some(found) = self.lock_discovery().get(api_version) {
            return Ok(found.clone());
        }
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let doc = match self.call(Method::GET, &path, None).await {
            Err(KubeError::Api { code: 404, .. }) => Value::Null,
            other => other?,
        };
        let mut by_kind = HashMap::new();
        for r in doc["resources"].as_array().into_iter().flatten() {
            let (Some(name), Some(kind)) = (r["name"].as_str(), r["kind"].as_str()) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            by_kind.insert(
                kind.to_owned(),
                ApiResource {
                    plural: name.to_owned(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(true),
                },
            );
        }
        let by_kind = Arc::new(by_kind);
        if !by_kind.is_empty() {
            self.lock_discovery()
                .insert(api_version.to_owned(), by_kind.clone());
        }
        Ok(by_kind)
    }

    fn lock_discovery(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HashMap<String, ApiResource>>>> {
        self.discovery
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The URL path of an object (or of its collection when `name` is `None`).
    async fn path(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, KubeError> {
        let resources = self.resources(api_version).await?;
        let r = resources.get(kind).ok_or_else(|| KubeError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
        let root = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let mut path = if r.namespaced {
            format!(
                "{root}/namespaces/{}/{}",
                namespace.unwrap_or(&self.namespace),
                r.plural
            )
        } else {
            format!("{root}/{}", r.plural)
        };
        if let Some(name) = name {
            path.push('/');
            path.push_str(name);
        }
        Ok(path)
    }

    /// Reads an object; `Ok(None)` when it does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        let path = self.path(api_version, kind, namespace, Some(name)).await?;
        match self.call(Method::GET, &path, None).await {
            Ok(v) => Ok(Some(v)),
            Err(KubeError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object of a type in `namespace` (all namespaces' objects when `None` for a namespaced
    /// type), as the API server lists them.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let path = self.path(api_version, kind, namespace, None).await?;
        let list = self.call(Method::GET, &path, None).await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// The `status.conditions` of an object (empty when it has none or does not exist).
    pub async fn conditions(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Vec<Condition>, KubeError> {
        Ok(self
            .get(api_version, kind, namespace, name)
            .await?
            .map(|o| conditions_of(&o))
            .unwrap_or_default())
    }

    /// Creates the object, or replaces it when it exists and differs (create-or-replace). Fields
    /// the object does not mention (status, server-set metadata) are left to the server.
    pub async fn apply(&self, object: &Value) -> Result<Applied, KubeError> {
        let invalid = |reason: &str| KubeError::InvalidObject {
            reason: reason.to_owned(),
        };
        let api_version = object["apiVersion"]
            .as_str()
            .ok_or_else(|| invalid("apiVersion is missing"))?;
        let kind = object["kind"]
            .as_str()
            .ok_or_else(|| invalid("kind is missing"))?;
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| invalid("metadata.name is missing"))?;
        let namespace = object["metadata"]["namespace"].as_str();
        let desired = normalize(object);
        for _attempt in 0..3 {
            let Some(live) = self.get(api_version, kind, namespace, name).await? else {
                let path = self.path(api_version, kind, namespace, None).await?;
                match self
                    .call(
                        Method::POST,
                        &path,
                        Some(("application/json", desired.to_string().into_bytes())),
                    )
                    .await
                {
                    Ok(_) => return Ok(Applied::Created),
                    Err(KubeError::Api { code: 409, .. }) => continue,
                    Err(e) => return Err(e),
                }
            };
            if is_subset(&desired, &live) {
                return Ok(Applied::Unchanged);
            }
            let mut body = desired.clone();
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            let path = self.path(api_version, kind, namespace, Some(name)).await?;
            match self
                .call(
                    Method::PUT,
                    &path,
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await
            {
                Ok(_) => return Ok(Applied::Updated),
                Err(KubeError::Api { code: 409, .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KubeError::Api {
            method: "PUT".into(),
            url: format!("{}/{kind}/{name}", self.server),
            code: 409,
            reason: "Conflict".into(),
            message: "the object kept changing while it was being replaced; retry".into(),
        })
    }

    /// Creates the namespace if it is missing.
    pub async fn ensure_namespace(&self, name: &str) -> Result<Applied, KubeError> {
        self.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
            .await
    }

    /// Creates or updates an Opaque (or `type_`) Secret idempotently: nothing is sent when the
    /// live Secret already holds exactly `data`.
    pub async fn upsert_secret(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        data: &SecretData,
    ) -> Result<Applied, KubeError> {
        let encoded: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&v[..])),
                )
            })
            .collect();
        let object = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": type_, "data": encoded,
        });
        // An extra key in the live Secret is a difference too: compare the data maps exactly.
        if let Some(live) = self.get("v1", "Secret", Some(namespace), name).await?
            && live["data"] == object["data"]
            && live["type"] == object["type"]
        {
            return Ok(Applied::Unchanged);
        }
        self.apply(&object).await
    }
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

pub(crate) fn conditions_of(obj: &Value) -> Vec<Condition> {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Condition {
            type_: c["type"].as_str().unwrap_or_default().to_owned(),
            status: c["status"].as_str().unwrap_or_default().to_owned(),
            reason: c["reason"].as_str().unwrap_or_default().to_owned(),
            message: c["message"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// What the API server would store for `object` where we can tell locally (Secret stringData).
fn normalize(object: &Value) -> Value {
    let mut o = object.clone();
    if o["kind"] == "Secret"
        && let Some(Value::Object(string_data)) =
            o.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default().to_owned();
            o["data"][k] = Value::String(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    o
}

/// Whether every field of `desired` has the same value in `live` (maps compared key by key,
/// everything else by equality).
fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (d, l) => d == l,
    }
}

fn tls_config(config: &Kubeconfig) -> Result<rustls::ClientConfig, KubeError> {
    let tls_err = |reason: String| KubeError::Tls { reason };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &config.ca_pem {
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| tls_err(format!("certificate-authority: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("certificate-authority: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_err(e.to_string()))?
    .with_root_certificates(roots);
    match &config.credentials {
        Credentials::Certificate { cert_pem, key_pem } => {
            let certs = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err(format!("client-certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| tls_err(format!("client-key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_err(format!("client certificate and key: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_server_fields() {
        let desired = json!({"kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dg=="}});
        let live = json!({"kind": "Secret", "metadata": {"name": "a", "uid": "x"}, "data": {"k": "dg=="}, "type": "Opaque"});
        assert!(is_subset(&desired, &live));
        let changed = json!({"kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dw=="}});
        assert!(!is_subset(&changed, &live));
    }

    #[test]
    fn string_data_is_compared_as_data() {
        let o = normalize(&json!({"kind": "Secret", "stringData": {"k": "v"}}));
        assert_eq!(o, json!({"kind": "Secret", "data": {"k": "dg=="}}));
    }
}
