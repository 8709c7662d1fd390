//! Reads a kubeconfig (YAML) and resolves its current context to a server URL, the CA to trust
//! and the client credentials (certificate + key, or a bearer token), inline or from files.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::KubeError;

#[derive(Deserialize)]
struct File {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterEntry,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: UserEntry,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Deserialize, Default)]
struct ClusterEntry {
    #[serde(default)]
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority", default)]
    ca_file: Option<PathBuf>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
}

#[derive(Deserialize, Default)]
struct UserEntry {
    #[serde(rename = "client-certificate-data", default)]
    cert_data: Option<String>,
    #[serde(rename = "client-certificate", default)]
    cert_file: Option<PathBuf>,
    #[serde(rename = "client-key-data", default, deserialize_with = "zeroizing")]
    key_data: Option<Zeroizing<String>>,
    #[serde(rename = "client-key", default)]
    key_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "zeroizing")]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    exec: Option<serde_json::Value>,
}

/// Reads secret strings straight into zeroizing buffers.
fn zeroizing<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Zeroizing<String>>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Zeroizing::new))
}

#[derive(Deserialize, Default)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// client certificate and key (PEM)
    Certificate {
        /// certificate chain PEM
        cert_pem: Vec<u8>,
        /// private key PEM
        key_pem: Zeroizing<Vec<u8>>,
    },
    /// bearer token
    Token(Zeroizing<String>),
    /// no credentials
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Certificate { .. } => "Certificate(<redacted>)",
            Self::Token(_) => "Token(<redacted>)",
            Self::None => "None",
        })
    }
}

/// The resolved current context of a kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// context name
    pub context: String,
    /// API server URL without a trailing slash
    pub server: String,
    /// CA certificate PEM to trust (`None`: no CA given)
    pub ca_pem: Option<Vec<u8>>,
    /// client credentials
    pub credentials: Credentials,
    /// default namespace of the context
    pub namespace: String,
}

fn b64(field: &'static str, value: &str) -> Result<Vec<u8>, KubeError> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| KubeError::Kubeconfig {
            source_name: String::new(),
            reason: format!("{field} is not base64: {e}"),
        })
}

fn read(base: Option<&Path>, path: &Path, field: &str) -> Result<Vec<u8>, KubeError> {
    let full = match base {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    };
    std::fs::read(&full).map_err(|e| KubeError::Kubeconfig {
        source_name: String::new(),
        reason: format!("{field} file {}: {e}", full.display()),
    })
}

