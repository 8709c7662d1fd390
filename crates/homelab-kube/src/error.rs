//! Typed errors of the Kubernetes client, carrying the URL or file that failed and the API
//! server's own `Status` reason and message.

/// Everything that can go wrong talking to the Kubernetes API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// The kubeconfig could not be read or resolved.
    #[error("kubeconfig {source_name}: {reason}")]
    Kubeconfig {
        /// file path or `<kubeconfig>`
        source_name: String,
        /// what is wrong
        reason: String,
    },
    /// The TLS settings from the kubeconfig are unusable.
    #[error("TLS settings from the kubeconfig: {reason}")]
    Tls {
        /// what is wrong
        reason: String,
    },
    /// The request did not get an HTTP response.
    #[error(
        "cannot reach the Kubernetes API at {url}: {message}; check that the cluster is up and the kubeconfig server address"
    )]
    Unreachable {
        /// request URL
        url: String,
        /// transport error chain
        message: String,
    },
    /// The API server answered with an error `Status`.
    #[error("{method} {url} failed with {code} {reason}: {message}")]
    Api {
        /// HTTP method
        method: String,
        /// request URL
        url: String,
        /// HTTP status code
        code: u16,
        /// Status reason (`NotFound`, `Conflict`, `Forbidden`...)
        reason: String,
        /// Status message
        message: String,
    },
    /// The response body was not what the API promises.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// request URL
        url: String,
        /// what is wrong
        reason: String,
    },
    /// The object's apiVersion/kind is not served by the cluster (CRD not installed?).
    #[error(
        "the cluster does not serve kind {kind} in {api_version}; is its CustomResourceDefinition installed?"
    )]
    UnknownKind {
        /// apiVersion of the object
        api_version: String,
        /// kind of the object
        kind: String,
    },
    /// The object to apply is malformed.
    #[error("invalid object: {reason}")]
    InvalidObject {
        /// what is wrong
        reason: String,
    },
    /// A drain gave up: pods were still on the node when the timeout ran out.
    #[error(
        "draining node {node} timed out after {}s; still there: {}; let the workloads run elsewhere (another schedulable, Ready node with room) or relax the PodDisruptionBudget named, then run the removal again (it resumes the drain)",
        timeout.as_secs(),
        stuck_list(pods)
    )]
    DrainTimeout {
        /// the node being drained
        node: String,
        /// how long the drain waited
        timeout: std::time::Duration,
        /// every pod still there, with why
        pods: Vec<StuckPod>,
    },
    /// A drain refused to start: some pods would not come back anywhere once evicted.
    #[error(
        "cannot drain node {node}: {reason}: {}; nothing was evicted — delete those pods yourself (or run them under a Deployment, StatefulSet or DaemonSet) and retry",
        pods.join(", ")
    )]
    DrainRefused {
        /// the node being drained
        node: String,
        /// why (kubectl's words for the filter that refused them)
        reason: String,
        /// the pods refused, as `namespace/name`
        pods: Vec<String>,
    },
}

/// A pod a drain could not get off its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckPod {
    /// `namespace/name`
    pub pod: String,
    /// the PodDisruptionBudget that refused its eviction, as `namespace/name`, when known
    pub budget: Option<String>,
    /// the API server's last refusal, or where the pod stands (`evicted, still terminating`)
    pub reason: String,
}

fn stuck_list(pods: &[StuckPod]) -> String {
    pods.iter()
        .map(|p| match &p.budget {
            Some(b) => format!(
                "{} (blocked by PodDisruptionBudget {b}: {})",
                p.pod, p.reason
            ),
            None => format!("{} ({})", p.pod, p.reason),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl KubeError {
    pub(crate) fn with_source(self, name: &str) -> Self {
        match self {
            Self::Kubeconfig { reason, .. } => Self::Kubeconfig {
                source_name: name.to_owned(),
                reason,
            },
            other => other,
        }
    }

    /// The HTTP status code of an API error.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}
