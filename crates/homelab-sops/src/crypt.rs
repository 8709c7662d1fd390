//! Encrypting and decrypting a whole tree the way sops walks it: which leaves are encrypted (suffix/regex
//! rules on every key of the path), the key path as AAD, and the SHA-512 MAC over the leaves in document order.

use regex::Regex;
use sha2::{Digest, Sha512};

use crate::cipher::{Cipher, DataKey, DecryptFailure, plaintext_of};
use crate::error::SopsError;
use crate::value::{Entry, Map, Value};

/// Which values are encrypted (sops allows at most one of these per file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptRule {
    /// Values under a key ending with this suffix stay in clear text (sops's default: `_unencrypted`).
    UnencryptedSuffix(String),
    /// Only values under a key ending with this suffix are encrypted.
    EncryptedSuffix(String),
    /// Values under a key matching this regex stay in clear text.
    UnencryptedRegex(String),
    /// Only values under a key matching this regex are encrypted.
    EncryptedRegex(String),
    /// Values after a comment matching this regex stay in clear text.
    UnencryptedCommentRegex(String),
    /// Only values after a comment matching this regex are encrypted.
    EncryptedCommentRegex(String),
}

impl Default for CryptRule {
    fn default() -> Self {
        CryptRule::UnencryptedSuffix("_unencrypted".into())
    }
}

impl CryptRule {
    /// The metadata / `.sops.yaml` key naming this rule.
    pub fn field(&self) -> &'static str {
        match self {
            CryptRule::UnencryptedSuffix(_) => "unencrypted_suffix",
            CryptRule::EncryptedSuffix(_) => "encrypted_suffix",
            CryptRule::UnencryptedRegex(_) => "unencrypted_regex",
            CryptRule::EncryptedRegex(_) => "encrypted_regex",
            CryptRule::UnencryptedCommentRegex(_) => "unencrypted_comment_regex",
            CryptRule::EncryptedCommentRegex(_) => "encrypted_comment_regex",
        }
    }

    /// The rule's suffix or regex text.
    pub fn text(&self) -> &str {
        match self {
            CryptRule::UnencryptedSuffix(s)
            | CryptRule::EncryptedSuffix(s)
            | CryptRule::UnencryptedRegex(s)
            | CryptRule::EncryptedRegex(s)
            | CryptRule::UnencryptedCommentRegex(s)
            | CryptRule::EncryptedCommentRegex(s) => s,
        }
    }

    /// Builds a rule from its field name.
    pub fn from_field(field: &str, text: String) -> Option<CryptRule> {
        Some(match field {
            "unencrypted_suffix" => CryptRule::UnencryptedSuffix(text),
            "encrypted_suffix" => CryptRule::EncryptedSuffix(text),
            "unencrypted_regex" => CryptRule::UnencryptedRegex(text),
            "encrypted_regex" => CryptRule::EncryptedRegex(text),
            "unencrypted_comment_regex" => CryptRule::UnencryptedCommentRegex(text),
            "encrypted_comment_regex" => CryptRule::EncryptedCommentRegex(text),
            _ => return None,
        })
    }

    /// All field names, in sops's metadata order.
    pub const FIELDS: [&'static str; 6] = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];
}

/// A compiled [`CryptRule`] plus `mac_only_encrypted`.
pub struct Rules {
    rule: CryptRule,
    regex: Option<Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    /// Compiles the rule's regex, if any.
    pub fn new(rule: &CryptRule, mac_only_encrypted: bool) -> Result<Rules, String> {
        let regex = match rule {
            CryptRule::UnencryptedRegex(r)
            | CryptRule::EncryptedRegex(r)
            | CryptRule::UnencryptedCommentRegex(r)
            | CryptRule::EncryptedCommentRegex(r) => {
                Some(Regex::new(r).map_err(|e| format!("invalid {} {r:?}: {e}", rule.field()))?)
            }
            _ => None,
        };
        Ok(Rules {
            rule: rule.clone(),
            regex,
            mac_only_encrypted,
        })
    }

