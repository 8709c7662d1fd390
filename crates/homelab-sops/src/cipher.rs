//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value format: AES-256-GCM with a 32-byte nonce, the key
//! path as AAD, and an IV stash so unchanged values re-encrypt to identical text (small git diffs after edit).

use std::collections::HashMap;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

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
struct EncParts<'t> {
    /// The ciphertext (not secret), decrypted in place into the plaintext by [`Cipher::decrypt_raw`].
    data: Vec<u8>,
    iv: Field<48>,
    tag: Field<24>,
    kind: &'t str,
}

/// A short base64 field (IV, tag) decoded on the stack: no allocation per value. Room for `N` bytes;
/// `len` is `None` for a longer field, which no valid value has.
struct Field<const N: usize> {
    bytes: [u8; N],
    len: Option<usize>,
}

impl<const N: usize> Field<N> {
    /// `None` when `text` is not base64.
    fn decode(text: &str) -> Option<Field<N>> {
        let mut bytes = [0u8; N];
        let len = match B64.decode_slice(text, &mut bytes) {
            Ok(len) => Some(len),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => None,
            Err(base64::DecodeSliceError::DecodeError(_)) => return None,
        };
        Some(Field { bytes, len })
    }

    /// The decoded bytes when there are exactly `len` of them.
    fn exactly(&self, len: usize) -> Option<&[u8]> {
        (self.len == Some(len)).then(|| &self.bytes[..len])
    }
}

fn parse_enc(text: &str) -> Option<EncParts<'_>> {
    let inner = text.strip_prefix("ENC[AES256_GCM,data:")?;
    let inner = inner.strip_suffix(']')?;
    // Base64 has no comma, so each part ends at the next one (a stray comma fails the decode either way).
    let (data, rest) = inner.split_once(',')?;
    let (iv, rest) = rest.strip_prefix("iv:")?.split_once(',')?;
    let (tag, rest) = rest.strip_prefix("tag:")?.split_once(',')?;
    let kind = rest.strip_prefix("type:")?;
    Some(EncParts {
        data: B64.decode(data).ok()?,
        iv: Field::decode(iv)?,
        tag: Field::decode(tag)?,
        kind,
    })
}

/// AES-GCM with sops's value encoding, remembering the IVs seen while decrypting so an unchanged value
/// (same plaintext, same path) encrypts to the same text again.
#[derive(Default)]
pub struct Cipher {
    /// IVs by digest of (type, path, plaintext): no plaintext is kept here. Only 32-byte IVs (what sops
    /// writes) are kept: a value that had a 12-byte one gets a fresh IV of the size we write.
    stash: HashMap<[u8; 32], [u8; 32]>,
    /// Whether decrypting fills `stash`: only a cipher that will re-encrypt the file needs it, and the
    /// digest per value is a measurable part of decrypting a large file.
    stashing: bool,
    /// The expanded AES key and GHASH key of the last data key used. A file has one data key, and
    /// expanding it for each of its thousands of values used to dominate encrypt and decrypt.
    keyed: Option<Keyed>,
    /// A ChaCha CSPRNG seeded once from the OS for fresh IVs: one `getrandom` call per file instead of
    /// one per value.
    rng: Option<StdRng>,
    /// The buffer each value is encrypted in, reused so a value costs no allocation but its text. It
    /// holds ciphertext between calls (the plaintext copied in is encrypted in place), and is wiped on
    /// drop all the same.
    scratch: Zeroizing<Vec<u8>>,
}

/// A data key and the AES-GCM instance (32-byte nonces, as sops uses) set up for it.
struct Keyed {
    key: Zeroizing<[u8; 32]>,
    aes: SopsAes,
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
    /// A cipher with an empty IV stash (fresh IVs for every value) that decrypts without filling it.
    pub fn new() -> Cipher {
        Cipher::default()
    }

    /// A cipher that remembers the IV of every value it decrypts, so re-encrypting an unchanged value
    /// gives its old text again.
    pub fn stashing() -> Cipher {
        Cipher {
            stashing: true,
            ..Cipher::default()
        }
    }

    /// The AES-GCM instance for `key`, set up once per data key.
    fn aes(&mut self, key: &[u8; 32]) -> &SopsAes {
        let keyed = self
            .keyed
            .take()
            .filter(|k| *k.key == *key)
            .unwrap_or_else(|| Keyed {
                key: Zeroizing::new(*key),
                aes: SopsAes::new(key.into()),
            });
        &self.keyed.insert(keyed).aes
    }

