//! `homelabctl talos …`: the Talos material homelabctl computes locally — a node's machine config (secrets
//! masked unless `--reveal`) — and the secrets bundle (`check`, `import`).

use crate::ExitStatus;
use crate::failure::failure;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use homelab_talos::factory::{FactoryClient, Schematic};
use homelab_talos::machine_config::{self, MachineConfigInput};
use homelab_talos::pki;
use homelab_talos::secrets::SecretsBundle;
use miette::{IntoDiagnostic as _, WrapErr as _, miette};

/// Talos secrets bundle and machine configuration.
#[derive(Debug, Args)]
pub struct TalosArgs {
    #[command(subcommand)]
    pub command: TalosCommand,
}

#[derive(Debug, Subcommand)]
pub enum TalosCommand {
    /// Print a node's machine configuration as it would be applied (secrets masked unless --reveal).
    Config {
        /// The node (from homelab.yaml); required when there are several.
        #[arg(long)]
        node: Option<String>,
        /// Show the secrets (CA keys, tokens) instead of masking them.
        #[arg(long)]
        reveal: bool,
    },
    /// The Talos secrets bundle (the cluster's CAs and tokens).
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Validate a plain `talosctl gen secrets` bundle and show its CAs and their expiry (no secret is printed).
    Check {
        /// The bundle file (`secrets.yaml` from talosctl, `talsecret.yaml` from talhelper).
        file: PathBuf,
    },
    /// Import a plain bundle (`talosctl gen secrets`, talhelper, a backup) into talos-secrets.enc.yaml,
    /// encrypted through the .sops.yaml rules: how to recover a repository whose bundle was lost while the
    /// cluster still runs. Refuses to replace an existing bundle unless --force.
    Import {
        /// The plain bundle file.
        file: PathBuf,
        /// Replace an existing talos-secrets.enc.yaml (only if the cluster was made with FILE's bundle).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(global: &super::Global, args: TalosArgs) -> miette::Result<ExitStatus> {
    match args.command {
        TalosCommand::Config { node, reveal } => config(global, node.as_deref(), reveal),
        TalosCommand::Secrets(SecretsCommand::Check { file }) => check(&file),
        TalosCommand::Secrets(SecretsCommand::Import { file, force }) => {
            import(global, &file, force)
        }
    }
}

fn config(global: &super::Global, node: Option<&str>, reveal: bool) -> miette::Result<ExitStatus> {
    let loaded = homelab_config::load(&global.config).map_err(|e| {
        crate::failure::failure_help(
            e,
            "run `homelabctl validate` to see every problem with its position",
        )
    })?;
    let cfg = &loaded.config;
    let names = || {
        cfg.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let node = match node {
        Some(name) => cfg.node(name).ok_or_else(|| {
            miette!(
                help = format!("nodes in homelab.yaml: {}", names()),
                "no node named `{name}`"
            )
        })?,
        None => match cfg.nodes.as_slice() {
            [only] => only,
            nodes => {
                return Err(miette!(
                    help = format!("pass --node with one of: {}", names()),
                    "homelab.yaml has {} nodes; which one?",
                    nodes.len()
                ));
            }
        },
    };
    // The one source of the bundle: talos-secrets.enc.yaml beside homelab.yaml, decrypted in memory.
    let repo = homelab_repo::Repo::open(&global.config).map_err(failure)?;
    let bundle = repo.talos_bundle_required().map_err(failure)?;
    let input = machine_input(cfg, node, repo.root())?;
    let rendered = machine_config::render(&input, &bundle)
        .map_err(|e| miette!("node `{}`: {e}", node.name))?;
    let shown = if reveal {
        rendered
    } else {
        rendered.redacted()
    };
    let yaml = shown.to_yaml().map_err(failure)?;
    out!("{}", yaml.as_str())?;
    Ok(ExitStatus::Success)
}

/// The machine-config inputs of one node (the engine's mapping of homelab.yaml), with the installer image
/// from the schematic id computed locally (the Image Factory computes the same id).
fn machine_input(
    cfg: &homelab_config::Config,
    node: &homelab_config::Node,
    repo: &Path,
) -> miette::Result<MachineConfigInput> {
    let schematic = Schematic::with_extensions(cfg.image.extensions.iter().cloned());
    let id = schematic
        .id()
        .map_err(|e| miette!("image.extensions: {e}"))?;
    let factory =
        FactoryClient::new(&cfg.image.factory).map_err(|e| miette!("image.factory: {e}"))?;
    let installer_image = factory.installer_image(
        &id,
        &cfg.image.talos_version.with_v(),
        cfg.image.platform.as_str(),
        cfg.image.secureboot,
    );
    homelab_engine::talos_render::machine_config_input(cfg, node, &installer_image, repo)
        .map_err(|e| miette!(help = "check cluster.patches in homelab.yaml", "{e}"))
}

fn import(
    global: &super::Global,
    file: &std::path::Path,
    force: bool,
) -> miette::Result<ExitStatus> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", file.display()))?,
    );
    let repo = homelab_repo::Repo::open(&global.config).map_err(failure)?;
    repo.import_talos_bundle(&text, force).map_err(failure)?;
    outln!(
        "{}: imported the bundle from {} (encrypted); keep the plain file out of the repository",
        repo.path(homelab_repo::TALOS_SECRETS_FILE).display(),
        file.display()
    )?;
    Ok(ExitStatus::Success)
}

fn check(file: &std::path::Path) -> miette::Result<ExitStatus> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", file.display()))?,
    );
    let bundle = SecretsBundle::from_yaml(&text).map_err(|e| {
        miette!(
            help = "the file must be a bundle as written by `talosctl gen secrets` (cluster, secrets, trustdinfo, certs)",
            "{}: {e}",
            file.display()
        )
    })?;
    outln!("{}: valid Talos secrets bundle", file.display())?;
    let cas = [
        ("os", &bundle.certs.os),
        ("k8s", &bundle.certs.k8s),
        ("k8saggregator", &bundle.certs.k8saggregator),
        ("etcd", &bundle.certs.etcd),
    ];
    for (name, pair) in cas {
        let info = pki::cert_info(&pair.crt)
            .map_err(|e| miette!("{}: certs.{name}: {e}", file.display()))?;
        let subject = if info.subject.is_empty() {
            "(empty)"
        } else {
            &info.subject
        };
        outln!(
            "  certs.{name:<14} subject {subject:<16} expires {}",
            info.expires()
        )?;
    }
    Ok(ExitStatus::Success)
}
