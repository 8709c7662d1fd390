//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value format: AES-256-GCM with a 32-byte nonce, the key
//! path as AAD, and an IV stash so unchanged values re-encrypt to identical text (small git diffs after edit).

use std::collections::HashMap;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::value::{Value, go_float_plain};

type SopsAes = AesGcm<Aes256, U32>;

/// The 32-byte data key of a file.
pub type DataKey = Zeroizing<[u8; 32]>;

/// Why a value could not be decrypted.
#[derive(Debug, PartialEq)]
pub enum DecryptFailure {
    /// The text is not an `ENC[AES256_GCM,…]` value.
    NotEncrypted,
    /// The value does not authenticate with this key and path.
    Authentication,
    /// The decrypted text does not parse as its declared type.
    BadType(String),
}

/// An encrypted value split into its parts.
struct EncParts {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse_enc(text: &str) -> Option<EncParts> {
    let inner = text.strip_prefix("ENC[AES256_GCM,data:")?;
    let inner = inner.strip_suffix(']')?;
    let (data, rest) = inner.split_once(",iv:")?;
    let (iv, rest) = rest.split_once(",tag:")?;
    let (tag, kind) = rest.split_once(",type:")?;
    Some(EncParts {
        data: B64.decode(data).ok()?,
        iv: B64.decode(iv).ok()?,
        tag: B64.decode(tag).ok()?,
        kind: kind.to_string(),
    })
}

/// AES-GCM with sops's value encoding, remembering the IVs seen while decrypting so an unchanged value
/// (same plaintext, same path) encrypts to the same text again.
#[derive(Default)]
pub struct Cipher {
    /// IVs by digest of (type, path, plaintext): no plaintext is kept here.
    stash: HashMap<[u8; 32], Vec<u8>>,
}

fn stash_key(plain: &[u8], aad: &str, kind: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((kind.len() as u64).to_le_bytes());
    h.update(kind.as_bytes());
    h.update((aad.len() as u64).to_le_bytes());
    h.update(aad.as_bytes());
    h.update(plain);
    h.finalize().into()
}

impl Cipher {
    /// A cipher with an empty IV stash (fresh IVs for every value).
    pub fn new() -> Cipher {
        Cipher::default()
    }

    /// Decrypts one `ENC[…]` text with `key` and AAD `aad` into a typed value.
    pub fn decrypt(
        &mut self,
        text: &str,
        key: &[u8; 32],
        aad: &str,
    ) -> Result<Value, DecryptFailure> {
        if text.is_empty() {
            return Ok(Value::Str(String::new()));
        }
        let parts = parse_enc(text).ok_or(DecryptFailure::NotEncrypted)?;
        let plain = decrypt_raw(&parts, key, aad)?;
        let value = typed_value(&parts.kind, &plain)?;
        self.stash
            .insert(stash_key(&plain, aad, &parts.kind), parts.iv);
        Ok(value)
    }

    /// Encrypts a leaf value (`Comment` gives `type:comment`). Empty strings and comments stay empty.
    pub fn encrypt(&self, value: &Value, key: &[u8; 32], aad: &str) -> Result<String, String> {
        let (plain, kind) = plaintext_of(value)?;
        if plain.is_empty() && matches!(value, Value::Str(_) | Value::Comment(_)) {
            return Ok(String::new());
        }
        let iv = match self.stash.get(&stash_key(&plain, aad, kind)) {
            Some(iv) => iv.clone(),
            None => fresh_iv()?,
        };
        Ok(encrypt_raw(&plain, &iv, key, aad, kind))
    }
}

impl Cipher {
    /// Decrypts an `ENC[…]` text to raw bytes (the binary store), returning the bytes and the type name.
    pub fn decrypt_bytes(
        &mut self,
        text: &str,
        key: &[u8; 32],
        aad: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, String), DecryptFailure> {
        if text.is_empty() {
            return Ok((Zeroizing::new(Vec::new()), "str".into()));
        }
        let parts = parse_enc(text).ok_or(DecryptFailure::NotEncrypted)?;
        let plain = decrypt_raw(&parts, key, aad)?;
        self.stash
            .insert(stash_key(&plain, aad, &parts.kind), parts.iv);
        Ok((plain, parts.kind))
    }

    /// Encrypts raw bytes as `type:str` (the binary store). Empty input stays empty.
    pub fn encrypt_bytes(&self, plain: &[u8], key: &[u8; 32], aad: &str) -> Result<String, String> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        let iv = match self.stash.get(&stash_key(plain, aad, "str")) {
            Some(iv) => iv.clone(),
            None => fresh_iv()?,
        };
        Ok(encrypt_raw(plain, &iv, key, aad, "str"))
    }
}

fn fresh_iv() -> Result<Vec<u8>, String> {
    let mut iv = vec![0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut iv)
        .map_err(|e| format!("random source failed: {e}"))?;
    Ok(iv)
}

