//! The crate's error type: each variant names the file that failed and says how to fix it. No variant ever
//! carries decrypted material.

use std::path::PathBuf;

use homelab_sops::SopsError;
use homelab_talos::kubeconfig::KubeconfigError;
use homelab_talos::secrets::SecretsError;
use homelab_talos::talosconfig::TalosconfigError;

/// Everything that can go wrong reading or writing a repository's secrets and outputs.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A SOPS operation failed (decrypting, encrypting, finding `.sops.yaml`).
    #[error(transparent)]
    Sops(#[from] SopsError),

    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    /// `secrets.enc.yaml` does not exist.
    #[error(
        "{}: not found, so there is no Proxmox API token secret.\n\
         hint: run `homelabctl secrets set-proxmox-token` and paste the secret on standard input, \
         or create the file with `homelabctl sops edit secrets.enc.yaml` containing\n    proxmox:\n        token_secret: <the token's secret UUID>\n\
         (or set HOMELAB_PROXMOX_TOKEN_SECRET for this run)",
        path.display()
    )]
    SecretsFileMissing { path: PathBuf },

    /// `secrets.enc.yaml` has no `proxmox.token_secret` string.
    #[error(
        "{}: has no `proxmox.token_secret` string.\n\
         hint: run `homelabctl secrets set-proxmox-token` and paste the secret on standard input, \
         or add it with `homelabctl sops edit secrets.enc.yaml`:\n    proxmox:\n        token_secret: <the token's secret UUID>",
        path.display()
    )]
    TokenMissing { path: PathBuf },

    /// The token secret given to store is empty or spans several lines.
    #[error("the Proxmox token secret must be one non-empty line (got {0})")]
    TokenInvalid(&'static str),

    /// `secrets.enc.yaml` exists but is not a mapping we can update.
    #[error("{}: {message}", path.display())]
    SecretsShape { path: PathBuf, message: String },

    /// The Talos bundle is missing while a cluster may already exist: generating a new one would lock the
    /// cluster out, so recovery is the user's call.
    #[error(
        "{}: not found, but a cluster may already exist (its machines carry the CAs of the original bundle, \
         so a new bundle would lock homelabctl out of it).\n\
         hint: restore the file from git or a backup, or import the bundle the cluster was made with: \
         `homelabctl talos secrets import FILE` (a `talosctl gen secrets` / talhelper / Terraform bundle)",
        path.display()
    )]
    BundleMissing { path: PathBuf },

    /// No Talos bundle exists yet and the caller did not ask to create one.
    #[error(
        "{}: not found: no cluster has been created from this repository yet.\n\
         hint: run `homelabctl apply` (it generates the bundle), or import an existing one with \
         `homelabctl talos secrets import FILE`",
        path.display()
    )]
    NoBundleYet { path: PathBuf },

    /// A bundle exists where an import would write one.
    #[error(
        "{}: already exists; importing would replace the cluster's CAs.\n\
         hint: pass --force only if the cluster was made with the bundle you import",
        path.display()
    )]
    BundleExists { path: PathBuf },

    /// The decrypted bundle is not a valid Talos bundle.
    #[error("{}: {source}", path.display())]
    BundleInvalid { path: PathBuf, source: SecretsError },

    /// A new bundle could not be generated.
    #[error("generating the Talos secrets bundle: {0}")]
    BundleGenerate(SecretsError),

    /// homelab.yaml has no control-plane node to point the client configurations at.
    #[error("homelab.yaml has no control-plane node, so there is no endpoint for talosconfig")]
    NoControlPlane,

    /// The talosconfig could not be made.
    #[error("talosconfig: {0}")]
    Talosconfig(#[from] TalosconfigError),

    /// The kubeconfig could not be made.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] KubeconfigError),
}

impl RepoError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        RepoError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// An atomic write that failed keeps its file and action ("replacing", "writing", …).
impl From<homelab_fs::WriteError> for RepoError {
    fn from(e: homelab_fs::WriteError) -> Self {
        RepoError::io(e.path, e.action, e.source)
    }
}