    /// The IV for a value: the one it had when decrypted if unchanged, else a fresh random one. The
    /// stash key is only computed when there is a stash (a fresh encryption has none).
    fn iv_for(&mut self, plain: &[u8], aad: &str, kind: &str) -> Result<[u8; 32], String> {
        if !self.stash.is_empty()
            && let Some(iv) = self.stash.get(&stash_key(plain, aad, kind))
        {
            return Ok(*iv);
        }
        let rng = match &mut self.rng {
            Some(rng) => rng,
            None => self.rng.insert(
                StdRng::from_rng(rand::rngs::OsRng)
                    .map_err(|e| format!("random source failed: {e}"))?,
            ),
        };
        let mut iv = [0u8; 32];
        rng.try_fill_bytes(&mut iv)
            .map_err(|e| format!("random source failed: {e}"))?;
        Ok(iv)
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
        let kind = parts.kind;
        let (plain, iv) = self.decrypt_raw(parts, key, aad)?;
        if self.stashing
            && let Some(iv) = iv.exactly(32).and_then(|iv| <[u8; 32]>::try_from(iv).ok())
        {
            self.stash.insert(stash_key(&plain, aad, kind), iv);
        }
        typed_value(kind, plain)
    }

    /// Encrypts a leaf value (`Comment` gives `type:comment`). Empty strings and comments stay empty.
    pub fn encrypt(&mut self, value: &Value, key: &[u8; 32], aad: &str) -> Result<String, String> {
        // Text is encrypted from where it lies; the other types are formatted first.
        let formatted;
        let (plain, kind): (&[u8], &str) = match value {
            Value::Str(s) => (s.as_bytes(), "str"),
            Value::Comment(c) => (c.as_bytes(), "comment"),
            Value::Time(t) => (t.as_bytes(), "time"),
            _ => {
                formatted = plaintext_of(value)?;
                (&formatted.0, formatted.1)
            }
        };
        if plain.is_empty() && matches!(value, Value::Str(_) | Value::Comment(_)) {
            return Ok(String::new());
        }
        let iv = self.iv_for(plain, aad, kind)?;
        Ok(self.seal(key, plain, &iv, aad, kind))
    }

    /// sops's text for `plain` encrypted with `key`, `iv` and `aad`.
    fn seal(
        &mut self,
        key: &[u8; 32],
        plain: &[u8],
        iv: &[u8; 32],
        aad: &str,
        kind: &str,
    ) -> String {
        self.aes(key);
        let Cipher {
            keyed: Some(keyed),
            scratch,
            ..
        } = self
        else {
            // `aes` has just set `keyed`.
            return String::new();
        };
        encrypt_raw(&keyed.aes, scratch, plain, iv, aad, kind)
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
        let kind = parts.kind;
        let (plain, iv) = self.decrypt_raw(parts, key, aad)?;
        let plain = Zeroizing::new(plain);
        if self.stashing
            && let Some(iv) = iv.exactly(32).and_then(|iv| <[u8; 32]>::try_from(iv).ok())
        {
            self.stash.insert(stash_key(&plain, aad, kind), iv);
        }
        Ok((plain, kind.to_string()))
    }

