//! `flux reconcile`: ask Flux to reconcile now, the way the flux CLI does — by setting the annotation
//! `reconcile.fluxcd.io/requestedAt` on the Kustomization (and on its source first with `--with-source`).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cluster::{Cluster, ClusterError, ObjectRef};
use crate::sync::NAMESPACE;

/// The annotation Flux controllers watch for on-demand reconciliation.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// Why a reconcile request was not made.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0} does not exist (is Flux bootstrapped? `homelabctl flux bootstrap`)")]
    Missing(Box<ObjectRef>),
    #[error("Kustomization {0} has no spec.sourceRef")]
    NoSource(String),
    #[error("{object}: {source}")]
    Cluster {
        object: Box<ObjectRef>,
        source: ClusterError,
    },
}

/// Annotates Kustomization `name` in flux-system (its source first when `with_source`); returns the
/// objects annotated.
pub async fn reconcile<C: Cluster>(
    cluster: &C,
    name: &str,
    with_source: bool,
) -> Result<Vec<ObjectRef>, ReconcileError> {
    let ks = ObjectRef::new(
        crate::sync::KUSTOMIZATION_API_VERSION,
        crate::sync::KUSTOMIZATION_KIND,
        Some(NAMESPACE),
        name,
    );
    let live = read(cluster, &ks).await?;
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| OffsetDateTime::now_utc().unix_timestamp().to_string());
    let mut targets = Vec::new();
    if with_source {
        let source = &live["spec"]["sourceRef"];
        let field = |key: &str| source[key].as_str();
        let (Some(kind), Some(source_name)) = (field("kind"), field("name")) else {
            return Err(ReconcileError::NoSource(name.to_string()));
        };
        let source_ref = ObjectRef::new(
            field("apiVersion").unwrap_or(crate::sync::SOURCE_API_VERSION),
            kind,
            Some(field("namespace").unwrap_or(NAMESPACE)),
            source_name,
        );
        let source_live = read(cluster, &source_ref).await?;
        annotate(cluster, &source_ref, source_live, &now).await?;
        targets.push(source_ref);
    }
    annotate(cluster, &ks, live, &now).await?;
    targets.push(ks);
    Ok(targets)
}

async fn read<C: Cluster>(cluster: &C, r: &ObjectRef) -> Result<Value, ReconcileError> {
    cluster
        .get(r)
        .await
        .map_err(|source| ReconcileError::Cluster {
            object: Box::new(r.clone()),
            source,
        })?
        .ok_or_else(|| ReconcileError::Missing(Box::new(r.clone())))
}

async fn annotate<C: Cluster>(
    cluster: &C,
    r: &ObjectRef,
    mut live: Value,
    now: &str,
) -> Result<(), ReconcileError> {
    if !live["metadata"]["annotations"].is_object() {
        live["metadata"]["annotations"] = json!({});
    }
    live["metadata"]["annotations"][REQUESTED_AT] = json!(now);
    cluster
        .apply(&live)
        .await
        .map(|_| ())
        .map_err(|source| ReconcileError::Cluster {
            object: Box::new(r.clone()),
            source,
        })
}
