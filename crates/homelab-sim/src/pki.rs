//! Certificate plumbing for the simulators: load the CAs a machine config carries (base64 PEM,
//! Talos key labels), issue server and client certificates from them, and build rustls server
//! configs that demand client certificates from a CA.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType, SignatureAlgorithm,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use time::{Duration, OffsetDateTime};

/// A certificate plumbing failure, with the input that failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct PkiError {
    /// which input or operation
    pub what: String,
    /// why it failed
    pub reason: String,
}

fn err(what: impl Into<String>, reason: impl ToString) -> PkiError {
    PkiError {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Decodes a machine-config certificate/key field (base64 of PEM text).
pub fn decode_b64_pem(field: &str, value: &str) -> Result<String, PkiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| err(field, format!("not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| err(field, "decoded value is not PEM text"))
}

/// Key algorithm for newly issued leaf certificates.
#[derive(Debug, Clone, Copy)]
pub enum KeyAlg {
    /// Ed25519 (Talos API certificates)
    Ed25519,
    /// ECDSA P-256 (Kubernetes certificates)
    P256,
}

impl KeyAlg {
    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// Parses a private key PEM as Talos writes them: `ED25519 PRIVATE KEY` (PKCS#8 inside),
/// `EC PRIVATE KEY` (SEC1, P-256) or `PRIVATE KEY` (PKCS#8).
pub fn key_pair_from_pem(what: &str, pem: &str) -> Result<KeyPair, PkiError> {
    let relabelled = pem.replace("ED25519 PRIVATE KEY", "PRIVATE KEY");
    let key = PrivateKeyDer::from_pem_slice(relabelled.as_bytes()).map_err(|e| err(what, e))?;
    let pkcs8 = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Sec1(k) => sec1_p256_to_pkcs8(k.secret_sec1_der()),
        _ => {
            return Err(err(
                what,
                "unsupported key type (expected Ed25519 or ECDSA P-256)",
            ));
        }
    };
    KeyPair::try_from(&PrivatePkcs8KeyDer::from(pkcs8)).map_err(|e| err(what, e))
}

/// Wraps a SEC1 `ECPrivateKey` for P-256 in a PKCS#8 `PrivateKeyInfo` (RFC 5208/5915).
fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    const ALG_ID: &[u8] = &[
        0x30, 0x13, // SEQUENCE
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(ALG_ID);
    body.push(0x04);
    der_len(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}

/// A CA loaded from PEM, able to issue certificates.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("key", &"<redacted>").finish()
    }
}

/// An issued certificate and its private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct Issued {
    /// certificate PEM
    pub cert_pem: String,
    /// private key PEM (`PRIVATE KEY`)
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What to put into an issued certificate.
#[derive(Debug, Clone, Default)]
pub struct Leaf {
    /// subject CN
    pub common_name: Option<String>,
    /// subject O entries (Talos and Kubernetes roles/groups)
    pub organizations: Vec<String>,
    /// IP and DNS SANs
    pub sans: Vec<String>,
    /// ServerAuth extended key usage
    pub server: bool,
    /// ClientAuth extended key usage
    pub client: bool,
    /// validity from now
    pub days: i64,
}

impl Ca {
    /// Loads a CA from its certificate and key PEM.
    pub fn from_pem(what: &str, cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = key_pair_from_pem(&format!("{what} key"), key_pem)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| err(format!("{what} certificate"), e))?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| err(format!("{what} certificate"), e))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            issuer,
        })
    }

    /// Generates a self-signed CA (tests and the demo).
    pub fn generate(organization: &str, alg: KeyAlg) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(alg.rcgen()).map_err(|e| err("CA key", e))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("CA certificate", e))?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().clone();
        let issuer = Issuer::new(params, key);
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// The CA certificate PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA certificate DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a leaf certificate with a fresh key.
    pub fn issue(&self, leaf: &Leaf, alg: KeyAlg) -> Result<Issued, PkiError> {
        let key = KeyPair::generate_for(alg.rcgen()).map_err(|e| err("leaf key", e))?;
        let mut params = CertificateParams::default();
        if let Some(cn) = &leaf.common_name {
            params
                .distinguished_name
                .push(DnType::CommonName, cn.as_str());
        }
        for o in &leaf.organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        for san in &leaf.sans {
            params.subject_alt_names.push(match san.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    san.clone()
                        .try_into()
                        .map_err(|e| err(format!("SAN {san}"), e))?,
                ),
            });
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if leaf.server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(leaf.days.max(1));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err("leaf certificate", e))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A TLS server config presenting `server` and requiring a client certificate from this CA.
    pub fn server_config_requiring_clients(
        &self,
        server: &Issued,
        alpn: &[&[u8]],
    ) -> Result<rustls::ServerConfig, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .map_err(|e| err("client CA", e))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| err("client verifier", e))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(server.chain()?, server.private_key()?)
            .map_err(|e| err("server certificate", e))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

impl Issued {
    /// Generates a self-signed certificate (the Talos maintenance-mode certificate).
    pub fn self_signed(sans: &[String], alg: KeyAlg) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(alg.rcgen()).map_err(|e| err("self-signed key", e))?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(|e| err("self-signed SANs", e))?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("self-signed certificate", e))?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The certificate chain (leaf only) as DER.
    pub fn chain(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("issued certificate", e))
    }

    /// The private key as DER.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| err("issued key", e))
    }

    /// A TLS server config presenting this certificate without asking for client certificates.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(self.chain()?, self.private_key()?)
            .map_err(|e| err("server certificate", e))?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

/// The subject Organization values of a DER certificate (Talos roles, Kubernetes groups).
pub fn organizations(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    cert.subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect()
}

/// The subject common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec1_ec_keys_as_talos_writes_them_load() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256);
        let Ok(key) = key else { panic!("keygen") };
        // Rebuild the key the way Go's x509.MarshalECPrivateKey writes it (with [0] parameters).
        let pkcs8 = key.serialize_der();
        let pos = 3 + 3 + 21; // SEQUENCE header, version, AlgorithmIdentifier
        assert_eq!(pkcs8[pos], 0x04);
        let inner = &pkcs8[pos + 2..pos + 2 + pkcs8[pos + 1] as usize]; // ring's ECPrivateKey
        let (scalar, public) = (&inner[5..5 + 34], &inner[5 + 34..]);
        let params = [
            0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
        ];
        let mut body = vec![0x02, 0x01, 0x01];
        body.extend_from_slice(scalar);
        body.extend_from_slice(&params);
        body.extend_from_slice(public);
        let mut sec1 = vec![0x30, body.len() as u8];
        sec1.extend_from_slice(&body);
        let sec1 = &sec1[..];
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(sec1)
        );
        let loaded = key_pair_from_pem("test", &pem);
        assert_eq!(
            loaded.map(|k| k.public_key_raw().to_vec()).ok(),
            Some(key.public_key_raw().to_vec())
        );
    }

    #[test]
    fn issued_client_certificate_carries_roles() {
        let Ok(ca) = Ca::generate("talos", KeyAlg::Ed25519) else {
            panic!("ca")
        };
        let leaf = Leaf {
            organizations: vec!["os:admin".into()],
            client: true,
            days: 1,
            ..Leaf::default()
        };
        let Ok(issued) = ca.issue(&leaf, KeyAlg::Ed25519) else {
            panic!("issue")
        };
        let Ok(chain) = issued.chain() else {
            panic!("chain")
        };
        assert_eq!(organizations(&chain[0]), vec!["os:admin".to_owned()]);
    }
}
