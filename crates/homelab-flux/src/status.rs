//! Flux Kustomization readiness (the Ready condition of each Kustomization in flux-system), for
//! `homelabctl status`.

use serde::Serialize;
use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::sync::NAMESPACE;

/// One Kustomization's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KustomizationStatus {
    pub name: String,
    /// `Some(true)` Ready, `Some(false)` not ready, `None` no Ready condition yet (never reconciled).
    pub ready: Option<bool>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The source revision last applied (`main@sha1:…`).
    pub revision: Option<String>,
    pub suspended: bool,
}

/// Readiness of every Flux Kustomization in flux-system, sorted by name.
pub async fn kustomization_status<C: Cluster>(
    cluster: &C,
) -> Result<Vec<KustomizationStatus>, ClusterError> {
    let items = cluster
        .list(
            crate::sync::KUSTOMIZATION_API_VERSION,
            crate::sync::KUSTOMIZATION_KIND,
            Some(NAMESPACE),
        )
        .await?;
    let mut out: Vec<KustomizationStatus> = items.iter().map(status_of).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn status_of(ks: &Value) -> KustomizationStatus {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let ready = ks["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    KustomizationStatus {
        name: ks["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ready: ready.and_then(|c| match c["status"].as_str() {
            Some("True") => Some(true),
            Some("False") => Some(false),
            _ => None,
        }),
        reason: ready.and_then(|c| text(&c["reason"])),
        message: ready.and_then(|c| text(&c["message"])),
        revision: text(&ks["status"]["lastAppliedRevision"]),
        suspended: ks["spec"]["suspend"].as_bool().unwrap_or(false),
    }
}
