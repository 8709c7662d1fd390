//! TLS settings for apid: the unauthenticated maintenance-mode client (optionally pinned by the
//! SHA-256 of the server's public key) and the mutual-TLS client with talosconfig credentials.

use std::fmt;
use std::sync::Arc;

use homelab_tls::{Pin, PinVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::ApidError;

/// SHA-256 of a server certificate's SubjectPublicKeyInfo, used to pin the self-signed
/// maintenance-mode certificate that Talos shows on the console.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits; `:` separators and a `sha256:` prefix are accepted.
    pub fn parse(text: &str) -> Result<Self, ApidError> {
        let cleaned: String = text
            .trim()
            .trim_start_matches("sha256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let bytes = hex::decode(&cleaned).map_err(|e| ApidError::Credentials {
            what: "certificate fingerprint",
            reason: format!("{e}; expected 64 hex digits (SHA-256)"),
        })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| ApidError::Credentials {
            what: "certificate fingerprint",
            reason: "expected 32 bytes (64 hex digits) of SHA-256".into(),
        })?;
        Ok(Self(arr))
    }

    /// The fingerprint of a DER certificate's public key.
    pub fn of_certificate(der: &[u8]) -> Result<Self, ApidError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| ApidError::Credentials {
                what: "server certificate",
                reason: e.to_string(),
            })?;
        Ok(Self(Sha256::digest(cert.public_key().raw).into()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Mutual-TLS material from a talosconfig context: the OS CA, and the `os:admin` client
/// certificate and key (PEM). Talos labels Ed25519 keys `ED25519 PRIVATE KEY`; that is accepted.
#[derive(Clone)]
pub struct ClientCredentials {
    ca: Vec<CertificateDer<'static>>,
    cert: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("ca_certificates", &self.ca.len())
            .field("client_certificates", &self.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientCredentials {
    /// Builds credentials from PEM text (not base64: decode talosconfig values first).
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ApidError> {
        let ca = parse_certs(ca_pem, "OS CA certificate")?;
        let cert = parse_certs(cert_pem, "client certificate")?;
        let key = parse_key(key_pem)?;
        Ok(Self {
            ca,
            cert,
            key: Arc::new(key),
        })
    }
}

fn parse_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, ApidError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApidError::Credentials {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ApidError::Credentials {
            what,
            reason: "no CERTIFICATE block found in the PEM text".into(),
        });
    }
    Ok(certs)
}

/// Parses a private key, accepting the `ED25519 PRIVATE KEY` label Talos writes (PKCS#8 inside).
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, ApidError> {
    let text =
        Zeroizing::new(String::from_utf8_lossy(pem).replace("ED25519 PRIVATE KEY", "PRIVATE KEY"));
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| ApidError::Credentials {
        what: "client key",
        reason: format!("{e}; expected a PEM private key (PKCS#8, SEC1 or PKCS#1)"),
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client config for maintenance mode: no client certificate, server accepted if it matches
/// `pin` (or, without a pin, any server: Talos maintenance mode is unauthenticated by design).
pub(crate) fn maintenance_config(pin: Option<Fingerprint>) -> Result<ClientConfig, ApidError> {
    let provider = provider();
    let verifier = PinVerifier::new(pin, provider.signature_verification_algorithms);
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// Client config for installed mode: the server must chain to the OS CA, and we present the
/// talosconfig client certificate.
pub(crate) fn mutual_config(creds: &ClientCredentials) -> Result<ClientConfig, ApidError> {
    let mut roots = RootCertStore::empty();
    for ca in &creds.ca {
        roots.add(ca.clone()).map_err(|e| ApidError::Credentials {
            what: "OS CA certificate",
            reason: e.to_string(),
        })?;
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_setup)?
        .with_root_certificates(roots)
        .with_client_auth_cert(creds.cert.clone(), creds.key.clone_key())
        .map_err(|e| ApidError::Credentials {
            what: "client certificate and key",
            reason: e.to_string(),
        })?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

fn tls_setup(e: rustls::Error) -> ApidError {
    ApidError::Credentials {
        what: "TLS settings",
        reason: e.to_string(),
    }
}

/// The server name to verify: the IP address itself (apid certificates carry IP SANs).
pub(crate) fn server_name(ip: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

/// Raised by the maintenance verifier when the server's key does not match the pin.
#[derive(Debug)]
struct PinMismatch {
    expected: Fingerprint,
    actual: Fingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "public key fingerprint {} does not match the pinned {}",
            self.actual, self.expected
        )
    }
}

impl std::error::Error for PinMismatch {}

/// The server's public key must be the pinned one (Talos shows its fingerprint on the console).
impl Pin for Fingerprint {
    fn check(&self, leaf: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let actual = Fingerprint::of_certificate(leaf).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if actual == *self {
            return Ok(());
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                expected: *self,
                actual,
            }))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_accepts_colons_and_prefix() {
        let hex64 = "ab".repeat(32);
        let colons = (0..32).map(|_| "ab").collect::<Vec<_>>().join(":");
        assert_eq!(
            Fingerprint::parse(&hex64).ok(),
            Fingerprint::parse(&format!("sha256:{colons}")).ok()
        );
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn talos_ed25519_key_label_is_accepted() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map(|k| k.serialize_pem());
        let Ok(pem) = key else {
            panic!("key generation")
        };
        let talos = pem.replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
        assert!(parse_key(talos.as_bytes()).is_ok());
        assert!(parse_key(b"not a key").is_err());
    }
}
