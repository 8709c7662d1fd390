//! PEM text and private-key encodings as Talos writes them: `ED25519 PRIVATE KEY` (PKCS#8 inside),
//! `EC PRIVATE KEY` (SEC1 with the curve named), `RSA PRIVATE KEY` (PKCS#1), and the conversions to the
//! plain PKCS#8 that ring, rcgen and rustls accept.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// PEM label of a certificate.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// PEM label Talos uses for Ed25519 keys (PKCS#8 inside).
pub const ED25519_PRIVATE_KEY: &str = "ED25519 PRIVATE KEY";
/// PEM label of an EC key in SEC1 form.
pub const EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
/// PEM label of an RSA key in PKCS#1 form.
pub const RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";
/// PEM label of a PKCS#8 key.
pub const PRIVATE_KEY: &str = "PRIVATE KEY";

/// Why PEM text or a key inside it could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("no PEM block found (expected `-----BEGIN …-----`)")]
    NoBlock,
    #[error("PEM block `{label}` is not terminated by `-----END {label}-----`")]
    Unterminated { label: String },
    #[error("PEM block `{label}` has invalid base64 content")]
    Base64 { label: String },
    #[error("unsupported private key PEM label `{label}`; Talos uses ED25519/EC/RSA PRIVATE KEY")]
    UnsupportedLabel { label: String },
    #[error("malformed {what} key DER")]
    MalformedKey { what: &'static str },
    #[error("EC key is not on curve P-256, the only curve Talos uses")]
    UnsupportedCurve,
}

/// One decoded PEM block. The DER is zeroed on drop since it is often a private key.
pub struct Pem {
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Encode DER as PEM the way Go's `encoding/pem` does (64-column base64, trailing newline).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decode the first PEM block in `text`.
pub fn decode(text: &str) -> Result<Pem, PemError> {
    let start = text.find("-----BEGIN ").ok_or(PemError::NoBlock)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or(PemError::NoBlock)?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body
        .find(&end_marker)
        .ok_or_else(|| PemError::Unterminated {
            label: label.clone(),
        })?;
    let b64: Zeroizing<String> = Zeroizing::new(
        body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| PemError::Base64 {
            label: label.clone(),
        })?;
    Ok(Pem {
        label,
        der: Zeroizing::new(der),
    })
}

/// The algorithm of a private key, as told by its PEM label and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
    Rsa,
}

const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A private key in the PKCS#8 form that ring/rcgen/rustls load, with its algorithm.
pub struct Pkcs8Key {
    pub algorithm: KeyAlgorithm,
    pub der: Zeroizing<Vec<u8>>,
}

/// Read a Talos private key PEM (any of the labels Talos writes, or plain PKCS#8) as PKCS#8.
/// RSA keys are returned in PKCS#1 form (`der`) since only the `rsa` crate reads them.
pub fn private_key_to_pkcs8(pem_text: &str) -> Result<Pkcs8Key, PemError> {
    let pem = decode(pem_text)?;
    match pem.label.as_str() {
        ED25519_PRIVATE_KEY | PRIVATE_KEY => {
            let algorithm = pkcs8_algorithm(&pem.der)?;
            Ok(Pkcs8Key {
                algorithm,
                der: pem.der,
            })
        }
        EC_PRIVATE_KEY => Ok(Pkcs8Key {
            algorithm: KeyAlgorithm::EcdsaP256,
            der: sec1_to_pkcs8(&pem.der)?,
        }),
        RSA_PRIVATE_KEY => Ok(Pkcs8Key {
            algorithm: KeyAlgorithm::Rsa,
            der: pem.der,
        }),
        other => Err(PemError::UnsupportedLabel {
            label: other.to_string(),
        }),
    }
}

/// Relabel/convert a Talos key PEM to a `PRIVATE KEY` (PKCS#8) PEM for rustls and other PKCS#8 readers.
pub fn to_pkcs8_pem(pem_text: &str) -> Result<Zeroizing<String>, PemError> {
    let key = private_key_to_pkcs8(pem_text)?;
    if key.algorithm == KeyAlgorithm::Rsa {
        return Err(PemError::UnsupportedLabel {
            label: RSA_PRIVATE_KEY.to_string(),
        });
    }
    Ok(Zeroizing::new(encode(PRIVATE_KEY, &key.der)))
}

/// PKCS#8 v1 for an Ed25519 seed, byte for byte what Go's `x509.MarshalPKCS8PrivateKey` writes.
pub fn ed25519_pkcs8_from_seed(seed: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05]);
    der.extend_from_slice(OID_ED25519);
    der.extend_from_slice(&[0x04, 0x22, 0x04, 0x20]);
    der.extend_from_slice(seed);
    der
}

