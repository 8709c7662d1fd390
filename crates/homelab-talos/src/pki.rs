//! Certificates the way Talos makes them: the four cluster CAs, and leaf certificates (client and server)
//! signed by one of them; plus reading a certificate's subject and validity for expiry reports.

use std::net::IpAddr;
use std::time::Duration;

use rand::RngCore as _;
use rand::rngs::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, PublicKeyData as _,
    SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::pem::{self, KeyAlgorithm, PemError};
use crate::secret::Secret;

/// Validity of the CAs Talos generates (87600 h = 10 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(87_600 * 3600);
/// Default validity of a Talos API client certificate (`TalosAPIDefaultCertificateValidityDuration`, 1 year).
pub const CLIENT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Backdating of `notBefore` so that a node whose clock is a little behind still accepts a fresh certificate.
const NOT_BEFORE_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a certificate or key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what}: {source}")]
    Pem {
        what: String,
        #[source]
        source: PemError,
    },
    #[error("{what}: the certificate is not valid X.509 DER")]
    Certificate { what: String },
    #[error("{what}: the private key cannot be loaded ({reason})")]
    Key { what: String, reason: String },
    #[error("{what}: the private key does not belong to the certificate")]
    KeyMismatch { what: String },
    #[error("{what}: a {found:?} key where Talos uses {expected}")]
    Algorithm {
        what: String,
        found: KeyAlgorithm,
        expected: &'static str,
    },
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

/// A certificate with its private key, both PEM text as Talos writes them (the key with the Talos label,
/// e.g. `ED25519 PRIVATE KEY`). The key is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertAndKey {
    /// Certificate PEM.
    pub crt: String,
    /// Private key PEM.
    pub key: Secret,
}

/// The certificate authorities in a Talos secrets bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKind {
    /// Talos API (apid/trustd) CA: Ed25519, O=talos.
    Os,
    /// Kubernetes CA: ECDSA P-256, O=kubernetes.
    Kubernetes,
    /// Kubernetes front-proxy (aggregator) CA: ECDSA P-256, CN=front-proxy.
    Aggregator,
    /// etcd CA: ECDSA P-256, O=etcd.
    Etcd,
}

impl CaKind {
    fn algorithm(self) -> KeyAlgorithm {
        match self {
            CaKind::Os => KeyAlgorithm::Ed25519,
            _ => KeyAlgorithm::EcdsaP256,
        }
    }

    fn subject(self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        match self {
            CaKind::Os => dn.push(DnType::OrganizationName, "talos"),
            CaKind::Kubernetes => dn.push(DnType::OrganizationName, "kubernetes"),
            CaKind::Aggregator => dn.push(DnType::CommonName, "front-proxy"),
            CaKind::Etcd => dn.push(DnType::OrganizationName, "etcd"),
        }
        dn
    }
}

/// What a leaf certificate is for.
#[derive(Clone, Debug, Default)]
pub struct LeafRequest {
    /// Subject common name (may be empty: Talos client certificates carry only O=roles).
    pub common_name: Option<String>,
    /// Subject organizations (Talos roles such as `os:admin`; Kubernetes groups such as `system:masters`).
    pub organizations: Vec<String>,
    /// IP address SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// DNS name SANs.
    pub dns_names: Vec<String>,
    /// ExtKeyUsage serverAuth.
    pub server_auth: bool,
    /// ExtKeyUsage clientAuth.
    pub client_auth: bool,
    /// Validity from now.
    pub validity: Duration,
}

/// Generate a new self-signed CA of the given kind, as Talos does.
pub fn generate_ca(kind: CaKind) -> Result<CertAndKey, PkiError> {
    let (key_pair, key_pem) = new_key(kind.algorithm())?;
    let mut params = CertificateParams::default();
    params.distinguished_name = kind.subject();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    set_validity(&mut params, CA_VALIDITY);
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| PkiError::Generate(e.to_string()))?;
    Ok(CertAndKey {
        crt: cert.pem(),
        key: key_pem,
    })
}

