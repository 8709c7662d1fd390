//! A homelab repository's secrets and outputs: the Proxmox API token secret (`secrets.enc.yaml`), the Talos
//! secrets bundle (`talos-secrets.enc.yaml`, generated once and reused forever), the client configurations
//! made from it (talosconfig, kubeconfig) — exported SOPS-encrypted under `output/` or decrypted for local use —
//! and the age-encrypted etcd snapshots under `backups/`.
//!
//! Everything secret stays encrypted on disk through the repository's `.sops.yaml` creation rules, except what
//! [`Repo::decrypt_outputs`] writes on request (mode 0600, gitignored). Decrypted material is held in zeroizing
//! types. It does not talk to Proxmox, Talos or Kubernetes, does not parse arguments and never prints.
//!
//! ```no_run
//! use std::path::Path;
//! use homelab_repo::Repo;
//!
//! # fn main() -> Result<(), homelab_repo::RepoError> {
//! let repo = Repo::open(Path::new("homelab.yaml"))?;
//! let token = repo.proxmox_token_secret()?;
//! let bundle = repo.talos_bundle_or_create(false)?;
//! # let _ = (token, bundle);
//! # Ok(()) }
//! ```

mod backups;
mod bundle;
mod error;
mod files;
mod outputs;
mod token;

use std::path::{Path, PathBuf};

use homelab_sops::{Identities, SopsConfig, Style};

pub use backups::{BACKUP_DIR, Snapshot, SnapshotMeta, SnapshotTarget, SnapshotWriter};
pub use bundle::BundleSource;
pub use error::RepoError;
pub use outputs::{OutputFile, OutputName, Outputs, Written};
pub use token::TOKEN_ENV;

/// `secrets.enc.yaml`: the Proxmox API token secret (and anything else truly secret).
pub const SECRETS_FILE: &str = "secrets.enc.yaml";
/// `talos-secrets.enc.yaml`: the Talos secrets bundle.
pub const TALOS_SECRETS_FILE: &str = "talos-secrets.enc.yaml";
/// The directory `config export` writes to.
pub const OUTPUT_DIR: &str = "output";

/// An opened homelab repository: its root (the directory of `homelab.yaml`) and the age identities that
/// decrypt its files.
#[derive(Debug)]
pub struct Repo {
    root: PathBuf,
    identities: Identities,
}

impl Repo {
    /// Opens the repository whose `homelab.yaml` is `config_path` (the file need not exist for the secrets
    /// operations), finding age identities the way sops does plus the repository's `.age-key.txt`.
    pub fn open(config_path: &Path) -> Result<Repo, RepoError> {
        let root = match config_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let identities = Identities::discover(Some(&root))?;
        Ok(Repo { root, identities })
    }

    /// A repository at `root` using exactly `identities` (tests, the demo).
    pub fn with_identities(root: impl Into<PathBuf>, identities: Identities) -> Repo {
        Repo {
            root: root.into(),
            identities,
        }
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The identities used to decrypt.
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// A path inside the repository.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The output layout (`stores:` of `.sops.yaml`, sops's defaults without one).
    fn style(&self) -> Result<Style, RepoError> {
        Ok(SopsConfig::find(&self.root)?
            .map(|c| c.style)
            .unwrap_or_default())
    }
}
