//! Where age identities come from, for every command that decrypts: the sources sops reads
//! (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`, the default `<config dir>/sops/age/keys.txt`
//! under sops' own XDG rules), all combined, plus homelabctl's repo-local `.age-key.txt`; and the
//! wrapping/unwrapping of a file's data key with them.

use std::ffi::OsString;
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

/// The environment, as a lookup: the process's in production, a fixed map in tests.
type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The user config directory as sops (age/keysource.go `getUserConfigDir`) finds it. On Linux that is Go's
/// `os.UserConfigDir()`: `$XDG_CONFIG_HOME` when set and absolute, an error when set but relative (Go
/// does not fall back to `$HOME` then), else `$HOME/.config`. On macOS sops takes a non-empty
/// `$XDG_CONFIG_HOME` as it is (relative or not), else `$HOME/Library/Application Support`.
fn user_config_dir(env: Env<'_>) -> Result<PathBuf, &'static str> {
    let xdg = env("XDG_CONFIG_HOME").filter(|v| !v.is_empty());
    let home = env("HOME").filter(|v| !v.is_empty());
    if cfg!(target_os = "macos") {
        if let Some(x) = xdg {
            return Ok(PathBuf::from(x));
        }
        return home
            .map(|h| PathBuf::from(h).join("Library/Application Support"))
            .ok_or("$HOME is not defined");
    }
    match xdg {
        Some(x) if Path::new(&x).is_absolute() => Ok(PathBuf::from(x)),
        Some(_) => Err("path in $XDG_CONFIG_HOME is relative"),
        None => home
            .map(|h| PathBuf::from(h).join(".config"))
            .ok_or("neither $XDG_CONFIG_HOME nor $HOME are defined"),
    }
}

/// sops' default identity file, `<user config dir>/sops/age/keys.txt` (see [`user_config_dir`]); `None`
/// when sops could not determine that directory either.
pub fn default_key_file() -> Option<PathBuf> {
    user_config_dir(&process_env)
        .ok()
        .map(|d| d.join(DEFAULT_KEY_PATH))
}

/// Where sops reads the operator's own identity: `SOPS_AGE_KEY_FILE` when set, else [`default_key_file`].
/// `homelabctl setup` creates the identity there.
pub fn personal_key_file() -> Result<PathBuf, SopsError> {
    if let Some(file) = std::env::var_os("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(file));
    }
    user_config_dir(&process_env)
        .map(|d| d.join(DEFAULT_KEY_PATH))
        .map_err(|reason| SopsError::Identity {
            source_name: "sops' default keys.txt".into(),
            message: format!(
                "its location is unknown: {reason}; set SOPS_AGE_KEY_FILE or an absolute XDG_CONFIG_HOME"
            ),
        })
}

/// The default identity file below the user config dir (sops' `SopsAgeKeyUserConfigPath`).
const DEFAULT_KEY_PATH: &str = "sops/age/keys.txt";

/// The repository-local identity file `homelabctl init` writes (gitignored).
pub const REPO_KEY_FILE: &str = ".age-key.txt";

impl Identities {
    /// The one place that knows where age identities come from. Every source sops reads is used, all
    /// combined as sops combines them: `SOPS_AGE_KEY` (inline), `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD`
    /// (run when needed), the default `keys.txt` under the user config dir; plus, with `repo_root`, the
    /// repository's `.age-key.txt`. One source never hides another (a personal `SOPS_AGE_KEY_FILE` must
    /// not hide the repository key), each file is read and listed once however many names lead to it,
    /// and a source that cannot be used is noted in [`Identities::searched`] rather than ending the
    /// search, as sops does, so the error names it only if no other identity decrypts (which is why this
    /// returns `Ok` today; the `Result` keeps callers ready for a source that must fail loudly).
    pub fn discover(repo_root: Option<&Path>) -> Result<Identities, SopsError> {
        Ok(Self::discover_in(repo_root, &process_env))
    }

    fn discover_in(repo_root: Option<&Path>, env: Env<'_>) -> Identities {
        let mut ids = Identities::default();
        let mut seen: Vec<PathBuf> = Vec::new();
        if let Some(inline) = env("SOPS_AGE_KEY") {
            let inline = Zeroizing::new(inline.to_string_lossy().into_owned());
            ids.add_text(&inline, "SOPS_AGE_KEY".into());
        }
        if let Some(file) = env("SOPS_AGE_KEY_FILE").filter(|v| !v.is_empty()) {
            ids.add_file(Path::new(&file), Some("SOPS_AGE_KEY_FILE"), &mut seen);
        }
        if let Some(cmd) = env("SOPS_AGE_KEY_CMD")
            .map(|c| c.to_string_lossy().into_owned())
            .filter(|c| !c.trim().is_empty())
        {
            ids.searched.push(format!("SOPS_AGE_KEY_CMD ({cmd})"));
            ids.command = Some(cmd);
        }
        match user_config_dir(env) {
            Ok(dir) => ids.add_file(&dir.join(DEFAULT_KEY_PATH), None, &mut seen),
            Err(reason) => ids
                .searched
                .push(format!("sops' default keys.txt (not looked for: {reason})")),
        }
        if let Some(root) = repo_root {
            ids.add_file(&root.join(REPO_KEY_FILE), None, &mut seen);
        }
        ids
    }

    /// Identities from identity-file text (tests, `SOPS_AGE_KEY`-like input).
    pub fn from_text(text: &str) -> Result<Identities, SopsError> {
        Ok(Identities {
            keys: parse_identities(text, "identity text")?,
            searched: vec!["identity text".into()],
            command: None,
        })
    }

    /// Adds the identities of text from `label`; text that is not identities is noted, not fatal.
    fn add_text(&mut self, text: &str, label: String) {
        match parse_identities(text, &label) {
            Ok(keys) => {
                self.keys.extend(keys);
                self.searched.push(label);
            }
            Err(e) => self.searched.push(format!("{label} (unusable: {e})")),
        }
    }

    /// Adds the identities of one file, unless `seen` shows it was read already under another name. A
    /// missing file is listed (it is a place looked in); `variable` names the variable that pointed here.
    fn add_file(&mut self, path: &Path, variable: Option<&str>, seen: &mut Vec<PathBuf>) {
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if seen.contains(&identity) {
            return;
        }
        seen.push(identity);
        let label = match variable {
            Some(v) => format!("{} ({v})", path.display()),
            None => path.display().to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_text(&Zeroizing::new(text), label),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.searched.push(match variable {
                    Some(v) => format!("{} ({v}; no such file)", path.display()),
                    None => label,
                });
            }
            Err(e) => self.searched.push(format!("{label} (unreadable: {e})")),
        }
    }

    /// The identity-file text (one `AGE-SECRET-KEY-1…` line each) of the loaded identities whose public
    /// key is one of `recipients`, and those public keys; `None` when none is. For handing the key that
    /// decrypts a repository to another decrypter (Flux's kustomize-controller) without the others.
    pub fn export_for(&self, recipients: &[String]) -> Option<(Zeroizing<String>, Vec<String>)> {
        use age::secrecy::ExposeSecret as _;
        let mut text = Zeroizing::new(String::new());
        let mut matched: Vec<String> = Vec::new();
        for id in &self.keys {
            let public = id.to_public().to_string();
            if recipients.iter().any(|r| r.trim() == public) && !matched.contains(&public) {
                text.push_str(&format!("# public key: {public}\n"));
                text.push_str(id.to_string().expose_secret());
                text.push('\n');
                matched.push(public);
            }
        }
        (!matched.is_empty()).then_some((text, matched))
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

    /// A fixed environment for [`Identities::discover_in`].
    fn env_of(vars: Vec<(&str, PathBuf)>) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_os_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn write_identity(path: &Path) -> String {
        let id = x25519::Identity::generate();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        use age::secrecy::ExposeSecret as _;
        std::fs::write(path, format!("{}\n", id.to_string().expose_secret())).expect("write");
        id.to_public().to_string()
    }

    #[test]
    fn an_unrelated_key_file_does_not_hide_the_repository_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let personal = write_identity(&dir.path().join("personal.txt"));
        let repo = write_identity(&dir.path().join("repo").join(REPO_KEY_FILE));
        let env = env_of(vec![
            ("SOPS_AGE_KEY_FILE", dir.path().join("personal.txt")),
            ("HOME", dir.path().join("home")),
        ]);
        let ids = Identities::discover_in(Some(&dir.path().join("repo")), &env);
        assert_eq!(ids.len(), 2);
        assert!(ids.export_for(&[personal]).is_some());
        let (text, matched) = ids
            .export_for(std::slice::from_ref(&repo))
            .expect("repo key");
        assert_eq!(text.matches("AGE-SECRET-KEY-1").count(), 1);
        assert_eq!(matched, vec![repo]);
        assert!(ids.export_for(&["age1other".to_string()]).is_none());
    }

    #[test]
    fn each_place_is_listed_once_however_it_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("cfg/sops/age/keys.txt");
        write_identity(&keys);
        // SOPS_AGE_KEY_FILE names the default file, and the repository is the config dir's key too.
        let env = env_of(vec![
            ("SOPS_AGE_KEY_FILE", keys.clone()),
            ("XDG_CONFIG_HOME", dir.path().join("cfg")),
        ]);
        let ids = Identities::discover_in(Some(dir.path()), &env);
        assert_eq!(ids.len(), 1);
        let listed: Vec<&String> = ids
            .searched()
            .iter()
            .filter(|s| s.contains("keys.txt"))
            .collect();
        assert_eq!(listed.len(), 1, "{:?}", ids.searched());
    }

    #[test]
    fn xdg_config_home_follows_sops_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let abs = dir.path().join("xdg");
        assert_eq!(
            user_config_dir(&env_of(vec![
                ("XDG_CONFIG_HOME", abs.clone()),
                ("HOME", home.clone())
            ])),
            Ok(abs.clone())
        );
        let relative = user_config_dir(&env_of(vec![
            ("XDG_CONFIG_HOME", PathBuf::from("rel/xdg")),
            ("HOME", home.clone()),
        ]));
        if cfg!(target_os = "macos") {
            assert_eq!(relative, Ok(PathBuf::from("rel/xdg")));
        } else {
            // Go's os.UserConfigDir refuses it and does not fall back to $HOME; so does sops.
            assert_eq!(relative, Err("path in $XDG_CONFIG_HOME is relative"));
            assert_eq!(
                user_config_dir(&env_of(vec![("HOME", home.clone())])),
                Ok(home.join(".config"))
            );
        }
        assert!(user_config_dir(&env_of(vec![])).is_err());
    }

    #[test]
    fn an_unusable_source_is_noted_and_the_others_still_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("plugin.txt"), "AGE-PLUGIN-YUBIKEY-1XYZ\n").expect("write");
        write_identity(&dir.path().join(REPO_KEY_FILE));
        let env = env_of(vec![
            ("SOPS_AGE_KEY_FILE", dir.path().join("plugin.txt")),
            ("XDG_CONFIG_HOME", PathBuf::from("relative")),
        ]);
        let ids = Identities::discover_in(Some(dir.path()), &env);
        assert_eq!(ids.len(), 1);
        let searched = ids.searched().join("; ");
        assert!(
            searched.contains("plugin.txt (SOPS_AGE_KEY_FILE) (unusable:"),
            "{searched}"
        );
        if !cfg!(target_os = "macos") {
            assert!(searched.contains("not looked for: path in $XDG_CONFIG_HOME is relative"));
        }
    }

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
