//! The simulator's certificates, shaped like a PVE node's: a self-signed cluster CA (`pve-root-ca.pem`) and a
//! node certificate it signs for 127.0.0.1/localhost, whose SHA-256 fingerprint `GET /nodes` reports.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The generated certificate material.
pub(crate) struct SimCert {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
    /// Colon-separated upper-case SHA-256 of the node certificate.
    pub fingerprint: String,
}

pub(crate) fn generate(node: &str, ip: std::net::IpAddr) -> Result<SimCert, String> {
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

    let fingerprint = Sha256::digest(cert.der().as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let chain = vec![
        CertificateDer::from(cert.der().to_vec()),
        CertificateDer::from(ca.der().to_vec()),
    ];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    Ok(SimCert {
        ca_pem: ca.pem(),
        server_config: Arc::new(server_config),
        fingerprint,
    })
}
