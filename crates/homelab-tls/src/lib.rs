//! The pinned-certificate verifier: trust is a fingerprint of the server's leaf certificate (a
//! self-signed Proxmox or Talos maintenance certificate has no chain to check), or nothing at all
//! when the caller explicitly asked for that, and the handshake signatures are still verified so
//! the peer must hold the certificate's key. What a fingerprint covers (the whole certificate for
//! Proxmox, the public key for Talos) and how a mismatch reads belong to each client: they
//! implement [`Pin`]. A leaf crate so homelab-proxmox and homelab-apid need not depend on each other.

use std::fmt::Debug;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A pinned fingerprint: decides whether a server's leaf certificate is the pinned one.
pub trait Pin: Debug + Send + Sync {
    /// `Ok` when `leaf` matches; otherwise the error the TLS handshake fails with.
    fn check(&self, leaf: &CertificateDer<'_>) -> Result<(), rustls::Error>;
}

/// Accepts the leaf `pin` matches (any leaf when `pin` is `None`) and verifies the handshake
/// signatures with `algorithms` (the crypto provider's).
#[derive(Debug)]
pub struct PinVerifier<P> {
    pin: Option<P>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl<P: Pin> PinVerifier<P> {
    /// A verifier for `pin`; `None` trusts any certificate (only when the user asked for it).
    pub fn new(pin: Option<P>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { pin, algorithms }
    }
}

impl<P: Pin> ServerCertVerifier for PinVerifier<P> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin {
            pin.check(end_entity)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
