//! The Talos secrets bundle in `talos-secrets.enc.yaml`: read it, generate it exactly once (only when the
//! caller knows no cluster exists yet), or import one from a backup. It is never regenerated silently.

use homelab_fs::Mode;
use homelab_sops::{Style, decrypt_file};
use homelab_talos::secrets::SecretsBundle;
use zeroize::Zeroizing;

use crate::error::RepoError;
use crate::files::encrypt_for;
use crate::{Repo, TALOS_SECRETS_FILE};

/// Where the bundle [`Repo::talos_bundle_or_create`] returned came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleSource {
    /// Read from `talos-secrets.enc.yaml`.
    Existing,
    /// Generated now and written to `talos-secrets.enc.yaml`.
    Created,
}

impl Repo {
    /// The bundle in `talos-secrets.enc.yaml`, or `None` when the file does not exist.
    pub fn talos_bundle(&self) -> Result<Option<SecretsBundle>, RepoError> {
        let path = self.path(TALOS_SECRETS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let decrypted = decrypt_file(&path, self.identities())?;
        let text = decrypted.plaintext(&Style::default());
        let text = std::str::from_utf8(&text).map_err(|_| RepoError::BundleInvalid {
            path: path.clone(),
            source: homelab_talos::secrets::SecretsError::Parse {
                reason: "the decrypted file is not UTF-8".into(),
            },
        })?;
        SecretsBundle::from_yaml(text)
            .map(Some)
            .map_err(|source| RepoError::BundleInvalid { path, source })
    }

    /// The bundle, or an error saying how to get one when there is none yet.
    pub fn talos_bundle_required(&self) -> Result<SecretsBundle, RepoError> {
        self.talos_bundle()?.ok_or_else(|| RepoError::NoBundleYet {
            path: self.path(TALOS_SECRETS_FILE),
        })
    }

    /// The bundle in `talos-secrets.enc.yaml`. When the file is missing: if `cluster_may_exist` is false (the
    /// caller observed that no machine of this cluster exists), a new bundle is generated, written encrypted
    /// through `.sops.yaml` (never replacing a file that appeared meanwhile) and returned; otherwise
    /// [`RepoError::BundleMissing`] explains the recovery.
    pub fn talos_bundle_or_create(
        &self,
        cluster_may_exist: bool,
    ) -> Result<(SecretsBundle, BundleSource), RepoError> {
        if let Some(bundle) = self.talos_bundle()? {
            return Ok((bundle, BundleSource::Existing));
        }
        let path = self.path(TALOS_SECRETS_FILE);
        if cluster_may_exist {
            return Err(RepoError::BundleMissing { path });
        }
        let bundle = SecretsBundle::generate().map_err(RepoError::BundleGenerate)?;
        let bytes = self.encrypt_bundle(&bundle)?;
        if homelab_fs::write_new(&path, &bytes, Mode::Private)? {
            return Ok((bundle, BundleSource::Created));
        }
        // Another run created it between our check and our write: theirs wins.
        Ok((self.talos_bundle_required()?, BundleSource::Existing))
    }

    /// Imports a plain bundle (`talosctl gen secrets`, talhelper, the Terraform provider) into
    /// `talos-secrets.enc.yaml`, validated first. An existing file is replaced only with `force`.
    pub fn import_talos_bundle(&self, text: &str, force: bool) -> Result<SecretsBundle, RepoError> {
        let path = self.path(TALOS_SECRETS_FILE);
        let bundle = SecretsBundle::from_yaml(text).map_err(|source| RepoError::BundleInvalid {
            path: path.clone(),
            source,
        })?;
        let bytes = self.encrypt_bundle(&bundle)?;
        if force {
            homelab_fs::write(&path, &bytes, Mode::KeepOr(0o644))?;
        } else if !homelab_fs::write_new(&path, &bytes, Mode::Private)? {
            return Err(RepoError::BundleExists { path });
        }
        Ok(bundle)
    }

    fn encrypt_bundle(&self, bundle: &SecretsBundle) -> Result<Vec<u8>, RepoError> {
        let path = self.path(TALOS_SECRETS_FILE);
        let yaml: Zeroizing<String> =
            bundle
                .to_yaml()
                .map_err(|source| RepoError::BundleInvalid {
                    path: path.clone(),
                    source,
                })?;
        encrypt_for(self.root(), &path, yaml.as_bytes())
    }
}
