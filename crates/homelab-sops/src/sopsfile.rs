//! Whole-file operations: encrypt plaintext into a SOPS file, decrypt and verify one (MAC, every value),
//! re-encrypt an edited plaintext with the same data key, and re-wrap the data key for new recipients.

use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use crate::cipher::{Cipher, DataKey, DecryptFailure};
use crate::config::{CreationRule, SopsConfig};
use crate::crypt::{CryptRule, Rules, binary_mac, decrypt_documents, encrypt_documents};
use crate::error::SopsError;
use crate::identities::{Identities, check_recipient, wrap_data_key};
use crate::metadata::{AgeKey, Metadata, SOPS_VERSION};
use crate::store::{self, Format, Style};
use crate::value::{Map, Value};

/// The content of a decrypted file.
enum Content {
    Tree(Vec<Map>),
    Binary(Zeroizing<Vec<u8>>),
}

/// A decrypted SOPS file: its plaintext tree (or bytes), metadata and data key. Zeroized on drop.
pub struct Decrypted {
    format: Format,
    name: String,
    content: Content,
    metadata: Metadata,
    key: DataKey,
    /// The encrypted file as read, until the first re-encryption builds its IV stash from it. A plain
    /// decrypt never re-encrypts, so it does not pay for remembering an IV per value.
    original: Option<Vec<u8>>,
    /// The cipher re-encryption seals with: after the first one, it holds the original values' IVs.
    cipher: Cipher,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("file", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Drop for Decrypted {
    fn drop(&mut self) {
        if let Content::Tree(docs) = &mut self.content {
            for d in docs.iter_mut() {
                d.zeroize();
            }
        }
    }
}

fn crypto(file: &str, m: String) -> SopsError {
    SopsError::Crypto {
        file: file.to_string(),
        message: m,
    }
}

fn new_data_key(file: &str) -> Result<DataKey, SopsError> {
    use rand::RngCore;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut key[..])
        .map_err(|e| crypto(file, format!("random source failed: {e}")))?;
    Ok(key)
}

fn seal(
    format: Format,
    mut content: Content,
    metadata: &mut Metadata,
    key: &DataKey,
    cipher: &mut Cipher,
    style: &Style,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    metadata.lastmodified = crate::time::now_rfc3339();
    let out = match &mut content {
        Content::Binary(bytes) => {
            let mac = binary_mac(bytes, metadata.mac_only_encrypted);
            let data = cipher
                .encrypt_bytes(bytes, key, "data:")
                .map_err(|m| crypto(file, m))?;
            metadata.mac = cipher
                .encrypt(&Value::Str(mac), key, &metadata.lastmodified)
                .map_err(|m| crypto(file, m))?;
            let mut doc = Map::default();
            doc.push("data", Value::Str(data));
            store::write_encrypted(Format::Binary, &[doc], &metadata.to_map(), style)
        }
        Content::Tree(docs) => {
            let rules = Rules::new(&metadata.effective_rule(), metadata.mac_only_encrypted)
                .map_err(|m| SopsError::metadata(file, m))?;
            let mac = encrypt_documents(docs, &rules, key, cipher, file)?;
            metadata.mac = cipher
                .encrypt(&Value::Str(mac), key, &metadata.lastmodified)
                .map_err(|m| crypto(file, m))?;
            store::write_encrypted(format, docs, &metadata.to_map(), style)
        }
    };
    Ok(out.into_bytes())
}

fn read_content(format: Format, plaintext: &[u8], file: &str) -> Result<Content, SopsError> {
    if format == Format::Binary {
        return Ok(Content::Binary(Zeroizing::new(plaintext.to_vec())));
    }
    let docs = store::read_plain(format, plaintext, file)?;
    for d in &docs {
        if d.get("sops").is_some()
            || (format == Format::Dotenv && d.items().any(|(k, _)| k.starts_with("sops_")))
        {
            return Err(SopsError::AlreadyEncrypted {
                file: file.to_string(),
            });
        }
        if format == Format::Dotenv
            && d.items()
                .any(|(_, v)| matches!(v, Value::Map(_) | Value::Seq(_)))
        {
            return Err(SopsError::unsupported(file, "dotenv values must be flat"));
        }
    }
    Ok(Content::Tree(docs))
}

/// Encrypts `plaintext` (a `format` file) to the rule's recipients with sops's default output style.
///
/// `file` names the input in errors.
pub fn encrypt(
    plaintext: &[u8],
    format: Format,
    rule: &CreationRule,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    encrypt_with_style(plaintext, format, rule, &Style::default(), file)
}

/// [`encrypt`] with explicit output settings (from `.sops.yaml`'s `stores:`).
pub fn encrypt_with_style(
    plaintext: &[u8],
    format: Format,
    rule: &CreationRule,
    style: &Style,
    file: &str,
) -> Result<Vec<u8>, SopsError> {
    if rule.recipients.is_empty() {
        return Err(SopsError::NoRecipients {
            file: file.to_string(),
        });
    }
    for r in &rule.recipients {
        check_recipient(r)?;
    }
    let content = read_content(format, plaintext, file)?;
    let key = new_data_key(file)?;
    let mut age = Vec::new();
    for r in &rule.recipients {
        age.push(AgeKey {
            recipient: r.clone(),
            enc: wrap_data_key(&key, r)?,
        });
    }
    let crypt = if format == Format::Binary {
        None
    } else {
        Some(rule.crypt.clone().unwrap_or_default())
    };
    if let Some(c) = &crypt {
        Rules::new(c, rule.mac_only_encrypted).map_err(|m| SopsError::unsupported(file, m))?;
    }
    let mut metadata = Metadata {
        age,
        other_keys: Vec::new(),
        lastmodified: String::new(),
        mac: String::new(),
        crypt,
        mac_only_encrypted: rule.mac_only_encrypted,
        version: SOPS_VERSION.to_string(),
    };
    seal(
        format,
        content,
        &mut metadata,
        &key,
        &mut Cipher::new(),
        style,
        file,
    )
}

/// Encrypts `plaintext` for `path` using the creation rule `.sops.yaml` gives for it, looking for the config
/// from `config_start` upwards (sops looks from the working directory), and writes the file atomically.
pub fn encrypt_file(path: &Path, plaintext: &[u8], config_start: &Path) -> Result<(), SopsError> {
    let name = path.display().to_string();
    let config = SopsConfig::find(config_start)?.filter(SopsConfig::has_rules);
    let Some(config) = config else {
        return Err(SopsError::NoRecipients { file: name });
    };
    let rule = config.rule_for(path)?;
    let out = encrypt_with_style(
        plaintext,
        Format::from_path(path),
        &rule,
        &config.style,
        &name,
    )?;
    Ok(homelab_fs::write(
        path,
        &out,
        homelab_fs::Mode::KeepOr(0o644),
    )?)
}

/// Decrypts and verifies a file in memory.
pub fn decrypt(
    bytes: &[u8],
    format: Format,
    identities: &Identities,
    file: &str,
) -> Result<Decrypted, SopsError> {
    decrypt_owned(bytes.to_vec(), format, identities, file)
}

/// [`decrypt`] of bytes it may keep (for a later re-encryption) without copying them.
fn decrypt_owned(
    bytes: Vec<u8>,
    format: Format,
    identities: &Identities,
    file: &str,
) -> Result<Decrypted, SopsError> {
    let (docs, meta_map) = store::read_encrypted(format, &bytes, file)?;
    let metadata = Metadata::from_map(&meta_map, file)?;
    if metadata.version.is_empty() {
        return Err(SopsError::metadata(file, "version is missing"));
    }
    if metadata.age.is_empty() {
        let others: Vec<&str> = metadata
            .other_keys
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        return Err(SopsError::unsupported(
            file,
            format!(
                "the file has no age recipients (key sources: {}); only age is supported",
                others.join(", ")
            ),
        ));
    }
    let key = identities.unwrap_data_key(&metadata.age, file)?;
    let mut cipher = Cipher::new();
    let (content, computed) = open(format, docs, &metadata, &key, &mut cipher, file)?;
    verify_mac(&metadata, &key, &mut cipher, &computed, file)?;
    Ok(Decrypted {
        format,
        name: file.to_string(),
        content,
        metadata,
        key,
        original: Some(bytes),
        cipher,
    })
}

/// Decrypts the documents of an encrypted file (the data value of a binary one) with `cipher`, returning
/// the content and the MAC computed over it.
fn open(
    format: Format,
    mut docs: Vec<Map>,
    metadata: &Metadata,
    key: &DataKey,
    cipher: &mut Cipher,
    file: &str,
) -> Result<(Content, String), SopsError> {
    Ok(if format == Format::Binary {
        let data = docs
            .first()
            .and_then(|d| d.get("data"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (bytes, _) = cipher
            .decrypt_bytes(&data, key, "data:")
            .map_err(|e| match e {
                DecryptFailure::NotEncrypted => {
                    SopsError::metadata(file, "`data` is not an encrypted value")
                }
                _ => SopsError::MacMismatch {
                    file: file.to_string(),
                    detail: "the encrypted data failed authentication".into(),
                },
            })?;
        let mac = binary_mac(&bytes, metadata.mac_only_encrypted);
        (Content::Binary(bytes), mac)
    } else {
        let rules = Rules::new(&metadata.effective_rule(), metadata.mac_only_encrypted)
            .map_err(|m| SopsError::metadata(file, m))?;
        let mac = decrypt_documents(&mut docs, &rules, key, cipher, file)?;
        (Content::Tree(docs), mac)
    })
}

fn verify_mac(
    meta: &Metadata,
    key: &DataKey,
    cipher: &mut Cipher,
    computed: &str,
    file: &str,
) -> Result<(), SopsError> {
    let mismatch = |d: &str| SopsError::MacMismatch {
        file: file.to_string(),
        detail: d.to_string(),
    };
    if meta.mac.is_empty() {
        return Err(mismatch("the file has no MAC"));
    }
    let aad = crate::time::rfc3339_seconds(&meta.lastmodified)
        .ok_or_else(|| SopsError::metadata(file, "lastmodified is not an RFC 3339 time"))?;
    match cipher.decrypt(&meta.mac, key, &aad) {
        Ok(Value::Str(stored)) if stored == computed => Ok(()),
        Ok(_) => Err(mismatch("the stored MAC does not match the file's content")),
        Err(_) => Err(mismatch("the stored MAC failed authentication")),
    }
}

/// Reads and decrypts a file; the format comes from its name.
pub fn decrypt_file(path: &Path, identities: &Identities) -> Result<Decrypted, SopsError> {
    let bytes = std::fs::read(path).map_err(|e| SopsError::io(path, "reading", e))?;
    decrypt_owned(
        bytes,
        Format::from_path(path),
        identities,
        &path.display().to_string(),
    )
}

impl Decrypted {
    /// The file format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The decrypted documents (empty for binary files).
    pub fn documents(&self) -> &[Map] {
        match &self.content {
            Content::Tree(d) => d,
            Content::Binary(_) => &[],
        }
    }

    /// The value at a key path in the first document, e.g. `["proxmox", "token_secret"]`.
    pub fn lookup(&self, path: &[&str]) -> Option<&Value> {
        let doc = self.documents().first()?;
        let (first, rest) = path.split_first()?;
        doc.get(first)?.lookup(rest)
    }

    /// The age recipients the file is encrypted to.
    pub fn recipients(&self) -> Vec<String> {
        self.metadata
            .age
            .iter()
            .map(|a| a.recipient.clone())
            .collect()
    }

    /// The plaintext as `sops decrypt` prints it.
    pub fn plaintext(&self, style: &Style) -> Zeroizing<Vec<u8>> {
        match &self.content {
            Content::Binary(b) => b.clone(),
            Content::Tree(docs) => {
                Zeroizing::new(store::write_plain(self.format, docs, style).into_bytes())
            }
        }
    }

    /// One value, as `sops decrypt --extract '["a"]["b"]'` prints it (strings without a newline).
    pub fn extract(&self, path: &str, style: &Style) -> Result<Zeroizing<Vec<u8>>, SopsError> {
        let parts = parse_extract_path(path)?;
        let Content::Tree(docs) = &self.content else {
            return Err(SopsError::ExtractNotFound {
                file: self.name.clone(),
                component: path.to_string(),
            });
        };
        let mut cur = Value::Map(docs.first().cloned().unwrap_or_default());
        for p in &parts {
            let next = cur.lookup(&[p.as_str()]).cloned();
            let Some(next) = next else {
                cur.zeroize();
                return Err(SopsError::ExtractNotFound {
                    file: self.name.clone(),
                    component: p.clone(),
                });
            };
            cur.zeroize();
            cur = next;
        }
        let out = match &cur {
            Value::Str(s) | Value::Time(s) => s.as_bytes().to_vec(),
            Value::Map(m) => {
                store::write_plain(self.format, std::slice::from_ref(m), style).into_bytes()
            }
            other => format!("{}\n", scalar_plain(other)).into_bytes(),
        };
        cur.zeroize();
        Ok(Zeroizing::new(out))
    }

    /// Re-encrypts an edited plaintext with this file's data key and recipients, reusing the IVs of unchanged
    /// values so the encrypted file changes only where the plaintext did.
    pub fn reencrypt(&mut self, plaintext: &[u8], style: &Style) -> Result<Vec<u8>, SopsError> {
        let content = read_content(self.format, plaintext, &self.name)?;
        if let Some(original) = self.original.take() {
            self.cipher = self.iv_stash(&original)?;
        }
        let mut metadata = self.metadata.clone();
        if self.format != Format::Binary && metadata.crypt.is_none() {
            metadata.crypt = Some(CryptRule::default());
        }
        seal(
            self.format,
            content,
            &mut metadata,
            &self.key,
            &mut self.cipher,
            style,
            &self.name,
        )
    }

    /// A cipher that knows the IV of every value of the `original` file, by decrypting it again (it was
    /// verified when first decrypted): only re-encryption needs them.
    fn iv_stash(&self, original: &[u8]) -> Result<Cipher, SopsError> {
        let mut cipher = Cipher::stashing();
        let (docs, _) = store::read_encrypted(self.format, original, &self.name)?;
        let (content, _) = open(
            self.format,
            docs,
            &self.metadata,
            &self.key,
            &mut cipher,
            &self.name,
        )?;
        if let Content::Tree(mut docs) = content {
            for d in docs.iter_mut() {
                d.zeroize();
            }
        }
        Ok(cipher)
    }

    /// Re-wraps the data key for `recipients` and returns the new file, or `None` when they are unchanged.
    /// Values, `lastmodified` and the MAC stay as they are.
    pub fn update_keys(
        &self,
        original: &[u8],
        recipients: &[String],
        style: &Style,
    ) -> Result<Option<Vec<u8>>, SopsError> {
        let current = self.recipients();
        let mut a = current.clone();
        let mut b = recipients.to_vec();
        a.sort();
        b.sort();
        if a == b {
            return Ok(None);
        }
        let mut metadata = self.metadata.clone();
        metadata.age = Vec::new();
        for r in recipients {
            metadata.age.push(AgeKey {
                recipient: r.clone(),
                enc: wrap_data_key(&self.key, r)?,
            });
        }
        let (docs, _) = store::read_encrypted(self.format, original, &self.name)?;
        Ok(Some(
            store::write_encrypted(self.format, &docs, &metadata.to_map(), style).into_bytes(),
        ))
    }
}

fn scalar_plain(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Float(f) => crate::value::go_yaml_float(*f),
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Map(_) | Value::Seq(_) => String::new(),
    }
}

/// Parses `["a"]["b"][0]` into components.
fn parse_extract_path(path: &str) -> Result<Vec<String>, SopsError> {
    let err = |m: &str| SopsError::ExtractSyntax {
        path: path.to_string(),
        message: m.to_string(),
    };
    let mut out = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix('[') else {
            return Err(err("expected '['"));
        };
        let r = r.trim_start();
        if let Some(q) = r.strip_prefix('"').or_else(|| r.strip_prefix('\'')) {
            let quote = if r.starts_with('"') { '"' } else { '\'' };
            let end = q.find(quote).ok_or_else(|| err("unterminated string"))?;
            out.push(q[..end].to_string());
            let after = q[end + 1..].trim_start();
            rest = after.strip_prefix(']').ok_or_else(|| err("expected ']'"))?;
        } else {
            let end = r.find(']').ok_or_else(|| err("expected ']'"))?;
            let idx = r[..end].trim();
            if idx.parse::<usize>().is_err() {
                return Err(err("an unquoted component must be a list index"));
            }
            out.push(idx.to_string());
            rest = &r[end + 1..];
        }
        rest = rest.trim_start();
    }
    if out.is_empty() {
        return Err(err("empty path"));
    }
    Ok(out)
}
