//! What adopting an existing cluster reads from a control plane's machine configuration: the secrets bundle,
//! as `talosctl gen secrets --from-controlplane-config` (and `talhelper gensecret --from-configfile`) recover it
//! (Talos' `secrets.NewBundleFromConfig`): the cluster CAs and service-account key, the cluster id and secret,
//! the trustd token, the bootstrap token and the encryption secrets. The admin client certificate is not in a
//! machine config; it is minted from the OS CA when a talosconfig is written.
//!
//! [`facts`] reads what homelab.yaml can say about a node from its running config; [`diff`] turns what a
//! render still differs in from the running config into strategic merge patches.

pub mod diff;
pub mod facts;

use serde_json::{Map, Value, json};

use crate::machine_config::RenderedConfig;
use crate::secrets::{SecretsBundle, SecretsError};

/// Recover the secrets bundle from a control plane's machine configuration (YAML, one or more documents).
pub fn bundle_from_machine_config(text: &str) -> Result<SecretsBundle, SecretsError> {
    let config = RenderedConfig::from_yaml(text).map_err(|e| SecretsError::Parse {
        reason: format!("not a Talos machine config: {e}"),
    })?;
    let v1 = config
        .document("v1alpha1", None)
        .ok_or(SecretsError::Missing {
            field: "the v1alpha1 document (machine/cluster)",
        })?;
    let at = |pointer: &str| v1.pointer(pointer).filter(|v| !v.is_null()).cloned();
    if at("/machine/type")
        .and_then(|t| t.as_str().map(str::to_string))
        .as_deref()
        == Some("worker")
    {
        return Err(SecretsError::Field {
            field: "machine.type",
            reason: "a worker's config holds no CA keys: read a control plane's config instead"
                .into(),
        });
    }
    let required =
        |pointer: &str, field: &'static str| at(pointer).ok_or(SecretsError::Missing { field });
    let pair = |pointer: &str, field: &'static str| -> Result<Value, SecretsError> {
        Ok(json!({
            "crt": required(&format!("{pointer}/crt"), field)?,
            "key": required(&format!("{pointer}/key"), field)?,
        }))
    };
    let mut secrets = Map::new();
    secrets.insert(
        "bootstraptoken".into(),
        required("/cluster/token", "cluster.token")?,
    );
    if let Some(s) = at("/cluster/secretboxEncryptionSecret") {
        secrets.insert("secretboxencryptionsecret".into(), s);
    }
    if let Some(s) = at("/cluster/aescbcEncryptionSecret") {
        secrets.insert("aescbcencryptionsecret".into(), s);
    }
    let wire = json!({
        "cluster": {
            "id": required("/cluster/id", "cluster.id")?,
            "secret": required("/cluster/secret", "cluster.secret")?,
        },
        "secrets": secrets,
        "trustdinfo": {"token": required("/machine/token", "machine.token")?},
        "certs": {
            "etcd": pair("/cluster/etcd/ca", "cluster.etcd.ca")?,
            "k8s": pair("/cluster/ca", "cluster.ca")?,
            "k8saggregator": pair("/cluster/aggregatorCA", "cluster.aggregatorCA")?,
            "k8sserviceaccount": {"key": required("/cluster/serviceAccount/key", "cluster.serviceAccount.key")?},
            "os": pair("/machine/ca", "machine.ca")?,
        },
    });
    let bundle: SecretsBundle = serde_json::from_value(wire).map_err(|e| SecretsError::Parse {
        reason: crate::secrets::redact_parse_error(&e.to_string()),
    })?;
    bundle.validate()?;
    Ok(bundle)
}