/// Convert a P-256 PKCS#8 key (as ring generates it) to SEC1 with the named curve, as Go's
/// `x509.MarshalECPrivateKey` writes it.
pub fn ec_pkcs8_to_sec1(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, PemError> {
    let bad = PemError::MalformedKey { what: "PKCS#8 EC" };
    let mut outer = Der::new(pkcs8).sequence().ok_or(bad.clone())?;
    outer.expect(0x02).ok_or(bad.clone())?; // version
    let alg = outer.expect(0x30).ok_or(bad.clone())?;
    if !alg.starts_with(OID_EC_PUBLIC_KEY) || !alg.ends_with(OID_P256) {
        return Err(PemError::UnsupportedCurve);
    }
    let inner = outer.expect(0x04).ok_or(bad.clone())?;
    let mut ec = Der::new(inner).sequence().ok_or(bad.clone())?;
    ec.expect(0x02).ok_or(bad.clone())?;
    let private = ec.expect(0x04).ok_or(bad.clone())?;
    let mut public = None;
    while let Some((tag, value)) = ec.next() {
        if tag == 0xa1 {
            public = Some(value);
        }
    }
    let public = public.ok_or(bad)?;
    let mut body = Zeroizing::new(Vec::with_capacity(121));
    body.extend_from_slice(&[0x02, 0x01, 0x01]);
    push_tlv(&mut body, 0x04, private);
    push_tlv(&mut body, 0xa0, OID_P256);
    push_tlv(&mut body, 0xa1, public);
    let mut der = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    push_tlv(&mut der, 0x30, &body);
    Ok(der)
}

/// Wrap a SEC1 P-256 key in PKCS#8 (ring accepts the curve parameters inside).
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Zeroizing<Vec<u8>>, PemError> {
    let bad = PemError::MalformedKey { what: "SEC1 EC" };
    let mut ec = Der::new(sec1).sequence().ok_or(bad.clone())?;
    ec.expect(0x02).ok_or(bad.clone())?;
    ec.expect(0x04).ok_or(bad.clone())?;
    while let Some((tag, value)) = ec.next() {
        if tag == 0xa0 && value != OID_P256 {
            return Err(PemError::UnsupportedCurve);
        }
    }
    let mut alg = Vec::new();
    alg.extend_from_slice(OID_EC_PUBLIC_KEY);
    alg.extend_from_slice(OID_P256);
    let mut body = Zeroizing::new(Vec::with_capacity(sec1.len() + 32));
    body.extend_from_slice(&[0x02, 0x01, 0x00]);
    push_tlv(&mut body, 0x30, &alg);
    push_tlv(&mut body, 0x04, sec1);
    let mut der = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    push_tlv(&mut der, 0x30, &body);
    Ok(der)
}

fn pkcs8_algorithm(der: &[u8]) -> Result<KeyAlgorithm, PemError> {
    let bad = PemError::MalformedKey { what: "PKCS#8" };
    let mut outer = Der::new(der).sequence().ok_or(bad.clone())?;
    outer.expect(0x02).ok_or(bad.clone())?;
    let alg = outer.expect(0x30).ok_or(bad.clone())?;
    if alg.starts_with(OID_ED25519) {
        Ok(KeyAlgorithm::Ed25519)
    } else if alg.starts_with(OID_EC_PUBLIC_KEY) {
        if alg.ends_with(OID_P256) {
            Ok(KeyAlgorithm::EcdsaP256)
        } else {
            Err(PemError::UnsupportedCurve)
        }
    } else if alg.starts_with(&[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ]) {
        Ok(KeyAlgorithm::Rsa)
    } else {
        Err(bad)
    }
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
}

/// A tiny DER TLV reader, enough for the key structures above.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, after) = self.rest.split_first()?;
        let (&first, mut after) = after.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 2 || after.len() < n {
                return None;
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            after = &after[n..];
            len
        };
        if after.len() < len {
            return None;
        }
        let (value, rest) = after.split_at(len);
        self.rest = rest;
        Some((tag, value))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, v) if t == tag => Some(v),
            _ => None,
        }
    }

    fn sequence(mut self) -> Option<Der<'a>> {
        self.expect(0x30).map(Der::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let der = (0u8..=200).collect::<Vec<_>>();
        let text = encode("CERTIFICATE", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let pem = decode(&text).unwrap();
        assert_eq!(pem.label, "CERTIFICATE");
        assert_eq!(&*pem.der, &der);
    }

    #[test]
    fn decode_reports_a_missing_end_marker() {
        let err = decode("-----BEGIN X-----\nAAAA\n").unwrap_err();
        assert_eq!(err, PemError::Unterminated { label: "X".into() });
    }

    #[test]
    fn ed25519_pkcs8_matches_go_layout() {
        let der = ed25519_pkcs8_from_seed(&[7u8; 32]);
        assert_eq!(der.len(), 48);
        assert_eq!(pkcs8_algorithm(&der).unwrap(), KeyAlgorithm::Ed25519);
    }

    #[test]
    fn truncated_der_is_an_error_not_a_panic() {
        for n in 0..20 {
            let _ = sec1_to_pkcs8(&[0x30, 0x77, 0x02, 0x01, 0x01, 0x04][..n.min(6)]);
            let _ = ec_pkcs8_to_sec1(&[0x30, 0x82, 0xff][..n.min(3)]);
        }
    }
}
