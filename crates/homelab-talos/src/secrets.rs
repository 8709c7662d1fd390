//! The Talos secrets bundle: cluster identity, tokens and the four CAs plus the service-account key,
//! generated with Talos' algorithms and read/written in the `talosctl gen secrets` YAML layout, so a bundle
//! made by talosctl, talhelper or the Terraform provider can be imported and a cluster kept.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use rand::RngCore as _;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::pem::KeyAlgorithm;
use crate::pki::{self, CaKind, CertAndKey, PkiError};
use crate::secret::Secret;

/// Why a bundle could not be generated, read or accepted. Messages name the field, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the secrets bundle is not valid YAML in the `talosctl gen secrets` layout: {reason}")]
    Parse { reason: String },
    #[error("`{field}` is missing; a bundle from `talosctl gen secrets` always has it")]
    Missing { field: &'static str },
    #[error("`{field}` is malformed: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{source}")]
    Pki {
        #[from]
        source: PkiError,
    },
    #[error("the bundle could not be written as YAML: {0}")]
    Serialize(String),
}

/// A Talos secrets bundle (`secrets.yaml` of `talosctl gen secrets`). `Debug` never shows secret values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsBundle {
    #[serde(alias = "Cluster")]
    pub cluster: ClusterSecrets,
    #[serde(alias = "Secrets")]
    pub secrets: Secrets,
    #[serde(alias = "TrustdInfo")]
    pub trustdinfo: TrustdInfo,
    #[serde(alias = "Certs")]
    pub certs: Certs,
}

/// `cluster`: the cluster id (discovery) and secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSecrets {
    /// base64url of 32 random bytes.
    #[serde(alias = "Id")]
    pub id: Secret,
    /// std base64 of 32 random bytes.
    #[serde(alias = "Secret")]
    pub secret: Secret,
}

/// `secrets`: the Kubernetes bootstrap token and the encryption-at-rest secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// `[0-9a-z]{6}.[0-9a-z]{16}`.
    #[serde(alias = "BootstrapToken", alias = "bootstrap_token")]
    pub bootstraptoken: Secret,
    /// std base64 of 32 random bytes (secretbox); absent only in bundles of contract ≤ 1.2.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "SecretboxEncryptionSecret",
        alias = "secretbox_encryption_secret"
    )]
    pub secretboxencryptionsecret: Option<Secret>,
    /// Legacy AES-CBC secret (contract ≤ 1.2 bundles).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "AESCBCEncryptionSecret",
        alias = "aescbc_encryption_secret"
    )]
    pub aescbcencryptionsecret: Option<Secret>,
}

/// `trustdinfo`: the token workers present to trustd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustdInfo {
    #[serde(alias = "Token")]
    pub token: Secret,
}

/// `certs`: the CAs and the service-account key, each value base64 of the PEM text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certs {
    /// Deprecated admin client certificate of old bundles; kept as read, never generated.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "Admin",
        with = "b64_pair_opt"
    )]
    pub admin: Option<CertAndKey>,
    #[serde(alias = "Etcd", with = "b64_pair")]
    pub etcd: CertAndKey,
    #[serde(alias = "K8s", with = "b64_pair")]
    pub k8s: CertAndKey,
    #[serde(alias = "K8sAggregator", alias = "k8s_aggregator", with = "b64_pair")]
    pub k8saggregator: CertAndKey,
    #[serde(alias = "K8sServiceAccount", alias = "k8s_serviceaccount")]
    pub k8sserviceaccount: ServiceAccountKey,
    #[serde(alias = "OS", with = "b64_pair")]
    pub os: CertAndKey,
}

/// `certs.k8sserviceaccount`: only a key (RSA-4096 PKCS#1 PEM in current bundles).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountKey {
    #[serde(alias = "Key", with = "b64_secret")]
    pub key: Secret,
}

impl SecretsBundle {
    /// A bundle of fixed, well-formed placeholder values (no key material): for rendering a config only to
    /// check its shape (e.g. the user's patches at `validate` time) without the real, encrypted bundle.
    pub fn placeholder() -> Self {
        let s = |v: &str| Secret::new(v.to_string());
        let pair = || CertAndKey {
            crt: "placeholder".into(),
            key: s("placeholder"),
        };
        Self {
            cluster: ClusterSecrets {
                id: s("cGxhY2Vob2xkZXI="),
                secret: s("cGxhY2Vob2xkZXI="),
            },
            secrets: Secrets {
                bootstraptoken: s("abcdef.0123456789abcdef"),
                secretboxencryptionsecret: Some(s("cGxhY2Vob2xkZXI=")),
                aescbcencryptionsecret: None,
            },
            trustdinfo: TrustdInfo {
                token: s("abcdef.0123456789abcdef"),
            },
            certs: Certs {
                admin: None,
                etcd: pair(),
                k8s: pair(),
                k8saggregator: pair(),
                k8sserviceaccount: ServiceAccountKey {
                    key: s("placeholder"),
                },
                os: pair(),
            },
        }
    }

