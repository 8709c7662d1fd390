//! Typed errors of the apid client: transport and TLS failures classified the way Talos fails
//! them, gRPC status codes, and per-node errors reported inside response metadata.

use std::net::SocketAddr;

use thiserror::Error;
use tonic::Code;

/// Everything that can go wrong talking to a Talos apid.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApidError {
    /// The client credentials (PEM material) could not be used.
    #[error("invalid {what}: {reason}")]
    Credentials {
        /// which input (CA certificate, client certificate, client key, node name, fingerprint)
        what: &'static str,
        /// what is wrong with it
        reason: String,
    },

    /// TCP connect or the TLS/HTTP2 handshake failed for a reason other than certificates.
    #[error("cannot reach apid at {endpoint}: {message}")]
    Unreachable {
        /// the apid address
        endpoint: SocketAddr,
        /// the transport error chain, rendered
        message: String,
    },

    /// The node demands a client certificate (Talos installed mode) and none was sent.
    #[error(
        "apid at {endpoint} requires a client certificate (TLS alert CertificateRequired); \
         the node is out of maintenance mode: connect with the talosconfig credentials"
    )]
    ClientCertificateRequired {
        /// the apid address
        endpoint: SocketAddr,
    },

    /// The node refused the client certificate during the handshake (not issued by its OS CA).
    #[error(
        "apid at {endpoint} rejected the client certificate ({alert}); it must be issued by the \
         cluster's OS CA (talosconfig from this cluster's secrets bundle)"
    )]
    ClientCertificateRejected {
        /// the apid address
        endpoint: SocketAddr,
        /// the TLS alert the server sent
        alert: String,
    },

    /// The server certificate does not chain to the expected CA, or does not match the pin.
    #[error("server certificate of apid at {endpoint} is not trusted: {reason}")]
    ServerCertificateUntrusted {
        /// the apid address
        endpoint: SocketAddr,
        /// why verification failed
        reason: String,
    },

    /// The call completed with a non-OK gRPC status.
    #[error("{method} on {endpoint} failed with {code:?}: {message}")]
    Rpc {
        /// the apid address
        endpoint: SocketAddr,
        /// the RPC name
        method: &'static str,
        /// the gRPC status code
        code: Code,
        /// the status message from the server
        message: String,
    },

    /// A control-plane-only API (Kubeconfig, etcd calls) was asked of a worker: Talos answers
    /// `Unimplemented "<api> is only available on control plane nodes"`.
    #[error(
        "{method} on {endpoint}: the node is a worker, and Talos serves {method} only on control \
         plane nodes ({message}); ask a control-plane node's address"
    )]
    NotControlPlane {
        /// the apid address
        endpoint: SocketAddr,
        /// the RPC name
        method: &'static str,
        /// the status message from the server
        message: String,
    },

    /// The call succeeded but a response element carried a per-node error in its metadata.
    #[error("{method}: node {node} reported an error ({code:?}): {message}")]
    Node {
        /// the RPC name
        method: &'static str,
        /// hostname from the metadata (or the targeted node)
        node: String,
        /// the status code from `metadata.status`, when present
        code: Option<Code>,
        /// `metadata.error` or `metadata.status.message`
        message: String,
    },

    /// The server answered OK but sent no response element.
    #[error("{method} on {endpoint} returned no response message")]
    EmptyResponse {
        /// the apid address
        endpoint: SocketAddr,
        /// the RPC name
        method: &'static str,
    },

    /// The Kubeconfig stream was not a tar.gz archive holding a `kubeconfig` file.
    #[error("kubeconfig from {endpoint} is unusable: {reason}")]
    KubeconfigArchive {
        /// the apid address
        endpoint: SocketAddr,
        /// what is wrong with the archive
        reason: String,
    },

    /// Bootstrap kept failing with a retryable status until the retry bound was reached.
    #[error(
        "bootstrap on {endpoint} still not possible after {attempts} attempts: {last}; \
         check that the node finished installing and its time is in sync"
    )]
    BootstrapGaveUp {
        /// the apid address
        endpoint: SocketAddr,
        /// how many attempts were made
        attempts: u32,
        /// the last error
        last: Box<ApidError>,
    },
}