/// Issue a leaf certificate signed by `ca`; its key uses the CA's algorithm (Ed25519 under the OS CA).
pub fn issue(ca: &CertAndKey, request: &LeafRequest) -> Result<CertAndKey, PkiError> {
    let (ca_key, algorithm) = load_key(&ca.key, "CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.crt, &ca_key).map_err(|e| PkiError::Certificate {
        what: format!("CA certificate ({e})"),
    })?;
    let (key_pair, key_pem) = new_key(algorithm)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for org in &request.organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    if let Some(cn) = &request.common_name {
        dn.push(DnType::CommonName, cn.as_str());
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if algorithm == KeyAlgorithm::EcdsaP256 {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    if request.server_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if request.client_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    for ip in &request.ip_addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for name in &request.dns_names {
        let name = name.as_str().try_into().map_err(|_| {
            PkiError::Generate(format!("`{name}` is not a valid DNS name for a SAN"))
        })?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, request.validity);
    params.serial_number = Some(random_serial());
    let cert = params
        .signed_by(&key_pair, &issuer)
        .map_err(|e| PkiError::Generate(e.to_string()))?;
    Ok(CertAndKey {
        crt: cert.pem(),
        key: key_pem,
    })
}

/// A Talos API client certificate from the OS CA: `O=<roles>`, ExtKeyUsage clientAuth (what
/// `talosctl gen config` puts into a talosconfig; roles e.g. `["os:admin"]`).
pub fn talos_client_cert(
    os_ca: &CertAndKey,
    roles: &[&str],
    validity: Duration,
) -> Result<CertAndKey, PkiError> {
    issue(
        os_ca,
        &LeafRequest {
            organizations: roles.iter().map(|r| r.to_string()).collect(),
            client_auth: true,
            validity,
            ..LeafRequest::default()
        },
    )
}

/// A node's apid server certificate from the OS CA: CN=hostname, SANs = the IPs (and the hostname).
pub fn talos_server_cert(
    os_ca: &CertAndKey,
    hostname: &str,
    ips: &[IpAddr],
    validity: Duration,
) -> Result<CertAndKey, PkiError> {
    issue(
        os_ca,
        &LeafRequest {
            common_name: Some(hostname.to_string()),
            ip_addresses: ips.to_vec(),
            dns_names: vec![hostname.to_string()],
            server_auth: true,
            validity,
            ..LeafRequest::default()
        },
    )
}

/// Subject and validity of a certificate, for expiry reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject as `O=…, CN=…` (RFC 4514 order as printed by x509-parser).
    pub subject: String,
    /// Subject organizations (Talos roles / Kubernetes groups).
    pub organizations: Vec<String>,
    pub not_before: OffsetDateTime,
    /// When the certificate expires.
    pub not_after: OffsetDateTime,
}

