//! What `plan`, `apply`, `destroy` and `status` share: load homelab.yaml (reporting problems as `validate`
//! does), open the repository's secrets, and wire the engine to the real clients.

use crate::failure::failure;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use homelab_config::LoadError;
use homelab_engine::events::EventSink;
use homelab_engine::flow::EngineError;
use homelab_engine::ports::ErrorKind;
use homelab_engine::wiring::{self, Wired};
use homelab_repo::Repo;
use homelab_talos::secrets::SecretsBundle;
use miette::{IntoDiagnostic, miette};

use super::Global;
use crate::render;

/// When a missing secrets bundle may be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundlePolicy {
    /// apply: generate (and store) one if no VM of the cluster exists.
    CreateIfNew,
    /// plan/status: never write; use a throwaway bundle when no cluster exists yet.
    ReadOnly,
    /// destroy: never write; a missing bundle only means Talos cannot be reset first.
    Optional,
}

/// Loads and validates homelab.yaml; on problems prints them like `validate` and fails.
pub fn load_config(path: &Path) -> miette::Result<homelab_config::Config> {
    match homelab_config::load(path) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                let source = std::fs::read_to_string(path).unwrap_or_default();
                eprint!(
                    "{}",
                    render::diagnostics_text(
                        &path.display().to_string(),
                        &source,
                        &loaded.warnings,
                        render::stderr_color()
                    )
                );
            }
            Ok(loaded.config)
        }
        Err(LoadError::Invalid {
            source_text,
            diagnostics,
            ..
        }) => {
            eprint!(
                "{}",
                render::diagnostics_text(
                    &path.display().to_string(),
                    &source_text,
                    &diagnostics,
                    render::stderr_color()
                )
            );
            Err(miette!(
                help = "fix the errors above; `homelabctl validate` lists them",
                "{} is not valid",
                path.display()
            ))
        }
        Err(e @ LoadError::Read { .. }) => Err(crate::failure::failure_help(
            e,
            "run `homelabctl init` to create one, or pass --config FILE",
        )),
    }
}

/// What a saved plan is made from: digests of homelab.yaml and of the encrypted secrets file (never
/// their content), so `apply FILE` can refuse a plan made for another homelab.yaml.
pub fn plan_origin(config_path: &Path) -> miette::Result<homelab_engine::plan::PlanOrigin> {
    let yaml = std::fs::read(config_path).map_err(|e| {
        miette!(
            help = "run from the repository, or pass --config FILE",
            "cannot read {}: {e}",
            config_path.display()
        )
    })?;
    let secrets = base_dir(config_path).join(homelab_repo::TALOS_SECRETS_FILE);
    Ok(homelab_engine::plan::PlanOrigin {
        homelab_yaml_sha256: homelab_engine::journal::digest(&yaml),
        secrets_sha256: std::fs::read(&secrets)
            .map(|b| homelab_engine::journal::digest(&b))
            .unwrap_or_else(|_| "absent".into()),
    })
}

/// The repository root: the directory of homelab.yaml.
pub fn base_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .into_diagnostic()
}

/// Opens everything the engine needs.
pub async fn wire(
    global: &Global,
    policy: BundlePolicy,
    events: &EventSink,
) -> miette::Result<Wired> {
    let config = load_config(&global.config)?;
    let dir = base_dir(&global.config);
    let repo = Repo::open(&global.config).map_err(failure)?;
    let token = repo.proxmox_token_secret().map_err(failure)?;
    let proxmox = wiring::proxmox(&config, &dir, token, events).map_err(failure)?;
    let exists = wiring::cluster_exists(&proxmox, &config)
        .await
        .map_err(|e| {
            let help = match e.kind {
                ErrorKind::Tls => {
                    "the certificate did not verify: compare proxmox.fingerprint (or the CA file) in homelab.yaml \
                     with the server's (`pvenode cert info`); running again will not change it"
                }
                ErrorKind::Auth => {
                    "check proxmox.token_id in homelab.yaml and the secret (`homelabctl secrets set-proxmox-token`); \
                     `homelabctl doctor` lists the privileges"
                }
                ErrorKind::Transient | ErrorKind::Timeout => {
                    "check proxmox.endpoint and that Proxmox is up, then run again; `homelabctl doctor` checks the rest"
                }
                _ => "check proxmox.endpoint, the token and `homelabctl doctor`",
            };
            miette!(help = help, "cannot reach Proxmox: {}", e.message)
        })?;
    let bundle = bundle(&repo, policy, exists, events)?;
    Wired::new(config, &dir, proxmox, bundle).map_err(failure)
}

fn bundle(
    repo: &Repo,
    policy: BundlePolicy,
    cluster_exists: bool,
    events: &EventSink,
) -> miette::Result<SecretsBundle> {
    match policy {
        BundlePolicy::CreateIfNew => {
            let (bundle, source) = repo
                .talos_bundle_or_create(cluster_exists)
                .map_err(failure)?;
            if matches!(source, homelab_repo::BundleSource::Created) {
                events.info("talos", "generated the cluster's secrets bundle into talos-secrets.enc.yaml (commit it: it is encrypted)");
            }
            Ok(bundle)
        }
        BundlePolicy::ReadOnly => match repo.talos_bundle().map_err(failure)? {
            Some(bundle) => Ok(bundle),
            None if !cluster_exists => {
                events.info(
                    "talos",
                    "no secrets bundle yet: apply will generate talos-secrets.enc.yaml",
                );
                SecretsBundle::generate().map_err(failure)
            }
            None => repo.talos_bundle_required().map_err(failure),
        },
        BundlePolicy::Optional => match repo.talos_bundle().map_err(failure)? {
            Some(bundle) => Ok(bundle),
            None => {
                events.warn(
                    "talos",
                    "no secrets bundle: nodes cannot be reset through Talos, only removed",
                );
                SecretsBundle::generate().map_err(failure)
            }
        },
    }
}

/// An engine failure at the edge, with the one piece of help that fits its kind: the engine's own hint when
/// it has one, "run apply again" only when running again can help (a transient failure or a wait that ran
/// out), nothing for a definite answer such as a Talos version the Image Factory does not offer.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{error}")]
pub struct EngineFailure {
    error: EngineError,
    #[help]
    help: Option<String>,
}

impl EngineFailure {
    /// `error` from `homelabctl <command>`, the command a rerun hint names.
    pub fn of(command: &str, error: EngineError) -> Self {
        let help = match (error.hint(), error.kind()) {
            (Some(hint), _) => Some(hint.to_string()),
            (None, kind) if kind.is_worth_rerunning() => Some(format!(
                "run `homelabctl {command}` again: every step is safe to repeat"
            )),
            (None, ErrorKind::Auth) => Some(
                "check the credentials: `homelabctl doctor` checks the Proxmox token and its privileges"
                    .to_string(),
            ),
            (None, ErrorKind::Tls) => Some(
                "check proxmox.fingerprint (or the CA) in homelab.yaml against the server's certificate"
                    .to_string(),
            ),
            (None, _) => None,
        };
        Self { error, help }
    }
}

/// Asks for confirmation on a terminal; without one, `--yes` is required.
pub fn confirm(question: &str, yes: bool) -> miette::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --yes to confirm non-interactively",
            "{question} needs confirmation, and standard input is not a terminal"
        ));
    }
    eprint!("{question} Type `yes` to continue: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).into_diagnostic()?;
    Ok(answer.trim() == "yes")
}
