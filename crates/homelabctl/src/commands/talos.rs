//! `homelabctl talos …`: the Talos material homelabctl computes locally — a node's machine config (secrets
//! masked unless `--reveal`) and the cluster's secrets bundle (`import`, `check`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use homelab_talos::factory::{FactoryClient, Schematic};
use homelab_talos::machine_config::{self, MachineConfigInput};
use homelab_talos::pki;
use homelab_talos::secrets::SecretsBundle;
use miette::{IntoDiagnostic as _, WrapErr as _, miette};
use zeroize::Zeroizing;

use super::Global;

/// File name of the SOPS-encrypted secrets bundle, beside homelab.yaml.
pub const BUNDLE_FILE: &str = "talos-secrets.enc.yaml";

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
    /// Take an existing `talosctl gen secrets` bundle (also talhelper's talsecret.yaml) and store it
    /// SOPS-encrypted as talos-secrets.enc.yaml beside homelab.yaml.
    Import {
        /// The plain bundle file.
        file: PathBuf,
        /// Replace an existing talos-secrets.enc.yaml (the cluster made with it becomes unreachable).
        #[arg(long)]
        force: bool,
    },
    /// Make a new bundle for a new cluster (Talos' algorithms) and store it SOPS-encrypted as
    /// talos-secrets.enc.yaml; refuses when the file exists.
    Generate,
    /// Validate a plain `talosctl gen secrets` bundle and show its CAs and their expiry (no secret is printed).
    Check {
        /// The bundle file (`secrets.yaml` from talosctl, `talsecret.yaml` from talhelper).
        file: PathBuf,
    },
}

pub fn run(global: &Global, args: TalosArgs) -> miette::Result<ExitCode> {
    match args.command {
        TalosCommand::Config { node, reveal } => config(global, node.as_deref(), reveal),
        TalosCommand::Secrets(SecretsCommand::Import { file, force }) => {
            import(global, &file, force)
        }
        TalosCommand::Secrets(SecretsCommand::Generate) => generate(global),
        TalosCommand::Secrets(SecretsCommand::Check { file }) => check(&file),
    }
}

/// The repository directory: where homelab.yaml lives.
fn repo_dir(global: &Global) -> PathBuf {
    match global.config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The one source of the secrets bundle: talos-secrets.enc.yaml beside homelab.yaml, decrypted in memory.
fn load_bundle(repo: &Path) -> miette::Result<SecretsBundle> {
    let path = repo.join(BUNDLE_FILE);
    if !path.exists() {
        return Err(miette!(
            help = "a cluster's bundle is made once and kept forever. For an existing cluster restore the file \
                    from git history or a backup, or `homelabctl talos secrets import` the talosctl bundle; a new \
                    cluster gets one from `homelabctl talos secrets generate`.",
            "{} not found: no Talos secrets bundle",
            path.display()
        ));
    }
    let identities = homelab_sops::Identities::discover(Some(repo)).map_err(|e| miette!("{e}"))?;
    let decrypted = homelab_sops::decrypt_file(&path, &identities).map_err(|e| miette!("{e}"))?;
    let plain = decrypted.plaintext(&homelab_sops::Style::default());
    let text = std::str::from_utf8(&plain)
        .map_err(|_| miette!("{}: the bundle is not UTF-8 text", path.display()))?;
    SecretsBundle::from_yaml(text).map_err(|e| miette!("{}: {e}", path.display()))
}

fn config(global: &Global, node: Option<&str>, reveal: bool) -> miette::Result<ExitCode> {
    let loaded = homelab_config::load(&global.config).map_err(|e| {
        miette!(
            help = "run `homelabctl validate` to see every problem with its position",
            "{e}"
        )
    })?;
    let cfg = &loaded.config;
    let node = match node {
        Some(name) => cfg.node(name).ok_or_else(|| {
            let names: Vec<&str> = cfg.nodes.iter().map(|n| n.name.as_str()).collect();
            miette!(
                help = format!("nodes in homelab.yaml: {}", names.join(", ")),
                "no node named `{name}`"
            )
        })?,
        None => match cfg.nodes.as_slice() {
            [only] => only,
            nodes => {
                let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                return Err(miette!(
                    help = format!("pass --node with one of: {}", names.join(", ")),
                    "homelab.yaml has {} nodes; which one?",
                    nodes.len()
                ));
            }
        },
    };
    let repo = repo_dir(global);
    let input = machine_input(cfg, node, &repo)?;
    let bundle = load_bundle(&repo)?;
    let rendered = machine_config::render(&input, &bundle)
        .map_err(|e| miette!("node `{}`: {e}", node.name))?;
    let shown = if reveal {
        rendered
    } else {
        rendered.redacted()
    };
    let yaml = shown.to_yaml().map_err(|e| miette!("{e}"))?;
    print!("{}", yaml.as_str());
    Ok(ExitCode::SUCCESS)
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

fn read_bundle_file(file: &Path) -> miette::Result<SecretsBundle> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", file.display()))?,
    );
    SecretsBundle::from_yaml(&text).map_err(|e| {
        miette!(
            help = "the file must be a bundle as written by `talosctl gen secrets` (cluster, secrets, trustdinfo, certs)",
            "{}: {e}",
            file.display()
        )
    })
}

