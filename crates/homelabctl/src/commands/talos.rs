//! `homelabctl talos …`: look at Talos material computed locally (secrets bundle certificates).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
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

pub fn run(global: &super::Global, args: TalosArgs) -> miette::Result<ExitCode> {
    match args.command {
        TalosCommand::Secrets(SecretsCommand::Check { file }) => check(&file),
        TalosCommand::Secrets(SecretsCommand::Import { file, force }) => {
            import(global, &file, force)
        }
    }
}

fn import(global: &super::Global, file: &std::path::Path, force: bool) -> miette::Result<ExitCode> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", file.display()))?,
    );
    let repo = homelab_repo::Repo::open(&global.config).map_err(|e| miette!("{e}"))?;
    repo.import_talos_bundle(&text, force)
        .map_err(|e| miette!("{e}"))?;
    println!(
        "{}: imported the bundle from {} (encrypted); keep the plain file out of the repository",
        repo.path(homelab_repo::TALOS_SECRETS_FILE).display(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn check(file: &std::path::Path) -> miette::Result<ExitCode> {
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
