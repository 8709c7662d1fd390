//! `homelabctl flux add-component`: change the Flux tree the way `init` made it (through `homelab-flux`,
//! whose word the command shares). `homelabctl gitops add-component`, the old name, stays as a hidden alias
//! so scripts keep working.

use crate::ExitStatus;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use homelab_flux::{AddError, Component};
use miette::miette;

use super::Global;

/// The old `gitops` command: `gitops add-component` is `flux add-component`.
#[derive(Debug, Args)]
pub struct GitopsArgs {
    #[command(subcommand)]
    pub command: GitopsCommand,
}

#[derive(Debug, Subcommand)]
pub enum GitopsCommand {
    /// Add an infrastructure component: infrastructure/NAME/ with a namespace, a HelmRepository and a
    /// HelmRelease pinned to one chart version, registered in infrastructure/kustomization.yaml.
    ///
    /// Refuses, changing nothing, when NAME already exists or is already listed.
    AddComponent(AddComponentArgs),
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct AddComponentArgs {
    /// Directory, namespace and release name (lowercase letters, digits, `-`).
    pub name: String,
    /// The chart's name in the repository (default: NAME).
    #[arg(long)]
    pub chart: Option<String>,
    /// The chart repository: https://… (Helm repository) or oci://… (OCI registry).
    #[arg(long, value_name = "URL")]
    pub repo_url: String,
    /// The exact chart version, e.g. 1.19.1.
    #[arg(long)]
    pub version: String,
}

pub fn run(global: &Global, args: &GitopsArgs) -> miette::Result<ExitStatus> {
    match &args.command {
        GitopsCommand::AddComponent(a) => add_component(global, a),
    }
}

pub(crate) fn add_component(
    global: &Global,
    args: &AddComponentArgs,
) -> miette::Result<ExitStatus> {
    let root = tree_root(&global.config)?;
    let component = Component {
        name: args.name.clone(),
        chart: args.chart.clone().unwrap_or_else(|| args.name.clone()),
        repo_url: args.repo_url.clone(),
        version: args.version.clone(),
        values: serde_json::Value::Null,
        extra: Vec::new(),
    };
    let written = homelab_flux::add_component(&root, &component).map_err(|e| {
        let help = match &e {
            AddError::Invalid(_) => "nothing was written; fix the argument and run it again",
            AddError::Exists { .. } | AddError::Kustomization { .. } => {
                "nothing was written; pick another NAME, or remove the existing component first"
            }
            AddError::NoInfrastructure { .. } => {
                "run `homelabctl init` first, or point --config at the homelab.yaml of this repository"
            }
            AddError::Read { .. } | AddError::Write { .. } => "nothing was changed",
        };
        crate::failure::failure_help(e, help)
    })?;
    for path in &written {
        outln!("wrote {}", path.display())?;
    }
    outln!(
        "next: put the chart's values in {}, then commit",
        root.join("infrastructure")
            .join(&args.name)
            .join("helmrelease.yaml")
            .display()
    )?;
    Ok(ExitStatus::Success)
}

/// The Flux tree directory: `gitops.path` of homelab.yaml, relative to the file's directory.
fn tree_root(config_path: &Path) -> miette::Result<PathBuf> {
    let loaded = homelab_config::load(config_path).map_err(|e| {
        crate::failure::failure_help(
            e,
            "run `homelabctl validate` for details, or pass --config FILE",
        )
    })?;
    let gitops = loaded.config.gitops.ok_or_else(|| {
        miette!(
            help = "add a `gitops:` section (see `homelabctl schema`)",
            "{} has no `gitops` section",
            config_path.display()
        )
    })?;
    let base = config_path.parent().unwrap_or(Path::new(""));
    Ok(base.join(gitops.path))
}