impl Kubeconfig {
    /// Reads a kubeconfig file; relative certificate paths resolve against its directory.
    pub fn from_file(path: &Path) -> Result<Self, KubeError> {
        let text = std::fs::read_to_string(path).map_err(|e| KubeError::Kubeconfig {
            source_name: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let text = Zeroizing::new(text);
        Self::parse(&text, path.parent()).map_err(|e| e.with_source(&path.display().to_string()))
    }

    /// Parses kubeconfig text (for example the bytes Talos's Kubeconfig RPC returned).
    pub fn from_yaml(text: &str) -> Result<Self, KubeError> {
        Self::parse(text, None).map_err(|e| e.with_source("<kubeconfig>"))
    }

    fn parse(text: &str, base: Option<&Path>) -> Result<Self, KubeError> {
        let bad = |reason: String| KubeError::Kubeconfig {
            source_name: String::new(),
            reason,
        };
        homelab_goyaml::alias::check(text).map_err(|e| bad(e.to_string()))?;
        let file: File =
            serde_saphyr::from_str(text).map_err(|e| bad(format!("not a kubeconfig: {e}")))?;
        let context_name = if file.current_context.is_empty() {
            file.contexts
                .first()
                .map(|c| c.name.clone())
                .ok_or_else(|| bad("no contexts".into()))?
        } else {
            file.current_context.clone()
        };
        let context = file
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .ok_or_else(|| {
                bad(format!(
                    "current-context {context_name:?} is not defined under contexts"
                ))
            })?;
        let ctx = &context.context;
        let cluster = file
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .ok_or_else(|| {
                bad(format!(
                    "cluster {:?} of context {context_name:?} is not defined",
                    ctx.cluster
                ))
            })?;
        let cluster = &cluster.cluster;
        if cluster.insecure {
            return Err(bad(
                "insecure-skip-tls-verify is set; homelabctl always verifies the API server".into(),
            ));
        }
        if !cluster.server.starts_with("https://") {
            return Err(bad(format!(
                "server {:?} must be an https:// URL",
                cluster.server
            )));
        }
        let ca_pem = match (&cluster.ca_data, &cluster.ca_file) {
            (Some(data), _) => Some(b64("certificate-authority-data", data)?),
            (None, Some(file)) => Some(read(base, file, "certificate-authority")?),
            (None, None) => None,
        };
        let user = file
            .users
            .iter()
            .find(|u| u.name == ctx.user)
            .map(|u| &u.user);
        let credentials = match user {
            None => Credentials::None,
            Some(u) if u.exec.is_some() => {
                return Err(bad(format!(
                    "user {:?} uses an exec credential plugin, which is not supported",
                    ctx.user
                )));
            }
            Some(u) => {
                let cert = match (&u.cert_data, &u.cert_file) {
                    (Some(d), _) => Some(b64("client-certificate-data", d)?),
                    (None, Some(f)) => Some(read(base, f, "client-certificate")?),
                    _ => None,
                };
                let key = match (&u.key_data, &u.key_file) {
                    (Some(d), _) => Some(Zeroizing::new(b64("client-key-data", d)?)),
                    (None, Some(f)) => Some(Zeroizing::new(read(base, f, "client-key")?)),
                    _ => None,
                };
                match (cert, key, &u.token) {
                    (Some(cert_pem), Some(key_pem), _) => {
                        Credentials::Certificate { cert_pem, key_pem }
                    }
                    (Some(_), None, _) | (None, Some(_), _) => {
                        return Err(bad(format!(
                            "user {:?} has a client certificate without its key (or the reverse)",
                            ctx.user
                        )));
                    }
                    (None, None, Some(token)) => Credentials::Token(token.clone()),
                    (None, None, None) => Credentials::None,
                }
            }
        };
        Ok(Self {
            context: context_name,
            server: cluster.server.trim_end_matches('/').to_owned(),
            ca_pem,
            credentials,
            namespace: ctx.namespace.clone().unwrap_or_else(|| "default".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "apiVersion: v1
kind: Config
clusters:
    - name: homelab
      cluster:
        server: https://127.0.0.1:6443/
        certificate-authority-data: Q0E=
users:
    - name: admin@homelab
      user:
        client-certificate-data: Q1JU
        client-key-data: S0VZ
contexts:
    - context:
        cluster: homelab
        namespace: flux-system
        user: admin@homelab
      name: admin@homelab
current-context: admin@homelab
";

    #[test]
    fn talos_style_kubeconfig_resolves() {
        let k = Kubeconfig::from_yaml(CONFIG);
        let Ok(k) = k else { panic!("{:?}", k.err()) };
        assert_eq!(k.server, "https://127.0.0.1:6443");
        assert_eq!(k.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(k.namespace, "flux-system");
        assert!(
            matches!(k.credentials, Credentials::Certificate { ref cert_pem, .. } if cert_pem == b"CRT")
        );
    }

    #[test]
    fn broken_kubeconfigs_say_what_is_wrong() {
        let missing = CONFIG.replace("current-context: admin@homelab", "current-context: other");
        assert!(
            Kubeconfig::from_yaml(&missing)
                .err()
                .is_some_and(|e| e.to_string().contains("\"other\""))
        );
        let http = CONFIG.replace("https://127.0.0.1:6443/", "http://127.0.0.1:6443");
        assert!(Kubeconfig::from_yaml(&http).is_err());
        let insecure = CONFIG.replace(
            "        certificate-authority-data: Q0E=",
            "        insecure-skip-tls-verify: true",
        );
        assert!(Kubeconfig::from_yaml(&insecure).is_err());
        assert!(Kubeconfig::from_yaml(": not yaml [").is_err());
    }

    proptest::proptest! {
        /// Arbitrary kubeconfig text yields a config or an error, never a panic.
        #[test]
        fn arbitrary_text_does_not_panic(text in "\\PC{0,300}") {
            let _ = Kubeconfig::from_yaml(&text);
        }
    }
}