    /// Encrypts raw bytes as `type:str` (the binary store). Empty input stays empty.
    pub fn encrypt_bytes(
        &mut self,
        plain: &[u8],
        key: &[u8; 32],
        aad: &str,
    ) -> Result<String, String> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        let iv = self.iv_for(plain, aad, "str")?;
        Ok(self.seal(key, plain, &iv, aad, "str"))
    }

    /// The plaintext of `parts` and its IV. The plaintext is returned bare, not zeroizing: the caller
    /// moves it into the tree (zeroized with it) or wipes it, so a moved-out buffer is not wiped again.
    fn decrypt_raw(
        &mut self,
        parts: EncParts,
        key: &[u8; 32],
        aad: &str,
    ) -> Result<(Vec<u8>, Field<48>), DecryptFailure> {
        let tag = parts
            .tag
            .exactly(16)
            .ok_or(DecryptFailure::Authentication)?;
        let mut data = parts.data;
        // sops accepts any nonce length on decrypt (it uses len(iv)); we support the standard 32 and
        // GCM's 12. Authentication is checked before anything is decrypted, so a failure leaves `data`
        // ciphertext.
        if let Some(iv) = parts.iv.exactly(32) {
            self.aes(key)
                .decrypt_in_place_detached(
                    Nonce::<U32>::from_slice(iv),
                    aad.as_bytes(),
                    &mut data,
                    aes_gcm::Tag::from_slice(tag),
                )
                .map_err(|_| DecryptFailure::Authentication)?;
            return Ok((data, parts.iv));
        }
        let iv = parts.iv.exactly(12).ok_or(DecryptFailure::Authentication)?;
        let payload = Payload {
            msg: &[data.as_slice(), tag].concat(),
            aad: aad.as_bytes(),
        };
        let plain = aes_gcm::Aes256Gcm::new_from_slice(key)
            .map_err(|_| DecryptFailure::Authentication)?
            .decrypt(aes_gcm::Nonce::from_slice(iv), payload)
            .map_err(|_| DecryptFailure::Authentication)?;
        Ok((plain, parts.iv))
    }
}

