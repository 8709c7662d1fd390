//! `homelabctl config export|decrypt`: the cluster's talosconfig and kubeconfig, SOPS-encrypted under
//! `output/` for git, or in plaintext at the repository root (mode 0600, gitignored) for local use.

use crate::ExitStatus;

use clap::{Args, Subcommand};
use homelab_repo::{OutputFile, Repo, Written};

use super::Global;
use crate::cli::OutputFormat;

/// The cluster's client configurations (talosconfig, kubeconfig).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write output/talosconfig.enc.yaml and output/kubeconfig.enc.yaml, encrypted through the .sops.yaml
    /// rules (`sops -d` decrypts them). Files whose decrypted content is already current are not rewritten.
    Export,
    /// Write talosconfig and kubeconfig in plaintext at the repository root (mode 0600) for talosctl and
    /// kubectl, adding them to .gitignore if missing.
    Decrypt,
}

pub fn run(global: &Global, args: &ConfigArgs) -> miette::Result<ExitStatus> {
    let (repo, config) = open(global)?;
    let bundle = repo.talos_bundle_required().map_err(repo_err)?;
    let outputs = repo.outputs(&config, &bundle).map_err(repo_err)?;
    let (files, added) = match args.command {
        ConfigCommand::Export => (repo.export_outputs(&outputs).map_err(repo_err)?, Vec::new()),
        ConfigCommand::Decrypt => repo.decrypt_outputs(&outputs).map_err(repo_err)?,
    };
    report(global, &files, &added)?;
    Ok(ExitStatus::Success)
}

/// Opens the repository of `--config` and loads its validated homelab.yaml.
pub(super) fn open(global: &Global) -> miette::Result<(Repo, homelab_config::Config)> {
    let loaded = homelab_config::load(&global.config).map_err(|e| {
        crate::failure::failure_help(
            e,
            "run `homelabctl validate` to see every problem, or pass --config FILE",
        )
    })?;
    let repo = Repo::open(&global.config).map_err(repo_err)?;
    Ok((repo, loaded.config))
}

/// A library error at the binary edge (its message already says how to fix it).
pub(super) fn repo_err(e: homelab_repo::RepoError) -> miette::Report {
    crate::failure::failure(e)
}

fn report(
    global: &Global,
    files: &[OutputFile],
    added: &[String],
) -> Result<(), crate::out::WriteError> {
    let word = |w: Written| match w {
        Written::Created => "created",
        Written::Updated => "updated",
        Written::Unchanged => "unchanged",
    };
    match global.output {
        OutputFormat::Json => {
            let files: Vec<_> = files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "name": f.name.as_str(),
                        "path": f.path.display().to_string(),
                        "result": word(f.written),
                    })
                })
                .collect();
            outln!(
                "{}",
                serde_json::json!({ "files": files, "gitignore_added": added })
            )?;
        }
        OutputFormat::Text => {
            for f in files {
                outln!("{}: {}", f.path.display(), word(f.written))?;
            }
            for a in added {
                outln!(".gitignore: added {a}")?;
            }
        }
    }
    Ok(())
}
