//! The Proxmox API token secret: read from `secrets.enc.yaml` (`proxmox.token_secret`) or the
//! `HOMELAB_PROXMOX_TOKEN_SECRET` environment variable, and stored there encrypted without hand-editing.

use homelab_fs::Mode;
use homelab_sops::{Entry, Key, Map, Value, decrypt_file, render_plaintext};
use secrecy::SecretString;
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::RepoError;
use crate::files::encrypt_for;
use crate::{Repo, SECRETS_FILE};

/// Environment variable that overrides `secrets.enc.yaml`'s `proxmox.token_secret` (CI, one-off runs).
pub const TOKEN_ENV: &str = "HOMELAB_PROXMOX_TOKEN_SECRET";

impl Repo {
    /// The Proxmox API token secret: `HOMELAB_PROXMOX_TOKEN_SECRET` when set and non-empty, otherwise
    /// `proxmox.token_secret` from the decrypted `secrets.enc.yaml`.
    pub fn proxmox_token_secret(&self) -> Result<SecretString, RepoError> {
        if let Ok(v) = std::env::var(TOKEN_ENV) {
            let v = Zeroizing::new(v);
            if !v.trim().is_empty() {
                return Ok(SecretString::from(v.trim().to_string()));
            }
        }
        self.proxmox_token_secret_from_file()
    }

    /// `proxmox.token_secret` from `secrets.enc.yaml`, ignoring the environment.
    pub fn proxmox_token_secret_from_file(&self) -> Result<SecretString, RepoError> {
        let path = self.path(SECRETS_FILE);
        if !path.exists() {
            return Err(RepoError::SecretsFileMissing { path });
        }
        let decrypted = decrypt_file(&path, self.identities())?;
        match decrypted.lookup(&["proxmox", "token_secret"]) {
            Some(Value::Str(s)) if !s.trim().is_empty() => {
                Ok(SecretString::from(s.trim().to_string()))
            }
            _ => Err(RepoError::TokenMissing { path }),
        }
    }

    /// Stores `secret` as `proxmox.token_secret` in `secrets.enc.yaml`: creates the file through the
    /// `.sops.yaml` rules, or updates it in place (other keys, comments and recipients kept).
    pub fn set_proxmox_token_secret(&self, secret: &str) -> Result<(), RepoError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(RepoError::TokenInvalid("an empty value"));
        }
        if secret.contains(['\n', '\r']) {
            return Err(RepoError::TokenInvalid("several lines"));
        }
        let path = self.path(SECRETS_FILE);
        let style = self.style()?;
        if !path.exists() {
            let mut doc = Map::default();
            let mut proxmox = Map::default();
            proxmox.push("token_secret", Value::Str(secret.to_string()));
            doc.push("proxmox", Value::Map(proxmox));
            let plain = Zeroizing::new(render_plaintext(
                homelab_sops::Format::Yaml,
                std::slice::from_ref(&doc),
                &style,
            ));
            doc.zeroize();
            let bytes = encrypt_for(self.root(), &path, plain.as_bytes())?;
            if homelab_fs::write_new(&path, &bytes, Mode::Private)? {
                return Ok(());
            }
            // Someone created it meanwhile: fall through and update theirs.
        }
        let mut decrypted = decrypt_file(&path, self.identities())?;
        let mut docs: Vec<Map> = decrypted.documents().to_vec();
        let result = (|| {
            let doc = docs.first_mut().ok_or_else(|| RepoError::SecretsShape {
                path: path.clone(),
                message: "the file has no document".into(),
            })?;
            set_path(doc, "proxmox", "token_secret", secret).map_err(|message| {
                RepoError::SecretsShape {
                    path: path.clone(),
                    message,
                }
            })?;
            let plain = Zeroizing::new(render_plaintext(decrypted.format(), &docs, &style));
            let bytes = decrypted.reencrypt(plain.as_bytes(), &style)?;
            homelab_fs::write(&path, &bytes, Mode::KeepOr(0o644))?;
            Ok(())
        })();
        docs.iter_mut().for_each(|d| d.zeroize());
        result
    }
}

/// Sets `doc.<outer>.<inner> = value`, creating `outer` when absent and keeping every other entry in place.
fn set_path(doc: &mut Map, outer: &str, inner: &str, value: &str) -> Result<(), String> {
    let slot = doc.entries.iter_mut().find_map(|e| match e {
        Entry::Item(k, v) if k.text == outer => Some(v),
        _ => None,
    });
    let Some(slot) = slot else {
        let mut m = Map::default();
        m.push(inner, Value::Str(value.to_string()));
        doc.push(outer, Value::Map(m));
        return Ok(());
    };
    let Value::Map(m) = slot else {
        return Err(format!(
            "`{outer}` is not a mapping; fix it with `homelabctl sops edit`"
        ));
    };
    for e in m.entries.iter_mut() {
        if let Entry::Item(k, v) = e
            && k.text == inner
        {
            v.zeroize();
            *v = Value::Str(value.to_string());
            return Ok(());
        }
    }
    m.entries
        .push(Entry::Item(Key::new(inner), Value::Str(value.to_string())));
    Ok(())
}
