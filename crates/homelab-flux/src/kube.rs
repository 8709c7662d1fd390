//! [`Cluster`] for `homelab-kube`'s client. Errors about Secrets keep only the HTTP code and reason, so
//! nothing a Secret holds can travel into a message.

use homelab_kube::{Applied, KubeClient, KubeError};
use serde_json::Value;

use crate::cluster::{Action, Cluster, ClusterError, ObjectRef};

impl Cluster for KubeClient {
    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        KubeClient::get(
            self,
            &r.api_version,
            &r.kind,
            r.namespace.as_deref(),
            &r.name,
        )
        .await
        .map_err(|e| convert(e, &r.kind))
    }

    async fn apply(&self, object: &Value) -> Result<Action, ClusterError> {
        let kind = object["kind"].as_str().unwrap_or_default();
        match KubeClient::apply(self, object).await {
            Ok(Applied::Created) => Ok(Action::Created),
            Ok(Applied::Updated) => Ok(Action::Updated),
            Ok(Applied::Unchanged) => Ok(Action::Unchanged),
            Err(e) => Err(convert(e, kind)),
        }
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        KubeClient::list(self, api_version, kind, namespace)
            .await
            .map_err(|e| convert(e, kind))
    }
}

fn convert(e: KubeError, kind: &str) -> ClusterError {
    let code = e.status_code();
    let message = match (&e, kind) {
        (KubeError::Api { code, reason, .. }, "Secret") => format!("{code} {reason}"),
        _ => e.to_string(),
    };
    match (code, &e) {
        (Some(404), _) | (_, KubeError::UnknownKind { .. }) => ClusterError::NotFound(message),
        (Some(409), _) => ClusterError::Conflict(message),
        (_, KubeError::Unreachable { .. }) => ClusterError::Unreachable(message),
        _ => ClusterError::Refused(message),
    }
}
