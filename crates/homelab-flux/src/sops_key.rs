//! `flux sops-key`: the `flux-system/sops-age` Secret kustomize-controller decrypts SOPS files with,
//! holding the operator's age identity under `age.agekey`. Idempotent: no write when it already holds it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use zeroize::Zeroize as _;

use crate::apply::{ApplyError, apply};
use crate::cluster::{Action, Cluster, ObjectRef};
use crate::identity::AgeIdentity;
use crate::sync::{NAMESPACE, SOPS_SECRET, SOPS_SECRET_KEY};

/// Creates or replaces the Secret (exactly one key); the namespace is created when missing.
pub async fn sops_key<C: Cluster>(
    cluster: &C,
    identity: &AgeIdentity,
) -> Result<Action, ApplyError> {
    apply(
        cluster,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )
    .await?;
    let r = ObjectRef::new("v1", "Secret", Some(NAMESPACE), SOPS_SECRET);
    let desired = Scrubbed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SOPS_SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {SOPS_SECRET_KEY: STANDARD.encode(identity.expose())},
    }));
    let live = cluster
        .get(&r)
        .await
        .map_err(|source| ApplyError::Cluster {
            object: Box::new(r.clone()),
            source,
        })?
        .map(Scrubbed);
    // The data must be exactly the identity: a Secret holding it among other keys is replaced too.
    if let Some(live) = &live
        && live.0["data"] == desired.0["data"]
        && live.0["type"] == desired.0["type"]
    {
        return Ok(Action::Unchanged);
    }
    apply(cluster, &desired.0).await
}

/// A JSON value that may hold key material: its strings are zeroed when dropped.
struct Scrubbed(Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}
