//! `homelabctl flux …`: load the age identity into the cluster, install Flux and its sync objects,
//! request a reconciliation, and add a component to the Flux tree (`flux_tree`). The age key is never
//! printed: only object names and actions are.

use crate::ExitStatus;
use crate::failure::failure;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use homelab_flux::bootstrap::{self, InstallSource};
use homelab_kube::KubeClient;
use miette::{IntoDiagnostic as _, miette};

use super::Global;

/// Operate Flux without the flux CLI: its tree in the repository and its objects in the cluster.
#[derive(Debug, Args)]
pub struct FluxArgs {
    /// The kubeconfig to use (default: `kubeconfig` beside homelab.yaml).
    #[arg(long, global = true, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: FluxCommand,
}

#[derive(Debug, Subcommand)]
pub enum FluxCommand {
    /// Create or update Secret flux-system/sops-age (key age.agekey) with the age identities the
    /// repository's .sops.yaml encrypts to (found wherever sops looks, or in .age-key.txt), so Flux can
    /// decrypt SOPS files. Idempotent.
    SopsKey,
    /// Install Flux from its release manifests (pinned by SHA-256), then the GitRepository and
    /// Kustomization syncing the repository. Needs no git write access. Idempotent.
    Bootstrap(BootstrapArgs),
    /// Ask Flux to reconcile a Kustomization now (like `flux reconcile kustomization NAME`).
    Reconcile(ReconcileArgs),
    /// Add an infrastructure component to the Flux tree: infrastructure/NAME/ with a namespace, a
    /// HelmRepository and a HelmRelease pinned to one chart version, registered in
    /// infrastructure/kustomization.yaml. Refuses, changing nothing, when NAME already exists or is
    /// already listed. (Formerly `gitops add-component`, still accepted.)
    AddComponent(super::flux_tree::AddComponentArgs),
}

#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct BootstrapArgs {
    /// The Flux release whose install manifests are used.
    #[arg(long, default_value = bootstrap::FLUX_VERSION)]
    pub version: String,
    /// Where to fetch the install manifests (default: the official release asset of --version).
    #[arg(long, value_name = "URL")]
    pub manifests_url: Option<String>,
    /// The SHA-256 the manifests must have (`sha256sum install.yaml`); anything else is refused.
    #[arg(long, value_name = "HEX")]
    pub sha256: String,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The Flux Kustomization in flux-system.
    #[arg(default_value = homelab_flux::sync::SYNC_NAME)]
    pub name: String,
    /// Reconcile its source (the GitRepository) first.
    #[arg(long)]
    pub with_source: bool,
}

pub fn run(global: &Global, args: &FluxArgs) -> miette::Result<ExitStatus> {
    // Editing the tree needs neither the cluster nor a runtime.
    if let FluxCommand::AddComponent(a) = &args.command {
        return super::flux_tree::add_component(global, a);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(async {
        match &args.command {
            FluxCommand::SopsKey => sops_key(global, args).await,
            FluxCommand::Bootstrap(b) => run_bootstrap(global, args, b).await,
            FluxCommand::Reconcile(r) => reconcile(global, args, r).await,
            FluxCommand::AddComponent(a) => super::flux_tree::add_component(global, a),
        }
    })
}

fn repo_root(global: &Global) -> &Path {
    match global.config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn cluster(global: &Global, args: &FluxArgs) -> miette::Result<KubeClient> {
    let path = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| repo_root(global).join("kubeconfig"));
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        miette!(
            help = "pass --kubeconfig FILE (or set KUBECONFIG), or decrypt it: `homelabctl config decrypt`",
            "cannot read the kubeconfig {}: {e}",
            path.display()
        )
    })?);
    KubeClient::from_kubeconfig_yaml(&text).map_err(|e| miette!("{}: {e}", path.display()))
}

async fn sops_key(global: &Global, args: &FluxArgs) -> miette::Result<ExitStatus> {
    let identity = repository_identity(repo_root(global))?;
    let cluster = cluster(global, args)?;
    let action = homelab_flux::sops_key(&cluster, &identity)
        .await
        .map_err(failure)?;
    outln!(
        "Secret {}/{} {action} (age identity of {})",
        homelab_flux::sync::NAMESPACE,
        homelab_flux::sync::SOPS_SECRET,
        identity.source
    )?;
    Ok(ExitStatus::Success)
}

/// The identities, among all homelab-sops finds, that the repository's `.sops.yaml` encrypts to: what
/// Flux needs, and nothing more (a personal key found beside it stays on this machine).
fn repository_identity(root: &Path) -> miette::Result<homelab_flux::identity::AgeIdentity> {
    let ids = homelab_sops::Identities::discover(Some(root)).map_err(failure)?;
    let config = homelab_sops::SopsConfig::find(root).map_err(failure)?;
    let recipients = config
        .as_ref()
        .map(homelab_sops::SopsConfig::recipients)
        .unwrap_or_default();
    if recipients.is_empty() {
        return Err(miette!(
            help = "run `homelabctl init` there, or add a creation rule with your age public key",
            "no .sops.yaml with age recipients at or above {}: cannot tell which age identity Flux needs",
            root.display()
        ));
    }
    let (text, matched) = ids.export_for(&recipients).ok_or_else(|| {
        miette!(
            help = "put the repository's identity in .age-key.txt beside homelab.yaml, or point SOPS_AGE_KEY_FILE at it",
            "no age identity found for the recipients of {} ({}); identities were looked for in: {}",
            config.as_ref().map(|c| c.path.display().to_string()).unwrap_or_default(),
            recipients.join(", "),
            ids.searched().join("; ")
        )
    })?;
    homelab_flux::identity::AgeIdentity::from_text(text, &matched.join(", ")).map_err(failure)
}

async fn run_bootstrap(
    global: &Global,
    args: &FluxArgs,
    b: &BootstrapArgs,
) -> miette::Result<ExitStatus> {
    let config = homelab_config::load(&global.config)
        .map_err(|e| crate::failure::failure_help(e, "run `homelabctl validate` for details"))?
        .config;
    let gitops = config.gitops.ok_or_else(|| {
        miette!(
            help = "add a `gitops:` section with the repository URL and branch",
            "{} has no `gitops` section: nothing for Flux to sync",
            global.config.display()
        )
    })?;
    let source = InstallSource {
        url: b
            .manifests_url
            .clone()
            .unwrap_or_else(|| bootstrap::official_url(&b.version)),
        sha256: b.sha256.clone(),
    };
    let cluster = cluster(global, args)?;
    let http = bootstrap::http_client().map_err(failure)?;
    let manifests = bootstrap::fetch(&http, &source).await.map_err(failure)?;
    let report = bootstrap::bootstrap(&cluster, &manifests, &gitops)
        .await
        .map_err(failure)?;
    for (object, action) in &report.applied {
        if *action != homelab_flux::cluster::Action::Unchanged {
            outln!("{object} {action}")?;
        }
    }
    outln!(
        "Flux from {}: {} object(s) changed, {} unchanged",
        source.url,
        report.changed(),
        report.applied.len() - report.changed()
    )?;
    for note in &report.notes {
        outln!("note: {note}")?;
    }
    Ok(ExitStatus::Success)
}

async fn reconcile(
    global: &Global,
    args: &FluxArgs,
    r: &ReconcileArgs,
) -> miette::Result<ExitStatus> {
    let cluster = cluster(global, args)?;
    let touched = homelab_flux::reconcile(&cluster, &r.name, r.with_source)
        .await
        .map_err(failure)?;
    for object in touched {
        outln!("{object}: reconciliation requested")?;
    }
    Ok(ExitStatus::Success)
}
