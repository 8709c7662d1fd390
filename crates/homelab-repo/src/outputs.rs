//! The cluster's client configurations (talosconfig, kubeconfig): made locally from the bundle and
//! homelab.yaml, reused while still current (same CA, endpoints and context, certificate not near expiry) so
//! repeated exports leave git clean, exported SOPS-encrypted to `output/`, or decrypted to the root (0600).

use homelab_fs::Mode;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use homelab_config::Config;
use homelab_sops::{Style, decrypt_file};
use homelab_talos::kubeconfig::{ADMIN_CERT_VALIDITY, Kubeconfig};
use homelab_talos::secrets::SecretsBundle;
use homelab_talos::talosconfig::{Talosconfig, TalosconfigInput};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::RepoError;
use crate::files::{canonical_yaml, encrypt_for, ensure_gitignored};
use crate::{OUTPUT_DIR, Repo};

/// A client certificate expiring within this time is replaced by a fresh one.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// The secret outputs of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputName {
    /// The talosctl client configuration (`os:admin`).
    Talosconfig,
    /// The admin kubeconfig (`system:masters`).
    Kubeconfig,
}

impl OutputName {
    /// Both outputs, in display order.
    pub const ALL: [OutputName; 2] = [OutputName::Talosconfig, OutputName::Kubeconfig];

    /// `talosconfig` / `kubeconfig`: the output's name and its file name at the repository root.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputName::Talosconfig => "talosconfig",
            OutputName::Kubeconfig => "kubeconfig",
        }
    }

    /// `output/<name>.enc.yaml` under `root`.
    pub fn exported_path(self, root: &Path) -> PathBuf {
        root.join(OUTPUT_DIR)
            .join(format!("{}.enc.yaml", self.as_str()))
    }

    /// `<root>/<name>`, the plaintext file `config decrypt` writes.
    pub fn local_path(self, root: &Path) -> PathBuf {
        root.join(self.as_str())
    }
}

/// The outputs' YAML text, in the form `sops -d` prints for the exported files. Zeroized on drop; `Debug`
/// shows nothing secret.
pub struct Outputs {
    talosconfig: Zeroizing<String>,
    kubeconfig: Zeroizing<String>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs").finish_non_exhaustive()
    }
}

impl Outputs {
    /// One output's YAML (secret: write it only encrypted, or 0600 on explicit request).
    pub fn get(&self, name: OutputName) -> &str {
        match name {
            OutputName::Talosconfig => &self.talosconfig,
            OutputName::Kubeconfig => &self.kubeconfig,
        }
    }
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// It did not exist.
    Created,
    /// Its content changed.
    Updated,
    /// It already held this content (not rewritten).
    Unchanged,
}

/// One file written by [`Repo::export_outputs`] or [`Repo::decrypt_outputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: OutputName,
    pub path: PathBuf,
    pub written: Written,
}

/// Where the client configurations point: context/cluster name, apid endpoints and nodes, API server.
struct Target {
    cluster: String,
    endpoints: Vec<String>,
    nodes: Vec<String>,
    server: String,
}

impl Target {
    /// Endpoints: every control plane's static address; default node: the first control plane.
    fn of(config: &Config) -> Result<Target, RepoError> {
        let endpoints: Vec<String> = config
            .control_planes()
            .map(|n| n.network.address.address.to_string())
            .collect();
        let first = endpoints
            .first()
            .cloned()
            .ok_or(RepoError::NoControlPlane)?;
        Ok(Target {
            cluster: config.cluster.name.clone(),
            endpoints,
            nodes: vec![first],
            server: config.cluster.endpoint.clone(),
        })
    }

    fn generate(
        &self,
        name: OutputName,
        bundle: &SecretsBundle,
    ) -> Result<Zeroizing<String>, RepoError> {
        Ok(match name {
            OutputName::Talosconfig => Talosconfig::generate(
                bundle,
                &TalosconfigInput::admin(&self.cluster, self.endpoints.clone(), self.nodes.clone()),
            )?
            .to_yaml()?,
            OutputName::Kubeconfig => Kubeconfig::generate_admin(
                bundle,
                &self.cluster,
                &self.server,
                ADMIN_CERT_VALIDITY,
            )?
            .to_yaml()?,
        })
    }

    /// Whether `text` is a configuration this target and bundle would produce, with a certificate that is
    /// not about to expire.
    fn is_current(&self, name: OutputName, text: &str, bundle: &SecretsBundle) -> bool {
        let fresh = |expiry: OffsetDateTime| expiry > OffsetDateTime::now_utc() + RENEW_BEFORE;
        match name {
            OutputName::Talosconfig => {
                let Ok(tc) = Talosconfig::from_yaml(text) else {
                    return false;
                };
                let Ok(ctx) = tc.current() else { return false };
                tc.context == self.cluster
                    && tc.contexts.len() == 1
                    && ctx.endpoints == self.endpoints
                    && ctx.nodes == self.nodes
                    && ctx.ca == STANDARD.encode(bundle.certs.os.crt.as_bytes())
                    && tc.client_cert_expiry().is_ok_and(fresh)
            }
            OutputName::Kubeconfig => {
                let Ok(kc) = Kubeconfig::from_yaml(text) else {
                    return false;
                };
                let ca = STANDARD.encode(bundle.certs.k8s.crt.as_bytes());
                kc.clusters.len() == 1
                    && kc.clusters[0].name == self.cluster
                    && kc.clusters[0].cluster.server == self.server
                    && kc.clusters[0].cluster.certificate_authority_data == ca
                    && kc.current_context == format!("admin@{}", self.cluster)
                    && kc.client_cert_expiry().is_ok_and(fresh)
            }
        }
    }
}

