//! Image Factory client: creates the schematic (official extensions, sorted), reads the versions and
//! extensions the factory offers at run time, and builds the ISO URL and installer image reference.
//!
//! HTTP endpoints used (the real factory's API, `siderolabs/image-factory` `docs/api.md`; the simulator in
//! `homelab-sim` serves the same shapes):
//! - `POST /schematics` — body: the schematic YAML; answer `201 Created`, JSON `{"id": "<64 hex>"}` (newer
//!   factories add `"schematic"`; unknown fields are ignored). 400 with a plain-text reason on bad input.
//! - `GET /versions` — JSON array of `"vX.Y.Z"`.
//! - `GET /version/<version>/extensions/official` — JSON array of `{name, ref, digest, author, description}`.
//! - ISO (downloaded by Proxmox, not here): `GET /image/<id>/<version>/<platform>-amd64[-secureboot].iso`.
//! - Installer image (pulled by the node from the factory's registry):
//!   `<factory host>/<platform>-installer[-secureboot]/<id>:<version>`.
//!
//! The schematic id is the SHA-256 of the canonical schematic YAML (go-yaml v3 output, 4-space indent), so
//! [`Schematic::id`] computes the id the factory will answer; the factory's answer is used regardless.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The official Image Factory.
pub const DEFAULT_FACTORY_URL: &str = "https://factory.talos.dev";

/// Why a factory call failed.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error("invalid Image Factory URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach the Image Factory at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("the Image Factory answered {status} to {method} {url}: {body}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer from the Image Factory at {url}: {reason}")]
    Decode { url: String, reason: String },
    #[error("Talos {version} is not offered by the Image Factory; available: {available}")]
    UnknownVersion { version: String, available: String },
    #[error(
        "extension(s) {names} are not official extensions for Talos {version}; see `GET /version/{version}/extensions/official`"
    )]
    UnknownExtensions { version: String, names: String },
    #[error("invalid schematic: {0}")]
    Schematic(String),
}

/// A schematic: what the factory bakes into the image. Extensions are written sorted and deduplicated,
/// so the same set always gives the same id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schematic {
    /// Official system extensions, e.g. `siderolabs/qemu-guest-agent`.
    pub extensions: Vec<String>,
    /// Extra kernel arguments (ignored by SecureBoot installers; baked into the ISO's UKI).
    pub extra_kernel_args: Vec<String>,
}

impl Schematic {
    /// A schematic with these official extensions.
    pub fn with_extensions<I: IntoIterator<Item = S>, S: Into<String>>(extensions: I) -> Self {
        Self {
            extensions: extensions.into_iter().map(Into::into).collect(),
            extra_kernel_args: Vec::new(),
        }
    }

    /// The canonical YAML, as the factory re-marshals it (go-yaml v3, 4-space indent).
    pub fn canonical_yaml(&self) -> Result<String, FactoryError> {
        let mut extensions = self.extensions.clone();
        extensions.sort();
        extensions.dedup();
        for e in extensions.iter().chain(&self.extra_kernel_args) {
            if e.is_empty() || e.chars().any(|c| c.is_control()) {
                return Err(FactoryError::Schematic(format!(
                    "`{}` is not a valid value",
                    e.escape_debug()
                )));
            }
        }
        if extensions.is_empty() && self.extra_kernel_args.is_empty() {
            return Ok("customization: {}\n".into());
        }
        let mut out = String::from("customization:\n");
        if !self.extra_kernel_args.is_empty() {
            out.push_str("    extraKernelArgs:\n");
            for arg in &self.extra_kernel_args {
                out.push_str(&format!("        - {}\n", yaml_scalar(arg)));
            }
        }
        if !extensions.is_empty() {
            out.push_str("    systemExtensions:\n        officialExtensions:\n");
            for e in &extensions {
                out.push_str(&format!("            - {}\n", yaml_scalar(e)));
            }
        }
        Ok(out)
    }

