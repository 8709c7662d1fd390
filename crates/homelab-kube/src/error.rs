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