fn decrypt_raw(
    parts: &EncParts,
    key: &[u8; 32],
    aad: &str,
) -> Result<Zeroizing<Vec<u8>>, DecryptFailure> {
    if parts.tag.len() != 16 || parts.iv.is_empty() {
        return Err(DecryptFailure::Authentication);
    }
    let mut ct = Vec::with_capacity(parts.data.len() + 16);
    ct.extend_from_slice(&parts.data);
    ct.extend_from_slice(&parts.tag);
    // sops accepts any nonce length on decrypt (it uses len(iv)); we support the standard 32 and GCM's 12.
    let payload = Payload {
        msg: &ct,
        aad: aad.as_bytes(),
    };
    let plain = match parts.iv.len() {
        32 => SopsAes::new_from_slice(key)
            .map_err(|_| DecryptFailure::Authentication)?
            .decrypt(Nonce::<U32>::from_slice(&parts.iv), payload),
        12 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .map_err(|_| DecryptFailure::Authentication)?
            .decrypt(aes_gcm::Nonce::from_slice(&parts.iv), payload),
        _ => return Err(DecryptFailure::Authentication),
    };
    plain
        .map(Zeroizing::new)
        .map_err(|_| DecryptFailure::Authentication)
}

fn encrypt_raw(plain: &[u8], iv: &[u8], key: &[u8; 32], aad: &str, kind: &str) -> String {
    let cipher = SopsAes::new(key.into());
    // Encryption with a valid 32-byte key and nonce cannot fail for inputs below GCM's size limit (64 GiB).
    let ct = cipher
        .encrypt(
            Nonce::<U32>::from_slice(iv),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .unwrap_or_default();
    let (data, tag) = ct.split_at(ct.len().saturating_sub(16));
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag),
        kind
    )
}

/// The bytes sops encrypts (and feeds to the MAC) for a leaf, with its type name.
pub fn plaintext_of(value: &Value) -> Result<(Zeroizing<Vec<u8>>, &'static str), String> {
    Ok(match value {
        Value::Str(s) => (Zeroizing::new(s.as_bytes().to_vec()), "str"),
        Value::Int(i) => (Zeroizing::new(i.to_string().into_bytes()), "int"),
        Value::Float(f) => (Zeroizing::new(go_float_plain(*f).into_bytes()), "float"),
        Value::Bool(b) => (
            Zeroizing::new(if *b {
                b"True".to_vec()
            } else {
                b"False".to_vec()
            }),
            "bool",
        ),
        Value::Time(t) => (Zeroizing::new(t.as_bytes().to_vec()), "time"),
        Value::Comment(c) => (Zeroizing::new(c.as_bytes().to_vec()), "comment"),
        Value::Null | Value::Map(_) | Value::Seq(_) => {
            return Err("cannot encrypt a non-leaf value".into());
        }
    })
}

/// Parses decrypted bytes as the declared sops type.
fn typed_value(kind: &str, plain: &[u8]) -> Result<Value, DecryptFailure> {
    let text = std::str::from_utf8(plain).map_err(|_| DecryptFailure::BadType(kind.to_string()));
    match kind {
        "str" => Ok(Value::Str(text?.to_string())),
        "comment" => Ok(Value::Comment(text?.to_string())),
        "int" => text?
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| DecryptFailure::BadType(kind.into())),
        "float" => parse_go_float(text?)
            .map(Value::Float)
            .ok_or(DecryptFailure::BadType(kind.into())),
        "bool" => parse_go_bool(text?)
            .map(Value::Bool)
            .ok_or(DecryptFailure::BadType(kind.into())),
        "time" => crate::time::parse_rfc3339(text?)
            .map(Value::Time)
            .ok_or(DecryptFailure::BadType(kind.into())),
        "bytes" => Ok(Value::Str(text?.to_string())),
        _ => Err(DecryptFailure::BadType(kind.to_string())),
    }
}

/// Go `strconv.ParseFloat` for the forms `FormatFloat` writes (plus `±Inf`, `NaN`).
pub fn parse_go_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" | "+Infinity" | "Infinity" => Some(f64::INFINITY),
        "-Inf" | "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_value_decrypts_with_same_path_only() {
        let key = [7u8; 32];
        let mut c = Cipher::new();
        let enc = c.encrypt(&Value::Int(42), &key, "a:b:").expect("encrypt");
        assert!(enc.ends_with(",type:int]"));
        assert_eq!(c.decrypt(&enc, &key, "a:b:"), Ok(Value::Int(42)));
        assert_eq!(
            c.decrypt(&enc, &key, "a:"),
            Err(DecryptFailure::Authentication)
        );
    }

    #[test]
    fn unchanged_value_reuses_iv_after_decrypt() {
        let key = [1u8; 32];
        let mut c = Cipher::new();
        let enc = Cipher::new()
            .encrypt(&Value::Str("s".into()), &key, "k:")
            .expect("encrypt");
        c.decrypt(&enc, &key, "k:").expect("decrypt");
        assert_eq!(
            c.encrypt(&Value::Str("s".into()), &key, "k:")
                .expect("encrypt"),
            enc
        );
        assert_ne!(
            c.encrypt(&Value::Str("t".into()), &key, "k:")
                .expect("encrypt"),
            enc
        );
    }

    #[test]
    fn empty_string_is_not_encrypted() {
        let c = Cipher::new();
        assert_eq!(
            c.encrypt(&Value::Str(String::new()), &[0; 32], "k:")
                .expect("encrypt"),
            ""
        );
    }
}
