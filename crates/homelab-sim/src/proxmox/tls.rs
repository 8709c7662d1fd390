//! The simulator's certificates, shaped like a PVE node's: a self-signed cluster CA (`pve-root-ca.pem`) and a
//! node certificate it signs for 127.0.0.1/localhost, whose SHA-256 fingerprint `GET /nodes` reports. The PEMs
//! ([`SimIdentity`]) can be kept and loaded again, so a restarted simulator keeps its fingerprint.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The node's certificate material as PEM: what a restarted simulator needs to present the same certificate.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimIdentity {
    /// The simulated cluster CA certificate.
    pub ca_pem: String,
    /// The node certificate (signed by the CA).
    pub cert_pem: String,
    /// The node certificate's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for SimIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimIdentity").finish_non_exhaustive()
    }
}

/// The loaded certificate material.
pub(crate) struct SimCert {
    pub identity: SimIdentity,
    pub server_config: Arc<rustls::ServerConfig>,
    /// Colon-separated upper-case SHA-256 of the node certificate.
    pub fingerprint: String,
}

/// A new CA and node certificate for `node` at `ip`.
pub(crate) fn generate(node: &str, ip: std::net::IpAddr) -> Result<SimIdentity, String> {
    let err = |e: rcgen::Error| format!("certificate generation failed: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        "Proxmox Virtual Environment (simulated)",
    );
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

    let key = KeyPair::generate().map_err(err)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), node.to_string()]).map_err(err)?;
    params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{node}.simulated"));
    let cert = params.signed_by(&key, &ca).map_err(err)?;
    Ok(SimIdentity {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The TLS server configuration and fingerprint of an identity.
pub(crate) fn load(identity: SimIdentity) -> Result<SimCert, String> {
    let pem_err = |what: &str, e: rustls::pki_types::pem::Error| format!("bad {what} PEM: {e}");
    let cert = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
        .map_err(|e| pem_err("node certificate", e))?;
    let ca = CertificateDer::from_pem_slice(identity.ca_pem.as_bytes())
        .map_err(|e| pem_err("CA certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| pem_err("node key", e))?;
    let fingerprint = Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert, ca], key)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    Ok(SimCert {
        identity,
        server_config: Arc::new(server_config),
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_identity_keeps_its_fingerprint() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let identity = generate("pve", ip).expect("generate");
        let first = load(identity.clone()).expect("load");
        let again = load(identity).expect("load again");
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 95);
    }

    #[test]
    fn a_broken_key_is_an_error_not_a_panic() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut identity = generate("pve", ip).expect("generate");
        identity.key_pem = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".into();
        assert!(load(identity).is_err());
    }
}
