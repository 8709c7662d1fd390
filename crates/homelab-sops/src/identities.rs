//! age identities, found the way sops finds them (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, the
//! default `<config dir>/sops/age/keys.txt`, all combined) plus homelabctl's repo-local `.age-key.txt`, and the
//! wrapping/unwrapping of a file's data key with them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::x25519;
use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::error::SopsError;
use crate::metadata::AgeKey;

/// A set of age identities and where they came from. Secret key material is zeroized by the age crate.
#[derive(Default)]
pub struct Identities {
    keys: Vec<x25519::Identity>,
    /// Human-readable list of the places looked at (for "no identity" errors).
    searched: Vec<String>,
    /// `SOPS_AGE_KEY_CMD`, run lazily with `SOPS_AGE_RECIPIENT` set.
    command: Option<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.keys.len())
            .field("searched", &self.searched)
            .finish()
    }
}

/// Parses identity-file text: `AGE-SECRET-KEY-1…` lines; blank lines and `#` comments are skipped.
fn parse_identities(text: &str, source: &str) -> Result<Vec<x25519::Identity>, SopsError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // sops 3.13 also accepts several identities on one line separated by spaces.
        for word in line.split_whitespace() {
            if word.starts_with("AGE-PLUGIN-") || word.starts_with("AGE-SECRET-KEY-PQ-") {
                return Err(SopsError::Identity {
                    source_name: source.to_string(),
                    message: format!(
                        "line {}: plugin and post-quantum age identities are not supported",
                        n + 1
                    ),
                });
            }
            let id = x25519::Identity::from_str(word).map_err(|_| SopsError::Identity {
                source_name: source.to_string(),
                message: format!(
                    "line {}: not an age identity (expected AGE-SECRET-KEY-1…)",
                    n + 1
                ),
            })?;
            out.push(id);
        }
    }
    Ok(out)
}

/// The default sops key file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else Go's `os.UserConfigDir()`.
pub fn default_key_file() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("sops/age/keys.txt"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let base = if cfg!(target_os = "macos") {
        PathBuf::from(home).join("Library/Application Support")
    } else {
        PathBuf::from(home).join(".config")
    };
    Some(base.join("sops/age/keys.txt"))
}

impl Identities {
    /// Finds identities the way sops does, all sources combined:
    /// `SOPS_AGE_KEY` (inline), `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD` (run when needed), and the default
    /// `keys.txt` under the user config dir. When `SOPS_AGE_KEY_FILE` is not set and `repo_root` is given,
    /// the repository's `.age-key.txt` is used too (homelabctl's repo-local identity).
    pub fn discover(repo_root: Option<&Path>) -> Result<Identities, SopsError> {
        let mut ids = Identities::default();
        if let Ok(inline) = std::env::var("SOPS_AGE_KEY") {
            ids.searched.push("SOPS_AGE_KEY".into());
            let inline = Zeroizing::new(inline);
            ids.keys.extend(parse_identities(&inline, "SOPS_AGE_KEY")?);
        }
        match std::env::var_os("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
            Some(file) => ids.add_file(Path::new(&file), true)?,
            None => {
                if let Some(root) = repo_root {
                    ids.add_file(&root.join(".age-key.txt"), false)?;
                }
            }
        }
        if let Ok(cmd) = std::env::var("SOPS_AGE_KEY_CMD")
            && !cmd.trim().is_empty()
        {
            ids.searched.push(format!("SOPS_AGE_KEY_CMD ({cmd})"));
            ids.command = Some(cmd);
        }
        if let Some(default) = default_key_file() {
            ids.add_file(&default, false)?;
        }
        Ok(ids)
    }

    /// Identities from identity-file text (tests, `SOPS_AGE_KEY`-like input).
    pub fn from_text(text: &str) -> Result<Identities, SopsError> {
        Ok(Identities {
            keys: parse_identities(text, "identity text")?,
            searched: vec!["identity text".into()],
            command: None,
        })
    }

    /// Adds the identities of one file. A missing file is an error only when `required`.
    pub fn add_file(&mut self, path: &Path, required: bool) -> Result<(), SopsError> {
        self.searched.push(path.display().to_string());
        let text = match std::fs::read_to_string(path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(()),
            Err(e) => return Err(SopsError::io(path, "reading age identities", e)),
        };
        self.keys
            .extend(parse_identities(&text, &path.display().to_string())?);
        Ok(())
    }

    /// Number of identities loaded (the command source not counted).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no identity was loaded and no key command is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.command.is_none()
    }

    /// Where identities were looked for.
    pub fn searched(&self) -> &[String] {
        &self.searched
    }

    /// Unwraps the data key from the file's age stanzas.
    pub fn unwrap_data_key(&self, keys: &[AgeKey], file: &str) -> Result<DataKey, SopsError> {
        for k in keys {
            if let Some(key) = try_unwrap(&k.enc, &self.keys) {
                return Ok(key);
            }
        }
        if let Some(cmd) = &self.command {
            for k in keys {
                let extra = run_key_command(cmd, &k.recipient)?;
                if let Some(key) = try_unwrap(&k.enc, &extra) {
                    return Ok(key);
                }
            }
        }
        Err(SopsError::NoIdentity {
            file: file.to_string(),
            recipients: keys.iter().map(|k| k.recipient.clone()).collect(),
            searched: self.searched.clone(),
        })
    }
}