impl Repo {
    /// The outputs for `config` and `bundle`: the exported `output/<name>.enc.yaml`, else the decrypted
    /// `<name>` at the root, when still current; otherwise freshly generated (new client certificates).
    pub fn outputs(&self, config: &Config, bundle: &SecretsBundle) -> Result<Outputs, RepoError> {
        let target = Target::of(config)?;
        let style = self.style()?;
        let one = |name: OutputName| -> Result<Zeroizing<String>, RepoError> {
            if let Some(text) = self.exported_text(name, &style)
                && target.is_current(name, &text, bundle)
            {
                return Ok(text);
            }
            if let Ok(text) = std::fs::read_to_string(name.local_path(self.root())) {
                let text = Zeroizing::new(text);
                if target.is_current(name, &text, bundle)
                    && let Ok(canonical) = canonical_yaml(&text, &style, name.as_str())
                {
                    return Ok(canonical);
                }
            }
            let generated = target.generate(name, bundle)?;
            canonical_yaml(&generated, &style, name.as_str())
        };
        Ok(Outputs {
            talosconfig: one(OutputName::Talosconfig)?,
            kubeconfig: one(OutputName::Kubeconfig)?,
        })
    }

    /// The decrypted text of `output/<name>.enc.yaml`, or `None` when it is missing or does not decrypt.
    fn exported_text(&self, name: OutputName, style: &Style) -> Option<Zeroizing<String>> {
        let path = name.exported_path(self.root());
        if !path.exists() {
            return None;
        }
        let decrypted = decrypt_file(&path, self.identities()).ok()?;
        let bytes = decrypted.plaintext(style);
        std::str::from_utf8(&bytes)
            .ok()
            .map(|s| Zeroizing::new(s.to_string()))
    }

    /// Writes `output/talosconfig.enc.yaml` and `output/kubeconfig.enc.yaml`, encrypted through the
    /// `.sops.yaml` rules. A file whose decrypted content already equals the output is left untouched.
    pub fn export_outputs(&self, outputs: &Outputs) -> Result<Vec<OutputFile>, RepoError> {
        let style = self.style()?;
        let dir = self.path(OUTPUT_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| RepoError::io(&dir, "creating", e))?;
        let mut done = Vec::new();
        for name in OutputName::ALL {
            let path = name.exported_path(self.root());
            let text = outputs.get(name);
            let existing = self.exported_text(name, &style);
            let written = match existing {
                Some(t) if t.as_str() == text => Written::Unchanged,
                _ => {
                    let created = !path.exists();
                    let bytes = encrypt_for(self.root(), &path, text.as_bytes())?;
                    homelab_fs::write(&path, &bytes, Mode::KeepOr(0o644))?;
                    if created {
                        Written::Created
                    } else {
                        Written::Updated
                    }
                }
            };
            done.push(OutputFile {
                name,
                path,
                written,
            });
        }
        Ok(done)
    }

    /// Writes `talosconfig` and `kubeconfig` in plaintext at the repository root with mode 0600 and makes
    /// sure `.gitignore` lists them. Returns the files and the `.gitignore` entries it had to add.
    pub fn decrypt_outputs(
        &self,
        outputs: &Outputs,
    ) -> Result<(Vec<OutputFile>, Vec<String>), RepoError> {
        // Ignore first: a plaintext file must never sit unignored in the tree.
        let added = ensure_gitignored(
            self.root(),
            &["/talosconfig", "/kubeconfig"],
            "config decrypt: plaintext client configurations",
        )?;
        let mut done = Vec::new();
        for name in OutputName::ALL {
            let path = name.local_path(self.root());
            let text = outputs.get(name);
            let existing = std::fs::read_to_string(&path).ok().map(Zeroizing::new);
            let written = match existing {
                Some(t) if t.as_str() == text => {
                    set_private(&path)?;
                    Written::Unchanged
                }
                Some(_) => {
                    homelab_fs::write(&path, text.as_bytes(), Mode::Private)?;
                    Written::Updated
                }
                None => {
                    homelab_fs::write(&path, text.as_bytes(), Mode::Private)?;
                    Written::Created
                }
            };
            done.push(OutputFile {
                name,
                path,
                written,
            });
        }
        Ok((done, added))
    }
}

/// Sets mode 0600 unless it already is.
fn set_private(path: &Path) -> Result<(), RepoError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| RepoError::io(path, "reading", e))?;
    if meta.permissions().mode() & 0o777 != 0o600 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| RepoError::io(path, "setting permissions on", e))?;
    }
    Ok(())
}