fn import(global: &Global, file: &Path, force: bool) -> miette::Result<ExitCode> {
    let bundle = read_bundle_file(file)?;
    let target = store_bundle(&repo_dir(global), &bundle, force)?;
    let os = pki::cert_info(&bundle.certs.os.crt).map_err(|e| miette!("{e}"))?;
    println!(
        "imported {} into {} (encrypted; Talos API CA expires {})",
        file.display(),
        target.display(),
        os.expires()
    );
    Ok(ExitCode::SUCCESS)
}

fn generate(global: &Global) -> miette::Result<ExitCode> {
    let repo = repo_dir(global);
    refuse_existing(&repo.join(BUNDLE_FILE), false)?;
    let bundle = SecretsBundle::generate().map_err(|e| miette!("{e}"))?;
    let target = store_bundle(&repo, &bundle, false)?;
    let os = pki::cert_info(&bundle.certs.os.crt).map_err(|e| miette!("{e}"))?;
    println!(
        "generated a new Talos secrets bundle in {} (encrypted; commit it — it is this cluster's identity for good; \
         CAs expire {})",
        target.display(),
        os.expires()
    );
    Ok(ExitCode::SUCCESS)
}

fn refuse_existing(target: &Path, force: bool) -> miette::Result<()> {
    if target.exists() && !force {
        return Err(miette!(
            help = "a cluster's bundle is forever: its CAs and tokens are what the nodes trust. Replace it only \
                    if the old cluster is gone or the new bundle is that cluster's (then pass --force to import).",
            "{} already exists; refusing to overwrite it",
            target.display()
        ));
    }
    Ok(())
}

/// Store the bundle SOPS-encrypted beside homelab.yaml (recipients from .sops.yaml); returns the path.
fn store_bundle(repo: &Path, bundle: &SecretsBundle, force: bool) -> miette::Result<PathBuf> {
    let target = repo.join(BUNDLE_FILE);
    refuse_existing(&target, force)?;
    let plain = bundle.to_yaml().map_err(|e| miette!("{e}"))?;
    homelab_sops::encrypt_file(&target, plain.as_bytes(), repo).map_err(|e| {
        miette!(
            help = "homelabctl encrypts with the age recipients of the .sops.yaml creation rule for the file",
            "{e}"
        )
    })?;
    Ok(target)
}

fn check(file: &Path) -> miette::Result<ExitCode> {
    let bundle = read_bundle_file(file)?;
    println!("{}: valid Talos secrets bundle", file.display());
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
        println!(
            "  certs.{name:<14} subject {subject:<16} expires {}",
            info.expires()
        );
    }
    Ok(ExitCode::SUCCESS)
}