/// Read subject and validity (notAfter = expiry) of a PEM certificate.
pub fn cert_info(crt_pem: &str) -> Result<CertInfo, PkiError> {
    let what = || "certificate".to_string();
    let pem = pem::decode(crt_pem).map_err(|source| PkiError::Pem {
        what: what(),
        source,
    })?;
    let (_, cert) =
        X509Certificate::from_der(&pem.der).map_err(|_| PkiError::Certificate { what: what() })?;
    let organizations = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        organizations,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

impl CertInfo {
    /// notAfter as RFC 3339 UTC, e.g. `2036-11-25T21:00:00Z`.
    pub fn expires(&self) -> String {
        rfc3339(self.not_after)
    }
}

/// Format a timestamp as RFC 3339 UTC with second precision.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// When a PEM certificate expires (its notAfter).
pub fn not_after(crt_pem: &str) -> Result<OffsetDateTime, PkiError> {
    cert_info(crt_pem).map(|i| i.not_after)
}

/// Check that a certificate parses, its key loads, and the key belongs to it; returns the key algorithm.
/// `what` names the pair in errors (e.g. `certs.os`).
pub fn check_pair(pair: &CertAndKey, what: &str) -> Result<KeyAlgorithm, PkiError> {
    let pem = pem::decode(&pair.crt).map_err(|source| PkiError::Pem {
        what: format!("{what}.crt"),
        source,
    })?;
    let (_, cert) = X509Certificate::from_der(&pem.der).map_err(|_| PkiError::Certificate {
        what: format!("{what}.crt"),
    })?;
    let (key, algorithm) = load_key(&pair.key, &format!("{what}.key"))?;
    if key.subject_public_key_info() != cert.public_key().raw {
        return Err(PkiError::KeyMismatch {
            what: what.to_string(),
        });
    }
    Ok(algorithm)
}

/// Load a Talos key PEM (Ed25519 or P-256) into an rcgen signing key.
pub fn load_key(key: &Secret, what: &str) -> Result<(KeyPair, KeyAlgorithm), PkiError> {
    let pkcs8 = pem::private_key_to_pkcs8(key.expose()).map_err(|source| PkiError::Pem {
        what: what.to_string(),
        source,
    })?;
    let alg = match pkcs8.algorithm {
        KeyAlgorithm::Ed25519 => &PKCS_ED25519,
        KeyAlgorithm::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Rsa => {
            return Err(PkiError::Algorithm {
                what: what.to_string(),
                found: KeyAlgorithm::Rsa,
                expected: "Ed25519 or ECDSA P-256",
            });
        }
    };
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.der[..].into(), alg).map_err(|e| {
        PkiError::Key {
            what: what.to_string(),
            reason: e.to_string(),
        }
    })?;
    Ok((key, pkcs8.algorithm))
}

/// A new key pair and its PEM in the Talos encoding.
fn new_key(algorithm: KeyAlgorithm) -> Result<(KeyPair, Secret), PkiError> {
    match algorithm {
        KeyAlgorithm::Ed25519 => {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(&mut seed[..]);
            let der = pem::ed25519_pkcs8_from_seed(&seed);
            let key = KeyPair::from_pkcs8_der_and_sign_algo(&der[..].into(), &PKCS_ED25519)
                .map_err(|e| PkiError::Generate(e.to_string()))?;
            Ok((
                key,
                Secret::new(pem::encode(pem::ED25519_PRIVATE_KEY, &der)),
            ))
        }
        KeyAlgorithm::EcdsaP256 => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map_err(|e| PkiError::Generate(e.to_string()))?;
            let sec1 =
                pem::ec_pkcs8_to_sec1(key.serialized_der()).map_err(|source| PkiError::Pem {
                    what: "generated EC key".into(),
                    source,
                })?;
            Ok((key, Secret::new(pem::encode(pem::EC_PRIVATE_KEY, &sec1))))
        }
        KeyAlgorithm::Rsa => Err(PkiError::Generate(
            "RSA certificates are not issued; only the service-account key is RSA".into(),
        )),
    }
}

/// A new RSA-4096 private key as PKCS#1 PEM (`RSA PRIVATE KEY`), as Talos makes the service-account key.
pub fn generate_rsa_4096() -> Result<Secret, PkiError> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let key =
        rsa::RsaPrivateKey::new(&mut OsRng, 4096).map_err(|e| PkiError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| PkiError::Generate(e.to_string()))?;
    Ok(Secret::new(pem::encode(
        pem::RSA_PRIVATE_KEY,
        der.as_bytes(),
    )))
}

/// Check a service-account key: RSA (PKCS#1) or, from old bundles, ECDSA P-256.
pub fn check_service_account_key(key: &Secret, what: &str) -> Result<KeyAlgorithm, PkiError> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    let parsed = pem::private_key_to_pkcs8(key.expose()).map_err(|source| PkiError::Pem {
        what: what.to_string(),
        source,
    })?;
    match parsed.algorithm {
        KeyAlgorithm::Rsa => {
            rsa::RsaPrivateKey::from_pkcs1_der(&parsed.der).map_err(|e| PkiError::Key {
                what: what.to_string(),
                reason: e.to_string(),
            })?;
            Ok(KeyAlgorithm::Rsa)
        }
        _ => load_key(key, what).map(|(_, alg)| alg),
    }
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - NOT_BEFORE_SKEW;
    params.not_after = now + validity;
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}
