//! `homelabctl apply [FILE]`: without FILE, plan, show, confirm, and execute exactly those steps with live
//! progress; with FILE, execute a plan saved by `plan --out`, refusing it when it was made for another
//! homelab.yaml or secrets file, or when what it relied on changed since. Safe to run again at any time.
//! An upgrade starts with an encrypted etcd snapshot under backups/, written here (the engine does not know
//! the repository).

use crate::ExitStatus;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use clap::Args;
use homelab_engine::events::EventSink;
use homelab_engine::flow::{self, ApplyOptions, Snapshotter};
use homelab_engine::lock::ApplyLock;
use homelab_engine::plan::Plan;
use homelab_engine::wiring::Wired;
use homelab_repo::{Repo, SnapshotTarget};
use miette::miette;

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `homelabctl plan --out FILE`: executed exactly, without asking, unless it is stale.
    #[arg(value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow replacing VMs whose firmware, EFI vars or TPM state must change (destroys their data).
    #[arg(long)]
    pub allow_replace: bool,
    /// Allow removing the nodes homelab.yaml no longer names: drained, reset, their VM deleted. A removal
    /// that would leave etcd without quorum is refused even so.
    #[arg(long)]
    pub allow_remove: bool,
    /// How long draining a node may wait for its pods to leave (PodDisruptionBudgets may hold them back),
    /// e.g. 90s, 10m; the default is 15m. A drain cut off is resumed by the next run.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub drain_timeout: Option<std::time::Duration>,
}

/// The snapshot an upgrade starts with: `homelabctl etcd snapshot` into backups/.
pub(super) struct RepoSnapshots<'a> {
    repo: Repo,
    wired: &'a Wired,
    events: EventSink,
}

impl<'a> RepoSnapshots<'a> {
    pub(super) fn new(
        global: &Global,
        wired: &'a Wired,
        events: EventSink,
    ) -> miette::Result<Self> {
        Ok(Self {
            repo: Repo::open(&global.config).map_err(crate::failure::failure)?,
            wired,
            events,
        })
    }
}

impl Snapshotter for RepoSnapshots<'_> {
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        Box::pin(async move {
            let snap = super::etcd::write_snapshot(
                &self.repo,
                &self.wired.config,
                &self.wired.talos,
                self.events.clone(),
                SnapshotTarget::Backups,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(super::etcd::shown(&snap.path).display().to_string())
        })
    }
}

/// Reads a saved plan and checks it was made from this homelab.yaml and secrets file.
fn saved_plan(global: &Global, file: &Path) -> miette::Result<Plan> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| miette!("cannot read the plan {}: {e}", file.display()))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        miette!(
            help = "save one with `homelabctl plan --out FILE`",
            "{} is not a plan saved by homelabctl: {e}",
            file.display()
        )
    })?;
    let Some(origin) = &plan.origin else {
        return Err(miette!(
            help = "save one with `homelabctl plan --out FILE`",
            "{} does not say which homelab.yaml it was made for",
            file.display()
        ));
    };
    let now = provision::plan_origin(&global.config)?;
    if origin.homelab_yaml_sha256 != now.homelab_yaml_sha256 {
        return Err(miette!(
            help = "run `homelabctl plan --out FILE` again and review the new plan",
            "{} was made for another homelab.yaml ({} changed since, or it is another repository's); nothing was done",
            file.display(),
            global.config.display()
        ));
    }
    if origin.secrets_sha256 != now.secrets_sha256 {
        return Err(miette!(
            help = "run `homelabctl plan --out FILE` again and review the new plan",
            "{} was made with another {}; nothing was done",
            file.display(),
            homelab_repo::TALOS_SECRETS_FILE
        ));
    }
    Ok(plan)
}

pub fn run(global: &Global, args: &ApplyArgs) -> miette::Result<ExitStatus> {
    let color = render::stderr_color();
    let events = render::events::sink(global.output, color);
    let dir = provision::base_dir(&global.config);
    let saved = match &args.plan {
        Some(file) => Some(saved_plan(global, file)?),
        None => None,
    };
    let lock = ApplyLock::acquire(&dir.join(".homelab"), "homelabctl apply").map_err(|e| {
        crate::failure::failure_help(
            e,
            "wait for it to finish; if it was killed, the lock is released with it",
        )
    })?;
    if let Some(stale) = &lock.stale {
        events.warn(
            "lock",
            format!("an earlier run ({stale}) ended without releasing the lock; continuing"),
        );
    }
    provision::runtime()?.block_on(async {
        let mut wired = provision::wire(global, BundlePolicy::CreateIfNew, &events).await?;
        if let Some(drain) = args.drain_timeout {
            wired.timeouts.drain = drain;
        }
        let engine = wired.engine(events.clone());
        let fresh = engine.plan().await.map_err(|e| EngineFailure::of("apply", e))?;
        let plan = match saved {
            Some(saved) => {
                // The saved plan runs only while everything it relied on still holds.
                flow::stale_against(&saved, &fresh).map_err(|e| EngineFailure::of("apply", e))?;
                saved
            }
            None => fresh,
        };
        if global.output == OutputFormat::Text {
            eprint!("{}", render::plan::text(&plan, color));
        }
        if !plan.has_changes() {
            return Ok(ExitStatus::Success);
        }
        if args.plan.is_none() && !provision::confirm("Apply these changes?", args.yes)? {
            eprintln!("Nothing was changed.");
            return Ok(ExitStatus::Failure);
        }
        let snapshots = RepoSnapshots::new(global, &wired, events.clone())?;
        let done = engine
            .apply(
                &plan,
                ApplyOptions {
                    allow_replace: args.allow_replace,
                    allow_remove: args.allow_remove,
                    snapshot: Some(&snapshots),
                },
            )
            .await
            .map_err(|e| EngineFailure::of("apply", e))?;
        if global.output == OutputFormat::Text {
            let ids: Vec<String> = done.vm_ids.iter().map(|(n, id)| format!("{n}={id}")).collect();
            eprintln!("\nApply complete. VMs: {}. Next: `homelabctl config export` to store talosconfig/kubeconfig encrypted.", ids.join(", "));
        }
        Ok(ExitStatus::Success)
    })
}