/// Encrypts `plain` (copied into `scratch` and encrypted there in place) into sops's value text.
fn encrypt_raw(
    aes: &SopsAes,
    scratch: &mut Vec<u8>,
    plain: &[u8],
    iv: &[u8; 32],
    aad: &str,
    kind: &str,
) -> String {
    scratch.clear();
    scratch.extend_from_slice(plain);
    // Encryption with a valid 32-byte key and nonce cannot fail for inputs below GCM's size limit
    // (64 GiB); the in-place form returns the tag apart, so no ciphertext+tag buffer is split again.
    let tag = aes
        .encrypt_in_place_detached(Nonce::<U32>::from_slice(iv), aad.as_bytes(), scratch)
        .unwrap_or_default();
    let b64 = |n: usize| n.div_ceil(3) * 4;
    let mut out =
        Vec::with_capacity(48 + b64(scratch.len()) + b64(iv.len()) + b64(tag.len()) + kind.len());
    out.extend_from_slice(b"ENC[AES256_GCM,data:");
    push_base64(&mut out, scratch);
    out.extend_from_slice(b",iv:");
    push_base64(&mut out, iv);
    out.extend_from_slice(b",tag:");
    push_base64(&mut out, &tag);
    out.extend_from_slice(b",type:");
    out.extend_from_slice(kind.as_bytes());
    out.push(b']');
    // Every byte pushed is ASCII (base64 and the literals), `kind` is text.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the base64 of `bytes` to `out`, encoding straight into its spare room (the string form of
/// the encoder goes through a chunked writer, slower for short values).
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = B64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
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

/// Parses decrypted bytes as the declared sops type; text types take the buffer over without a copy, the
/// others wipe it.
fn typed_value(kind: &str, plain: Vec<u8>) -> Result<Value, DecryptFailure> {
    let bad = || DecryptFailure::BadType(kind.to_string());
    if matches!(kind, "str" | "comment" | "bytes") {
        let text = String::from_utf8(plain).map_err(|e| {
            // The bytes are plaintext: wipe them before reporting.
            e.into_bytes().zeroize();
            bad()
        })?;
        return Ok(if kind == "comment" {
            Value::Comment(text)
        } else {
            Value::Str(text)
        });
    }
    let plain = Zeroizing::new(plain);
    let text = std::str::from_utf8(&plain).map_err(|_| bad());
    match kind {
        "int" => text?.parse::<i64>().map(Value::Int).map_err(|_| bad()),
        "float" => parse_go_float(text?).map(Value::Float).ok_or_else(bad),
        "bool" => parse_go_bool(text?).map(Value::Bool).ok_or_else(bad),
        "time" => crate::time::parse_rfc3339(text?)
            .map(Value::Time)
            .ok_or_else(bad),
        _ => Err(bad()),
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
        let mut c = Cipher::stashing();
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
    fn a_plain_decrypt_remembers_no_iv() {
        let key = [1u8; 32];
        let enc = Cipher::new()
            .encrypt(&Value::Str("s".into()), &key, "k:")
            .expect("encrypt");
        let mut c = Cipher::new();
        c.decrypt(&enc, &key, "k:").expect("decrypt");
        assert!(c.stash.is_empty());
        assert_ne!(
            c.encrypt(&Value::Str("s".into()), &key, "k:")
                .expect("encrypt"),
            enc
        );
    }

    #[test]
    fn an_iv_or_tag_of_the_wrong_length_fails_authentication() {
        let key = [5u8; 32];
        let mut c = Cipher::new();
        let enc = c.encrypt(&Value::Int(7), &key, "k:").expect("encrypt");
        let (head, rest) = enc.split_once(",iv:").expect("iv");
        let (iv, rest) = rest.split_once(",tag:").expect("tag");
        let (tag, tail) = rest.split_once(',').expect("type");
        let with = |iv: &str, tag: &str| format!("{head},iv:{iv},tag:{tag},{tail}");
        assert_eq!(c.decrypt(&with(iv, tag), &key, "k:"), Ok(Value::Int(7)));
        for (iv, tag) in [
            (B64.encode([1u8; 16]), tag.to_string()),
            (B64.encode([1u8; 64]), tag.to_string()),
            (iv.to_string(), B64.encode([1u8; 15])),
            (iv.to_string(), B64.encode([1u8; 40])),
        ] {
            assert_eq!(
                c.decrypt(&with(&iv, &tag), &key, "k:"),
                Err(DecryptFailure::Authentication),
                "iv {iv}, tag {tag}"
            );
        }
        assert_eq!(
            c.decrypt(&with("not base64!", tag), &key, "k:"),
            Err(DecryptFailure::NotEncrypted)
        );
    }

    #[test]
    fn a_value_with_a_12_byte_iv_decrypts_and_reseals_with_a_fresh_32_byte_one() {
        use aes_gcm::aead::Aead;
        let key = [6u8; 32];
        let iv = [8u8; 12];
        let sealed = aes_gcm::Aes256Gcm::new_from_slice(&key)
            .expect("key")
            .encrypt(
                aes_gcm::Nonce::from_slice(&iv),
                Payload {
                    msg: b"hi",
                    aad: b"k:",
                },
            )
            .expect("encrypt");
        let (data, tag) = sealed.split_at(sealed.len() - 16);
        let text = format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
            B64.encode(data),
            B64.encode(iv),
            B64.encode(tag)
        );
        let mut c = Cipher::stashing();
        assert_eq!(c.decrypt(&text, &key, "k:"), Ok(Value::Str("hi".into())));
        let resealed = c
            .encrypt(&Value::Str("hi".into()), &key, "k:")
            .expect("encrypt");
        assert_ne!(resealed, text);
        assert_eq!(
            c.decrypt(&resealed, &key, "k:"),
            Ok(Value::Str("hi".into()))
        );
    }

    #[test]
    fn empty_string_is_not_encrypted() {
        let mut c = Cipher::new();
        assert_eq!(
            c.encrypt(&Value::Str(String::new()), &[0; 32], "k:")
                .expect("encrypt"),
            ""
        );
    }

    #[test]
    fn every_type_round_trips_and_bad_text_is_a_type_error() {
        let key = [3u8; 32];
        let mut c = Cipher::new();
        for v in [
            Value::Str("héllo".into()),
            Value::Comment(" note".into()),
            Value::Int(-7),
            Value::Float(2.5),
            Value::Bool(false),
            Value::Time("2024-01-02T03:04:05Z".into()),
        ] {
            let enc = c.encrypt(&v, &key, "k:").expect("encrypt");
            assert_eq!(c.decrypt(&enc, &key, "k:"), Ok(v));
        }
        let not_utf8 = encrypt_raw(
            c.aes(&key),
            &mut Vec::new(),
            &[0xff, 0xfe],
            &[9; 32],
            "k:",
            "str",
        );
        assert_eq!(
            c.decrypt(&not_utf8, &key, "k:"),
            Err(DecryptFailure::BadType("str".into()))
        );
        let not_int = encrypt_raw(c.aes(&key), &mut Vec::new(), b"x1", &[9; 32], "k:", "int");
        assert_eq!(
            c.decrypt(&not_int, &key, "k:"),
            Err(DecryptFailure::BadType("int".into()))
        );
        assert_eq!(
            c.decrypt(
                "ENC[AES256_GCM,data:AA==,tag:AA==,iv:AA==,type:str]",
                &key,
                "k:"
            ),
            Err(DecryptFailure::NotEncrypted)
        );
    }
}
