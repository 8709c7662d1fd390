//! Applying objects whose type may have been registered moments before (a CRD just created): retry
//! while the type is not served yet, up to a minute.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Action, Cluster, ClusterError, ObjectRef};

const TYPE_WAIT: Duration = Duration::from_secs(60);
const TYPE_POLL: Duration = Duration::from_millis(500);

/// Why an object was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("a manifest lacks apiVersion, kind or metadata.name")]
    Malformed,
    #[error("{object}: {source}")]
    Cluster {
        object: Box<ObjectRef>,
        source: ClusterError,
    },
}

/// Applies `object`, waiting for its type to be served.
pub async fn apply<C: Cluster>(cluster: &C, object: &Value) -> Result<Action, ApplyError> {
    let r = ObjectRef::of(object).ok_or(ApplyError::Malformed)?;
    let started = Instant::now();
    loop {
        match cluster.apply(object).await {
            Err(ClusterError::NotFound(_) | ClusterError::Conflict(_))
                if started.elapsed() < TYPE_WAIT =>
            {
                tokio::time::sleep(TYPE_POLL).await;
            }
            other => {
                return other.map_err(|source| ApplyError::Cluster {
                    object: Box::new(r),
                    source,
                });
            }
        }
    }
}

/// Whether `live` holds every field of `desired` with the same value (maps compared key by key,
/// everything else exactly).
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        _ => live == desired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_objects_with_extra_fields_contain_the_desired_ones() {
        let live = json!({"metadata": {"name": "a", "uid": "1"}, "spec": {"x": 1, "y": [1, 2]}, "status": {}});
        assert!(contains(
            &live,
            &json!({"metadata": {"name": "a"}, "spec": {"x": 1}})
        ));
        assert!(!contains(&live, &json!({"spec": {"x": 2}})));
        assert!(!contains(&live, &json!({"spec": {"y": [1]}})));
        assert!(!contains(&live, &json!({"spec": {"z": 1}})));
    }
}