    fn matches(&self, s: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(s))
    }

    /// Whether a key rule (suffix or regex) picks out `key`; comment rules pick no key.
    fn key_hit(&self, key: &str) -> bool {
        match &self.rule {
            CryptRule::UnencryptedSuffix(s) | CryptRule::EncryptedSuffix(s) => {
                key.ends_with(s.as_str())
            }
            CryptRule::UnencryptedRegex(_) | CryptRule::EncryptedRegex(_) => self.matches(key),
            CryptRule::UnencryptedCommentRegex(_) | CryptRule::EncryptedCommentRegex(_) => false,
        }
    }

    /// sops's `shouldBeEncrypted`: decided on every key of the path (`path_hits` of them are picked out
    /// by [`Rules::key_hit`]) and the comments preceding the value.
    fn should_encrypt(&self, path_hits: usize, comments: &[String]) -> bool {
        match &self.rule {
            CryptRule::UnencryptedSuffix(_) | CryptRule::UnencryptedRegex(_) => path_hits == 0,
            CryptRule::EncryptedSuffix(_) | CryptRule::EncryptedRegex(_) => path_hits > 0,
            CryptRule::UnencryptedCommentRegex(_) => !comments.iter().any(|c| self.matches(c)),
            CryptRule::EncryptedCommentRegex(_) => comments.iter().any(|c| self.matches(c)),
        }
    }

    fn comment_rule(&self) -> bool {
        matches!(
            self.rule,
            CryptRule::UnencryptedCommentRegex(_) | CryptRule::EncryptedCommentRegex(_)
        )
    }
}

/// The AAD kept by [`Walk`]; at the root (a comment before the first key) sops's is `":"`.
fn aad_or_root(aad: &str) -> &str {
    if aad.is_empty() { ":" } else { aad }
}

/// `sha256("sops")`, fed first into the MAC when `mac_only_encrypted` is set.
fn mac_only_encrypted_init() -> [u8; 32] {
    sha2::Sha256::digest(b"sops").into()
}

/// Walks documents, encrypting (or decrypting) leaves in place and accumulating the MAC.
struct Walk<'a> {
    rules: &'a Rules,
    key: &'a DataKey,
    cipher: &'a mut Cipher,
    hash: Sha512,
    decrypting: bool,
    file: &'a str,
    /// The current key path joined with `:` after each key (sops's AAD), kept as the walk goes down and
    /// up rather than joined per value.
    aad: String,
    /// How many keys of the current path [`Rules::key_hit`] picks out: counted on the way down so no
    /// key is copied into a path and no path is rescanned per value.
    path_hits: usize,
}