impl ApidError {
    /// The gRPC status code of an RPC or per-node failure, if this error has one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            Self::Node { code, .. } => *code,
            Self::NotControlPlane { .. } => Some(Code::Unimplemented),
            Self::BootstrapGaveUp { last, .. } => last.code(),
            _ => None,
        }
    }

    /// Builds the error for a failed RPC, recognising TLS rejections hidden in the source chain.
    pub(crate) fn from_status(
        endpoint: SocketAddr,
        method: &'static str,
        status: &tonic::Status,
    ) -> Self {
        if let Some(tls) = classify_chain(endpoint, status) {
            return tls;
        }
        if status.code() == tonic::Code::Unimplemented
            && status
                .message()
                .contains("only available on control plane nodes")
        {
            return Self::NotControlPlane {
                endpoint,
                method,
                message: status.message().to_owned(),
            };
        }
        Self::Rpc {
            endpoint,
            method,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    /// Builds the error for a failed connect.
    pub(crate) fn from_transport(endpoint: SocketAddr, err: &tonic::transport::Error) -> Self {
        if let Some(tls) = classify_chain(endpoint, err) {
            return tls;
        }
        Self::Unreachable {
            endpoint,
            message: render_chain(err),
        }
    }
}

/// Renders an error and its sources as `a: b: c`.
pub(crate) fn render_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Finds a rustls error in the chain (directly or inside an `io::Error`) and maps it.
fn classify_chain(
    endpoint: SocketAddr,
    err: &(dyn std::error::Error + 'static),
) -> Option<ApidError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(classify_rustls(endpoint, r));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(classify_rustls(endpoint, r));
        }
        cur = e.source();
    }
    classify_text(endpoint, &render_chain(err))
}

/// HTTP/2 keeps only the text of I/O errors, so a TLS alert received after the handshake (TLS
/// 1.3 reports client-certificate rejections there) arrives as a message, not a typed error.
fn classify_text(endpoint: SocketAddr, text: &str) -> Option<ApidError> {
    if let Some(rest) = text.split("received fatal alert: ").nth(1) {
        let alert: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        return Some(if alert == "CertificateRequired" {
            ApidError::ClientCertificateRequired { endpoint }
        } else {
            ApidError::ClientCertificateRejected { endpoint, alert }
        });
    }
    let rest = text.split("invalid peer certificate: ").nth(1)?;
    let reason = rest.split(": ").next().unwrap_or(rest).to_owned();
    Some(ApidError::ServerCertificateUntrusted { endpoint, reason })
}

fn classify_rustls(endpoint: SocketAddr, err: &rustls::Error) -> ApidError {
    use rustls::AlertDescription as A;
    match err {
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            ApidError::ClientCertificateRequired { endpoint }
        }
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnknownCA
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::AccessDenied
            | A::DecryptError),
        ) => ApidError::ClientCertificateRejected {
            endpoint,
            alert: format!("{alert:?}"),
        },
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            ApidError::ServerCertificateUntrusted {
                endpoint,
                reason: other.to_string(),
            }
        }
        rustls::Error::InvalidCertificate(reason) => ApidError::ServerCertificateUntrusted {
            endpoint,
            reason: reason.to_string(),
        },
        other => ApidError::Unreachable {
            endpoint,
            message: format!("TLS: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_alert_text_is_classified() {
        let ep: SocketAddr = ([127, 0, 0, 1], 50000).into();
        let required = classify_text(
            ep,
            "transport error: received fatal alert: CertificateRequired",
        );
        assert!(matches!(
            required,
            Some(ApidError::ClientCertificateRequired { .. })
        ));
        let rejected = classify_text(ep, "io: received fatal alert: UnknownCA");
        assert!(
            matches!(rejected, Some(ApidError::ClientCertificateRejected { alert, .. }) if alert == "UnknownCA")
        );
        let untrusted = classify_text(ep, "invalid peer certificate: UnknownIssuer");
        assert!(
            matches!(untrusted, Some(ApidError::ServerCertificateUntrusted { reason, .. }) if reason == "UnknownIssuer")
        );
        assert!(classify_text(ep, "connection refused").is_none());
    }
}