    /// Generate a new bundle the way `talosctl gen secrets` does for contract 1.12. RSA-4096 generation
    /// takes a few seconds.
    pub fn generate() -> Result<Self, SecretsError> {
        Ok(Self {
            cluster: ClusterSecrets {
                id: Secret::new(URL_SAFE.encode(*random32())),
                secret: Secret::new(STANDARD.encode(*random32())),
            },
            secrets: Secrets {
                bootstraptoken: Secret::new(new_token()),
                secretboxencryptionsecret: Some(Secret::new(STANDARD.encode(*random32()))),
                aescbcencryptionsecret: None,
            },
            trustdinfo: TrustdInfo {
                token: Secret::new(new_token()),
            },
            certs: Certs {
                admin: None,
                etcd: pki::generate_ca(CaKind::Etcd)?,
                k8s: pki::generate_ca(CaKind::Kubernetes)?,
                k8saggregator: pki::generate_ca(CaKind::Aggregator)?,
                k8sserviceaccount: ServiceAccountKey {
                    key: pki::generate_rsa_4096()?,
                },
                os: pki::generate_ca(CaKind::Os)?,
            },
        })
    }

    /// Read a bundle (YAML or JSON, as talosctl/talhelper/the Terraform provider write it) and validate it.
    pub fn from_yaml(text: &str) -> Result<Self, SecretsError> {
        homelab_goyaml::alias::check(text).map_err(|e| SecretsError::Parse {
            reason: e.to_string(),
        })?;
        let bundle: Self = serde_saphyr::from_str(text).map_err(|e| SecretsError::Parse {
            reason: redact_parse_error(&e.to_string()),
        })?;
        bundle.validate()?;
        Ok(bundle)
    }

    /// Write the bundle in the `talosctl gen secrets` layout (4-space indent, certs base64 of PEM).
    /// The result is secret: encrypt it before it touches a disk.
    pub fn to_yaml(&self) -> Result<Zeroizing<String>, SecretsError> {
        let options = serde_saphyr::ser_options! {
            indent_step: 4,
            prefer_block_scalars: false,
        };
        serde_saphyr::to_string_with_options(self, options)
            .map(Zeroizing::new)
            .map_err(|e| SecretsError::Serialize(e.to_string()))
    }

    /// Check every value the way Talos would need it: token formats, 32-byte secrets, certificates that
    /// parse, keys that load and belong to their certificate, the algorithms Talos uses.
    pub fn validate(&self) -> Result<(), SecretsError> {
        check_base64_32(&self.cluster.id, "cluster.id", true)?;
        check_base64_32(&self.cluster.secret, "cluster.secret", false)?;
        check_token(&self.secrets.bootstraptoken, "secrets.bootstraptoken")?;
        check_token(&self.trustdinfo.token, "trustdinfo.token")?;
        match (
            &self.secrets.secretboxencryptionsecret,
            &self.secrets.aescbcencryptionsecret,
        ) {
            (Some(s), _) => check_base64_32(s, "secrets.secretboxencryptionsecret", false)?,
            (None, Some(s)) => check_base64_32(s, "secrets.aescbcencryptionsecret", false)?,
            (None, None) => {
                return Err(SecretsError::Missing {
                    field: "secrets.secretboxencryptionsecret",
                });
            }
        }
        if let Some(admin) = &self.certs.admin {
            pki::check_pair(admin, "certs.admin")?;
        }
        pki::check_pair(&self.certs.etcd, "certs.etcd")?;
        pki::check_pair(&self.certs.k8s, "certs.k8s")?;
        pki::check_pair(&self.certs.k8saggregator, "certs.k8saggregator")?;
        pki::check_service_account_key(
            &self.certs.k8sserviceaccount.key,
            "certs.k8sserviceaccount.key",
        )?;
        let os = pki::check_pair(&self.certs.os, "certs.os")?;
        if os == KeyAlgorithm::Rsa {
            return Err(SecretsError::Field {
                field: "certs.os",
                reason: "the Talos API CA must be Ed25519 or ECDSA".into(),
            });
        }
        Ok(())
    }
}

fn random32() -> Zeroizing<[u8; 32]> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut bytes[..]);
    bytes
}

/// A token `[0-9a-z]{6}.[0-9a-z]{16}` by uniform rejection sampling over the 36 characters.
fn new_token() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(23);
    let mut buf = [0u8; 1];
    while out.len() < 23 {
        if out.len() == 6 {
            out.push('.');
            continue;
        }
        OsRng.fill_bytes(&mut buf);
        // 252 = 7 * 36: reject the tail so every character is equally likely.
        if buf[0] < 252 {
            out.push(char::from(ALPHABET[usize::from(buf[0] % 36)]));
        }
    }
    out
}

