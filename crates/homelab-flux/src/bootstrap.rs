//! `flux bootstrap`: install Flux from its release manifests (downloaded from a URL pinned by version and
//! SHA-256, refused on mismatch), then the sync objects of the repository. Needs no git write access: the
//! tree is already in the repository (`homelabctl init`). Idempotent: a second run changes nothing.

use std::time::Duration;

use homelab_config::Gitops;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::apply::{ApplyError, apply};
use crate::cluster::{Action, Cluster, ObjectRef};
use crate::sync::{self, GIT_AUTH_SECRET, NAMESPACE, SyncError};

/// The Flux release installed by default.
pub const FLUX_VERSION: &str = "v2.9.5";

/// The official install manifests of a Flux release.
pub fn official_url(version: &str) -> String {
    format!("https://github.com/fluxcd/flux2/releases/download/{version}/install.yaml")
}

/// Where the install manifests come from and the SHA-256 they must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSource {
    pub url: String,
    /// Lowercase or uppercase hex.
    pub sha256: String,
}

/// Why bootstrap stopped.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{url} has SHA-256 {actual}, expected {expected}: refusing to install it")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("`{0}` is not a SHA-256 (64 hex digits)")]
    BadChecksum(String),
    #[error("{url} is not a Kubernetes manifest stream: {reason}")]
    Manifests { url: String, reason: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// An HTTPS client for downloading the manifests (TLS verified against the platform's roots).
pub fn http_client() -> Result<reqwest::Client, BootstrapError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("homelabctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BootstrapError::Download {
            url: String::new(),
            reason: e.to_string(),
        })
}

/// Downloads the manifests and checks their SHA-256 before parsing them.
pub async fn fetch(
    http: &reqwest::Client,
    source: &InstallSource,
) -> Result<Vec<Value>, BootstrapError> {
    let expected = source.sha256.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(BootstrapError::BadChecksum(source.sha256.clone()));
    }
    let download = |reason: String| BootstrapError::Download {
        url: source.url.clone(),
        reason,
    };
    let response = http
        .get(&source.url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| download(e.to_string()))?;
    if !response.status().is_success() {
        return Err(download(format!("HTTP {}", response.status())));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| download(e.to_string()))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(BootstrapError::Checksum {
            url: source.url.clone(),
            expected,
            actual,
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| BootstrapError::Manifests {
        url: source.url.clone(),
        reason: e.to_string(),
    })?;
    parse_manifests(text).map_err(|reason| BootstrapError::Manifests {
        url: source.url.clone(),
        reason,
    })
}

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, String> {
    homelab_goyaml::alias::check(text).map_err(|e| e.to_string())?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let objects: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if let Some(bad) = objects.iter().position(|o| ObjectRef::of(o).is_none()) {
        return Err(format!(
            "document {} lacks apiVersion, kind or metadata.name",
            bad + 1
        ));
    }
    Ok(objects)
}

/// What bootstrap did, object by object, and what the operator still has to do.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub applied: Vec<(ObjectRef, Action)>,
    pub notes: Vec<String>,
}

impl BootstrapReport {
    pub fn changed(&self) -> usize {
        self.applied
            .iter()
            .filter(|(_, a)| *a != Action::Unchanged)
            .count()
    }
}

/// Applies the install manifests (namespaces and CRDs first) and then the sync objects for `gitops`.
pub async fn bootstrap<C: Cluster>(
    cluster: &C,
    install: &[Value],
    gitops: &Gitops,
) -> Result<BootstrapReport, BootstrapError> {
    let sync_objects = sync::sync_objects(gitops)?;
    let first = |o: &&Value| {
        matches!(
            o["kind"].as_str(),
            Some("Namespace" | "CustomResourceDefinition")
        )
    };
    let ordered = install
        .iter()
        .filter(first)
        .chain(install.iter().filter(|o| !first(o)))
        .chain(sync_objects.iter());
    let mut report = BootstrapReport::default();
    for object in ordered {
        let action = apply(cluster, object).await?;
        if let Some(r) = ObjectRef::of(object) {
            report.applied.push((r, action));
        }
    }
    if sync_objects[0]["spec"]["secretRef"]["name"] == GIT_AUTH_SECRET {
        let auth = ObjectRef::new("v1", "Secret", Some(NAMESPACE), GIT_AUTH_SECRET);
        if cluster
            .get(&auth)
            .await
            .map_err(|source| ApplyError::Cluster {
                object: Box::new(auth.clone()),
                source,
            })?
            .is_none()
        {
            report.notes.push(format!(
                "the repository is reached over ssh: create the Secret {NAMESPACE}/{GIT_AUTH_SECRET} with a \
                 read-only deploy key (keys identity, identity.pub, known_hosts) so Flux can fetch it"
            ));
        }
    }
    Ok(report)
}