    /// The schematic id: lowercase hex SHA-256 of the canonical YAML.
    pub fn id(&self) -> Result<String, FactoryError> {
        Ok(hex::encode(Sha256::digest(
            self.canonical_yaml()?.as_bytes(),
        )))
    }
}

/// A plain scalar when go-yaml would write one, else a double-quoted string.
fn yaml_scalar(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._=,-+@:".contains(c))
        && !s.starts_with(['-', ':', '@', ',', '.'])
        && !s.contains(": ")
        && !s.ends_with(':')
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

/// One official extension as the factory lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ExtensionInfo {
    pub name: String,
    #[serde(rename = "ref", default)]
    pub reference: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct SchematicCreated {
    id: String,
}

/// A client for one Image Factory.
#[derive(Clone, Debug)]
pub struct FactoryClient {
    base: reqwest::Url,
    http: reqwest::Client,
}

impl FactoryClient {
    /// A client for the factory at `base_url` (e.g. `https://factory.talos.dev`) with TLS verified
    /// against the platform's roots.
    pub fn new(base_url: &str) -> Result<Self, FactoryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("homelabctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FactoryError::Url {
                url: base_url.to_string(),
                reason: e.to_string(),
            })?;
        Self::with_http_client(base_url, http)
    }

    /// A client using a prepared `reqwest::Client` (custom roots, proxies, tests).
    pub fn with_http_client(base_url: &str, http: reqwest::Client) -> Result<Self, FactoryError> {
        let bad = |reason: &str| FactoryError::Url {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let base = reqwest::Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() {
            return Err(bad("expected http(s)://HOST[:PORT]"));
        }
        Ok(Self { base, http })
    }

    /// The factory's base URL, as errors name it.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The host (and port) the factory's registry is reached at, for installer references.
    pub fn registry_host(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// Create (or find: the factory is content-addressed) the schematic; returns its id.
    pub async fn create_schematic(&self, schematic: &Schematic) -> Result<String, FactoryError> {
        let url = self.url("/schematics");
        let body = schematic.canonical_yaml()?;
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(body)
            .send()
            .await
            .map_err(|e| network(&url, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| network(&url, &e))?;
        if status != reqwest::StatusCode::CREATED && status != reqwest::StatusCode::OK {
            return Err(status_error("POST", &url, status, &text));
        }
        let created: SchematicCreated =
            serde_json::from_str(&text).map_err(|e| FactoryError::Decode {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if created.id.len() != 64 || !created.id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(FactoryError::Decode {
                url,
                reason: "the schematic id is not 64 hex characters".into(),
            });
        }
        Ok(created.id.to_ascii_lowercase())
    }

    /// The Talos versions the factory offers.
    pub async fn versions(&self) -> Result<Vec<String>, FactoryError> {
        self.get_json("/versions").await
    }

    /// The official extensions for a Talos version.
    pub async fn official_extensions(
        &self,
        version: &str,
    ) -> Result<Vec<ExtensionInfo>, FactoryError> {
        self.get_json(&format!(
            "/version/{}/extensions/official",
            normalize_version(version)
        ))
        .await
    }

    /// Check that `version` is offered and every extension is official for it.
    pub async fn check_available(
        &self,
        version: &str,
        schematic: &Schematic,
    ) -> Result<(), FactoryError> {
        let version = normalize_version(version);
        let versions = self.versions().await?;
        if !versions.contains(&version) {
            let mut recent: Vec<&String> = versions.iter().rev().take(5).collect();
            recent.reverse();
            return Err(FactoryError::UnknownVersion {
                version,
                available: format!("{} versions, the last: {}", versions.len(), join(&recent)),
            });
        }
        let official = self.official_extensions(&version).await?;
        let unknown: Vec<&String> = schematic
            .extensions
            .iter()
            .filter(|e| !official.iter().any(|o| o.name == **e))
            .collect();
        if !unknown.is_empty() {
            return Err(FactoryError::UnknownExtensions {
                version,
                names: join(&unknown),
            });
        }
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, FactoryError> {
        let url = self.url(path);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| network(&url, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| network(&url, &e))?;
        if !status.is_success() {
            return Err(status_error("GET", &url, status, &text));
        }
        serde_json::from_str(&text).map_err(|e| FactoryError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// ISO download URL, e.g. `https://factory.talos.dev/image/<id>/v1.12.4/nocloud-amd64-secureboot.iso`.
    pub fn iso_url(
        &self,
        schematic_id: &str,
        version: &str,
        platform: &str,
        secureboot: bool,
    ) -> String {
        let suffix = if secureboot { "-secureboot" } else { "" };
        self.url(&format!(
            "/image/{schematic_id}/{}/{platform}-amd64{suffix}.iso",
            normalize_version(version)
        ))
    }

    /// Installer image reference, e.g. `factory.talos.dev/nocloud-installer-secureboot/<id>:v1.12.4`.
    pub fn installer_image(
        &self,
        schematic_id: &str,
        version: &str,
        platform: &str,
        secureboot: bool,
    ) -> String {
        let suffix = if secureboot { "-secureboot" } else { "" };
        format!(
            "{}/{platform}-installer{suffix}/{schematic_id}:{}",
            self.registry_host(),
            normalize_version(version)
        )
    }
}

/// `1.12.4` → `v1.12.4`.
pub fn normalize_version(version: &str) -> String {
    format!("v{}", version.trim().trim_start_matches('v'))
}

fn join<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

fn network(url: &str, e: &reqwest::Error) -> FactoryError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    FactoryError::Network {
        url: url.to_string(),
        reason,
    }
}

fn status_error(
    method: &'static str,
    url: &str,
    status: reqwest::StatusCode,
    body: &str,
) -> FactoryError {
    FactoryError::Status {
        method,
        url: url.to_string(),
        status: status.as_u16(),
        body: body.trim().chars().take(300).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vanilla_schematic_has_the_well_known_id() {
        assert_eq!(
            Schematic::default().id().unwrap(),
            "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
        );
    }

    #[test]
    fn qemu_guest_agent_schematic_has_the_factory_id() {
        let s = Schematic::with_extensions(["siderolabs/qemu-guest-agent"]);
        assert_eq!(
            s.id().unwrap(),
            "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
        );
    }

    #[test]
    fn extension_order_does_not_change_the_id() {
        let a = Schematic::with_extensions(["siderolabs/qemu-guest-agent", "siderolabs/nfs-utils"]);
        let b = Schematic::with_extensions([
            "siderolabs/nfs-utils",
            "siderolabs/qemu-guest-agent",
            "siderolabs/nfs-utils",
        ]);
        assert_eq!(a.id().unwrap(), b.id().unwrap());
        assert_eq!(
            a.canonical_yaml().unwrap(),
            "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/nfs-utils\n            - siderolabs/qemu-guest-agent\n"
        );
    }

    #[test]
    fn urls_follow_the_factory_layout() {
        let c = FactoryClient::new(DEFAULT_FACTORY_URL).unwrap();
        assert_eq!(
            c.iso_url("abc", "1.12.4", "nocloud", true),
            "https://factory.talos.dev/image/abc/v1.12.4/nocloud-amd64-secureboot.iso"
        );
        assert_eq!(
            c.iso_url("abc", "v1.12.4", "metal", false),
            "https://factory.talos.dev/image/abc/v1.12.4/metal-amd64.iso"
        );
        assert_eq!(
            c.installer_image("abc", "v1.12.4", "nocloud", true),
            "factory.talos.dev/nocloud-installer-secureboot/abc:v1.12.4"
        );
        let local = FactoryClient::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            local.installer_image("abc", "v1.12.4", "metal", false),
            "127.0.0.1:8080/metal-installer/abc:v1.12.4"
        );
    }

    #[test]
    fn values_that_yaml_would_misread_are_quoted() {
        assert_eq!(yaml_scalar("console=ttyS0"), "console=ttyS0");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("1.5"), "\"1.5\"");
        assert_eq!(yaml_scalar("a b"), "\"a b\"");
    }
}