impl Walk<'_> {
    fn new<'a>(
        rules: &'a Rules,
        key: &'a DataKey,
        cipher: &'a mut Cipher,
        decrypting: bool,
        file: &'a str,
    ) -> Walk<'a> {
        let mut hash = Sha512::new();
        if rules.mac_only_encrypted {
            hash.update(mac_only_encrypted_init());
        }
        Walk {
            rules,
            key,
            cipher,
            hash,
            decrypting,
            file,
            aad: String::new(),
            path_hits: 0,
        }
    }

    fn map(&mut self, map: &mut Map, comments: &mut Vec<String>) -> Result<(), SopsError> {
        let mut preceding: Vec<String> = Vec::new();
        for entry in map.entries.iter_mut() {
            match entry {
                Entry::Comment(text) => {
                    if let Some(new) = self.comment(text, comments)? {
                        *text = new;
                    }
                    if self.rules.comment_rule() {
                        preceding.push(text.clone());
                    }
                }
                Entry::Item(k, v) => {
                    let hit = usize::from(self.rules.key_hit(&k.text));
                    self.path_hits += hit;
                    let aad_len = self.aad.len();
                    self.aad.push_str(&k.text);
                    self.aad.push(':');
                    let depth = comments.len();
                    comments.append(&mut preceding);
                    self.value(v, comments)?;
                    comments.truncate(depth);
                    self.aad.truncate(aad_len);
                    self.path_hits -= hit;
                }
            }
        }
        Ok(())
    }

    /// Returns the new text of a comment, or `None` to keep it.
    fn comment(&mut self, text: &str, comments: &[String]) -> Result<Option<String>, SopsError> {
        if self.rules.comment_rule() || !self.rules.should_encrypt(self.path_hits, comments) {
            return Ok(None);
        }
        if self.decrypting {
            // A comment that does not decrypt was written in clear text (older sops): keep it, like sops does.
            return Ok(
                match self.cipher.decrypt(text, self.key, aad_or_root(&self.aad)) {
                    Ok(Value::Comment(c)) | Ok(Value::Str(c)) => Some(c),
                    _ => None,
                },
            );
        }
        self.cipher
            .encrypt(
                &Value::Comment(text.to_string()),
                self.key,
                aad_or_root(&self.aad),
            )
            .map(Some)
            .map_err(|m| SopsError::Crypto {
                file: self.file.to_string(),
                message: m,
            })
    }

    fn value(&mut self, v: &mut Value, comments: &mut Vec<String>) -> Result<(), SopsError> {
        match v {
            Value::Map(m) => self.map(m, comments),
            Value::Seq(items) => {
                let mut preceding: Vec<String> = Vec::new();
                for item in items.iter_mut() {
                    if let Value::Comment(text) = item {
                        if self.rules.comment_rule() {
                            preceding.push(text.clone());
                        }
                        if let Some(new) = self.comment(text, comments)? {
                            // Encrypted comments in sequences are written as string items by sops.
                            *item = if self.decrypting {
                                Value::Comment(new)
                            } else {
                                Value::Str(new)
                            };
                        }
                        continue;
                    }
                    let depth = comments.len();
                    comments.append(&mut preceding);
                    self.value(item, comments)?;
                    comments.truncate(depth);
                }
                Ok(())
            }
            Value::Null => Ok(()),
            Value::Comment(_) => Ok(()),
            leaf => {
                let encrypted = self.rules.should_encrypt(self.path_hits, comments);
                if self.decrypting && encrypted {
                    let Value::Str(text) = &*leaf else {
                        return Err(SopsError::MacMismatch {
                            file: self.file.to_string(),
                            detail: format!(
                                "the value at `{}` should be encrypted but is not",
                                aad_or_root(&self.aad)
                            ),
                        });
                    };
                    let plain = match self.cipher.decrypt(text, self.key, aad_or_root(&self.aad)) {
                        Ok(p) => p,
                        Err(DecryptFailure::Authentication) => {
                            return Err(SopsError::MacMismatch {
                                file: self.file.to_string(),
                                detail: format!(
                                    "the encrypted value at `{}` failed authentication",
                                    aad_or_root(&self.aad)
                                ),
                            });
                        }
                        Err(DecryptFailure::NotEncrypted) => {
                            return Err(SopsError::MacMismatch {
                                file: self.file.to_string(),
                                detail: format!(
                                    "the value at `{}` should be encrypted but is not",
                                    aad_or_root(&self.aad)
                                ),
                            });
                        }
                        Err(DecryptFailure::BadType(t)) => {
                            return Err(SopsError::Unsupported {
                                file: self.file.to_string(),
                                message: format!(
                                    "the value at `{}` does not decrypt to a valid {t}",
                                    aad_or_root(&self.aad)
                                ),
                            });
                        }
                    };
                    if !matches!(plain, Value::Comment(_)) {
                        self.feed(&plain);
                    }
                    *leaf = plain;
                    return Ok(());
                }
                if !self.rules.mac_only_encrypted || encrypted {
                    self.feed(leaf);
                }
                if !self.decrypting && encrypted {
                    let enc = self
                        .cipher
                        .encrypt(leaf, self.key, aad_or_root(&self.aad))
                        .map_err(|m| SopsError::Crypto {
                            file: self.file.to_string(),
                            message: m,
                        })?;
                    *leaf = Value::Str(enc);
                }
                Ok(())
            }
        }
    }

    fn feed(&mut self, v: &Value) {
        match v {
            // Text is hashed where it lies (the same bytes `plaintext_of` would copy out).
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => self.hash.update(s.as_bytes()),
            _ => {
                if let Ok((bytes, _)) = plaintext_of(v) {
                    self.hash.update(&bytes[..]);
                }
            }
        }
    }

    fn finish(self) -> String {
        hex::encode_upper(self.hash.finalize())
    }
}

/// Encrypts every document in place; returns the MAC (uppercase hex).
pub fn encrypt_documents(
    docs: &mut [Map],
    rules: &Rules,
    key: &DataKey,
    cipher: &mut Cipher,
    file: &str,
) -> Result<String, SopsError> {
    walk_documents(docs, rules, key, cipher, false, file)
}

/// Decrypts every document in place; returns the recomputed MAC (uppercase hex).
pub fn decrypt_documents(
    docs: &mut [Map],
    rules: &Rules,
    key: &DataKey,
    cipher: &mut Cipher,
    file: &str,
) -> Result<String, SopsError> {
    walk_documents(docs, rules, key, cipher, true, file)
}

/// Encrypts (or decrypts) every value the rules select, in place, hashing plaintext for the MAC.
fn walk_documents(
    docs: &mut [Map],
    rules: &Rules,
    key: &DataKey,
    cipher: &mut Cipher,
    decrypt: bool,
    file: &str,
) -> Result<String, SopsError> {
    let mut walk = Walk::new(rules, key, cipher, decrypt, file);
    for doc in docs.iter_mut() {
        walk.map(doc, &mut Vec::new())?;
    }
    Ok(walk.finish())
}

/// The MAC of a binary file's raw bytes.
pub fn binary_mac(bytes: &[u8], mac_only_encrypted: bool) -> String {
    let mut hash = Sha512::new();
    if mac_only_encrypted {
        hash.update(mac_only_encrypted_init());
    }
    hash.update(bytes);
    hex::encode_upper(hash.finalize())
}