fn check_token(token: &Secret, field: &'static str) -> Result<(), SecretsError> {
    let t = token.expose().as_bytes();
    let ok = t.len() == 23
        && t[6] == b'.'
        && t.iter()
            .enumerate()
            .all(|(i, c)| i == 6 || c.is_ascii_digit() || c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(SecretsError::Field {
            field,
            reason: "expected a token of the form [0-9a-z]{6}.[0-9a-z]{16}".into(),
        })
    }
}

fn check_base64_32(value: &Secret, field: &'static str, url: bool) -> Result<(), SecretsError> {
    let decoded = if url {
        URL_SAFE
            .decode(value.expose())
            .or_else(|_| STANDARD.decode(value.expose()))
    } else {
        STANDARD.decode(value.expose())
    };
    match decoded.map(Zeroizing::new) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        Ok(bytes) => Err(SecretsError::Field {
            field,
            reason: format!("expected base64 of 32 bytes, got {} bytes", bytes.len()),
        }),
        Err(_) => Err(SecretsError::Field {
            field,
            reason: "not valid base64".into(),
        }),
    }
}

/// A YAML error message may quote the offending line; keep only the part before any quoted input.
pub(crate) fn redact_parse_error(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .chars()
        .take(200)
        .collect()
}

/// serde for `{crt, key}` with each value base64 of PEM text.
mod b64_pair {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{b64_decode_pem, b64_encode};
    use crate::pki::CertAndKey;
    use crate::secret::Secret;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wire {
        #[serde(alias = "Crt", alias = "cert")]
        crt: Secret,
        #[serde(alias = "Key")]
        key: Secret,
    }

    pub fn serialize<S: Serializer>(pair: &CertAndKey, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            crt: b64_encode(&pair.crt),
            key: b64_encode(pair.key.expose()),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CertAndKey, D::Error> {
        let wire = Wire::deserialize(d)?;
        Ok(CertAndKey {
            crt: b64_decode_pem(&wire.crt)
                .map_err(serde::de::Error::custom)?
                .expose()
                .to_string(),
            key: b64_decode_pem(&wire.key).map_err(serde::de::Error::custom)?,
        })
    }
}

/// serde for an optional `{crt, key}`.
mod b64_pair_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::pki::CertAndKey;

    pub fn serialize<S: Serializer>(pair: &Option<CertAndKey>, s: S) -> Result<S::Ok, S::Error> {
        match pair {
            Some(p) => super::b64_pair::serialize(p, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CertAndKey>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::b64_pair")] CertAndKey);
        Option::<Wrap>::deserialize(d).map(|w| w.map(|Wrap(p)| p))
    }
}

/// serde for a single base64-of-PEM secret value.
mod b64_secret {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{b64_decode_pem, b64_encode};
    use crate::secret::Secret;

    pub fn serialize<S: Serializer>(value: &Secret, s: S) -> Result<S::Ok, S::Error> {
        b64_encode(value.expose()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let wire = Secret::deserialize(d)?;
        b64_decode_pem(&wire).map_err(serde::de::Error::custom)
    }
}

fn b64_encode(text: &str) -> Secret {
    Secret::new(STANDARD.encode(text.as_bytes()))
}

fn b64_decode_pem(value: &Secret) -> Result<Secret, &'static str> {
    let bytes = STANDARD
        .decode(value.expose().trim())
        .map_err(|_| "a certificate/key value is not base64 of PEM text")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "a certificate/key value is not base64 of PEM text")?;
    let text = Secret::new(text);
    if text.expose().contains("-----BEGIN ") {
        Ok(text)
    } else {
        Err("a certificate/key value does not decode to PEM text")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_talos_shape() {
        for _ in 0..200 {
            let t = Secret::new(new_token());
            check_token(&t, "t").unwrap();
        }
    }

    #[test]
    fn malformed_tokens_are_rejected_without_echoing_them() {
        let err = check_token(
            &Secret::new("ABCDEF.0123456789abcdef".into()),
            "secrets.bootstraptoken",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("secrets.bootstraptoken"));
        assert!(!msg.contains("ABCDEF"));
    }

    #[test]
    fn cluster_id_must_be_32_bytes() {
        let short = Secret::new(URL_SAFE.encode([1u8; 16]));
        assert!(check_base64_32(&short, "cluster.id", true).is_err());
        let good = Secret::new(URL_SAFE.encode([0xfbu8; 32]));
        check_base64_32(&good, "cluster.id", true).unwrap();
    }
}
