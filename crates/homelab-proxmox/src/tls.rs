//! TLS trust for the Proxmox endpoint: system roots, an extra CA file, a SHA-256 certificate pin, or an
//! explicit, warned `insecure` mode. Always the ring crypto provider; nothing process-global is installed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use homelab_tls::{Pin, PinVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How the client decides to trust the server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// The operating system's trust store (the default).
    SystemRoots,
    /// Only the CA certificates in this PEM file (e.g. the cluster's `pve-root-ca.pem`).
    CaFile(PathBuf),
    /// Accept exactly the leaf certificate with this SHA-256 fingerprint (hostname not checked, as in
    /// PVE's own API clients).
    Fingerprint(Fingerprint),
    /// Accept any certificate. Only when asked for; the client reports a warning.
    Insecure,
}

/// A SHA-256 certificate fingerprint, shown in the colon-separated upper-case hex form Proxmox prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses `AB:CD:…` (32 bytes; colons optional, any case).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Fingerprint {
            value: text.to_string(),
        };
        let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }

    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&parts.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The warning text reported when certificate verification is off.
pub const INSECURE_WARNING: &str = "TLS certificate verification is disabled (insecure): anyone on the path can read the API token; pin the fingerprint instead";

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for a trust mode.
pub(crate) fn client_config(trust: &TlsTrust) -> Result<rustls::ClientConfig> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let config = match trust {
        TlsTrust::SystemRoots => builder
            .with_platform_verifier()
            .map_err(|e| Error::Tls(format!("cannot load the system trust store: {e}")))?
            .with_no_client_auth(),
        TlsTrust::CaFile(path) => {
            let ca_err = |reason: String| Error::CaFile {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| ca_err(format!("not a PEM certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_err(format!("unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_err("no CERTIFICATE block found".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(pinned(Some(*pin), &provider))
            .with_no_client_auth(),
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(pinned(None, &provider))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The certificate's SHA-256 must be the pinned one (hostname not checked, as in PVE's own clients).
impl Pin for Fingerprint {
    fn check(&self, leaf: &CertificateDer<'_>) -> std::result::Result<(), rustls::Error> {
        let got = Fingerprint::of_der(leaf.as_ref());
        if got == *self {
            return Ok(());
        }
        Err(rustls::Error::General(format!(
            "certificate fingerprint mismatch: the server presented {got}, the pin is {self}"
        )))
    }
}

fn pinned(pin: Option<Fingerprint>, provider: &CryptoProvider) -> Arc<PinVerifier<Fingerprint>> {
    Arc::new(PinVerifier::new(
        pin,
        provider.signature_verification_algorithms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_the_colon_hex_form() {
        let text = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
        let fp = Fingerprint::parse(text).expect("valid");
        assert_eq!(fp.to_string(), text);
        assert_eq!(
            Fingerprint::parse(&text.to_lowercase().replace(':', "")).expect("valid"),
            fp
        );
    }

    #[test]
    fn fingerprint_rejects_short_or_non_hex_input() {
        assert!(Fingerprint::parse("AB:CD").is_err());
        assert!(Fingerprint::parse(&"ZZ:".repeat(32)).is_err());
    }

    #[test]
    fn missing_ca_file_names_the_path() {
        let err =
            client_config(&TlsTrust::CaFile("/nonexistent/ca.pem".into())).expect_err("must fail");
        assert!(err.to_string().contains("/nonexistent/ca.pem"));
    }
}