impl Identities {
    /// Opens a whole age file (binary or ASCII-armored, as `age -d -i KEY` reads it) with these identities:
    /// a reader of its plaintext. `SOPS_AGE_KEY_CMD` is not consulted (age files name no recipient to
    /// hand it). `file` names the input in errors.
    pub fn decrypt_stream<R: Read>(&self, input: R, file: &str) -> Result<impl Read, SopsError> {
        let crypto = |message: String| SopsError::Crypto {
            file: file.to_string(),
            message,
        };
        let reader = age::armor::ArmoredReader::new(input);
        let decryptor =
            age::Decryptor::new(reader).map_err(|e| crypto(format!("not an age file: {e}")))?;
        if self.keys.is_empty() {
            return Err(SopsError::NoIdentity {
                file: file.to_string(),
                recipients: Vec::new(),
                searched: self.searched.clone(),
            });
        }
        decryptor
            .decrypt(self.keys.iter().map(|i| i as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => SopsError::NoIdentity {
                    file: file.to_string(),
                    recipients: Vec::new(),
                    searched: self.searched.clone(),
                },
                other => crypto(other.to_string()),
            })
    }
}

fn try_unwrap(enc: &str, ids: &[x25519::Identity]) -> Option<DataKey> {
    if ids.is_empty() {
        return None;
    }
    let reader = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(reader).ok()?;
    let mut r = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .ok()?;
    let mut buf = Zeroizing::new(Vec::with_capacity(32));
    r.read_to_end(&mut buf).ok()?;
    let arr: [u8; 32] = buf.as_slice().try_into().ok()?;
    Some(Zeroizing::new(arr))
}

/// Splits a command line like Go's shlex (quotes and backslashes, no shell).
pub(crate) fn split_command(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn run_key_command(cmd: &str, recipient: &str) -> Result<Vec<x25519::Identity>, SopsError> {
    let words = split_command(cmd);
    let Some((prog, args)) = words.split_first() else {
        return Ok(Vec::new());
    };
    let err = |m: String| SopsError::Identity {
        source_name: "SOPS_AGE_KEY_CMD".into(),
        message: m,
    };
    let out = std::process::Command::new(prog)
        .args(args)
        .env("SOPS_AGE_RECIPIENT", recipient)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| err(format!("could not run {prog:?}: {e}")))?;
    if !out.status.success() {
        return Err(err(format!("{prog:?} failed with {}", out.status)));
    }
    let text = Zeroizing::new(
        String::from_utf8(out.stdout).map_err(|_| err("output is not UTF-8".into()))?,
    );
    parse_identities(&text, "SOPS_AGE_KEY_CMD")
}

/// Wraps `key` for one age recipient (ASCII-armored, as sops writes it).
pub fn wrap_data_key(key: &DataKey, recipient: &str) -> Result<String, SopsError> {
    let r = x25519::Recipient::from_str(recipient.trim()).map_err(|e| SopsError::Recipient {
        recipient: recipient.to_string(),
        reason: format!("{e} (only X25519 `age1…` recipients are supported)"),
    })?;
    let crypto = |m: String| SopsError::Crypto {
        file: recipient.to_string(),
        message: m,
    };
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|e| crypto(format!("age: {e}")))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| crypto(format!("age armor: {e}")))?;
    let mut w = encryptor
        .wrap_output(armor)
        .map_err(|e| crypto(format!("age: {e}")))?;
    w.write_all(&key[..])
        .map_err(|e| crypto(format!("age: {e}")))?;
    w.finish()
        .and_then(|a| a.finish())
        .map_err(|e| crypto(format!("age: {e}")))?;
    let mut text = String::from_utf8(out).map_err(|_| crypto("age armor is not UTF-8".into()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Checks that a recipient string is a valid X25519 age recipient.
pub fn check_recipient(recipient: &str) -> Result<(), SopsError> {
    x25519::Recipient::from_str(recipient.trim())
        .map(|_| ())
        .map_err(|e| SopsError::Recipient {
            recipient: recipient.to_string(),
            reason: format!("{e} (only X25519 `age1…` recipients are supported)"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_shlex() {
        assert_eq!(
            split_command(r#"cat "/a b/k.txt" 'x y' z\ w"#),
            vec!["cat", "/a b/k.txt", "x y", "z w"]
        );
    }

    #[test]
    fn wrapped_key_unwraps_with_matching_identity_only() {
        let id = x25519::Identity::generate();
        let other = x25519::Identity::generate();
        let key: DataKey = Zeroizing::new([9u8; 32]);
        let enc = wrap_data_key(&key, &id.to_public().to_string()).expect("wrap");
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert_eq!(
            try_unwrap(&enc, &[other.clone(), id]).as_deref(),
            Some(&[9u8; 32])
        );
        assert!(try_unwrap(&enc, &[other]).is_none());
    }
}
