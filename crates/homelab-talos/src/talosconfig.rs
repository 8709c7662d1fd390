//! talosconfig: the `talosctl` client configuration, made locally from the bundle with an Ed25519
//! `os:admin` client certificate signed by the OS CA (what `talosctl gen config` writes).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::pki::{self, PkiError};
use crate::secret::Secret;
use crate::secrets::SecretsBundle;

/// Why a talosconfig could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TalosconfigError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("talosconfig: {0}")]
    Format(String),
    #[error("talosconfig has no context `{0}`")]
    NoContext(String),
}

/// What to put into a talosconfig.
#[derive(Clone, Debug)]
pub struct TalosconfigInput {
    /// Context name (usually the cluster name).
    pub context: String,
    /// apid endpoints (control-plane addresses).
    pub endpoints: Vec<String>,
    /// Default target nodes.
    pub nodes: Vec<String>,
    /// Client certificate roles, `["os:admin"]` for an admin.
    pub roles: Vec<String>,
    /// Client certificate validity (Talos default: 1 year).
    pub validity: Duration,
}

impl TalosconfigInput {
    /// An `os:admin` context for the given endpoints/nodes, valid one year.
    pub fn admin(context: impl Into<String>, endpoints: Vec<String>, nodes: Vec<String>) -> Self {
        Self {
            context: context.into(),
            endpoints,
            nodes,
            roles: vec!["os:admin".into()],
            validity: pki::CLIENT_CERT_VALIDITY,
        }
    }
}

/// A talosconfig file (`context`, `contexts.<name>.{endpoints, nodes, ca, crt, key}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talosconfig {
    pub context: String,
    pub contexts: BTreeMap<String, TalosContext>,
}

/// One talosconfig context; `ca`, `crt` and `key` are base64 of PEM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalosContext {
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    pub ca: String,
    pub crt: String,
    pub key: Secret,
}

impl Talosconfig {
    /// Make a talosconfig with a fresh client certificate from the bundle's OS CA.
    pub fn generate(
        bundle: &SecretsBundle,
        input: &TalosconfigInput,
    ) -> Result<Self, TalosconfigError> {
        let roles: Vec<&str> = input.roles.iter().map(String::as_str).collect();
        let client = pki::talos_client_cert(&bundle.certs.os, &roles, input.validity)?;
        let context = TalosContext {
            endpoints: input.endpoints.clone(),
            nodes: input.nodes.clone(),
            ca: STANDARD.encode(bundle.certs.os.crt.as_bytes()),
            crt: STANDARD.encode(client.crt.as_bytes()),
            key: Secret::new(STANDARD.encode(client.key.expose().as_bytes())),
        };
        Ok(Self {
            context: input.context.clone(),
            contexts: BTreeMap::from([(input.context.clone(), context)]),
        })
    }

    /// The YAML talosctl reads (secret: encrypt before writing to disk).
    pub fn to_yaml(&self) -> Result<Zeroizing<String>, TalosconfigError> {
        let options = serde_saphyr::ser_options! { indent_step: 4, compact_list_indent: false, prefer_block_scalars: false };
        serde_saphyr::to_string_with_options(self, options)
            .map(Zeroizing::new)
            .map_err(|e| TalosconfigError::Format(e.to_string()))
    }

    /// Read a talosconfig.
    pub fn from_yaml(text: &str) -> Result<Self, TalosconfigError> {
        homelab_goyaml::alias::check(text).map_err(|e| TalosconfigError::Format(e.to_string()))?;
        serde_saphyr::from_str(text).map_err(|e| {
            TalosconfigError::Format(
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid YAML")
                    .to_string(),
            )
        })
    }

    /// The current context.
    pub fn current(&self) -> Result<&TalosContext, TalosconfigError> {
        self.contexts
            .get(&self.context)
            .ok_or_else(|| TalosconfigError::NoContext(self.context.clone()))
    }

    /// When the current context's client certificate expires.
    pub fn client_cert_expiry(&self) -> Result<OffsetDateTime, TalosconfigError> {
        let crt = decode_pem_b64(&self.current()?.crt)?;
        Ok(pki::not_after(&crt)?)
    }
}

pub(crate) fn decode_pem_b64(value: &str) -> Result<String, TalosconfigError> {
    STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| TalosconfigError::Format("a certificate is not base64 of PEM text".into()))
}
