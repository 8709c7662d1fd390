//! `homelabctl apply`: show the plan, confirm, converge with live progress; safe to run again at any time.

use crate::ExitStatus;

use clap::Args;
use homelab_engine::lock::ApplyLock;

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow replacing VMs whose firmware, EFI vars or TPM state must change (destroys their data).
    #[arg(long)]
    pub allow_replace: bool,
}

pub fn run(global: &Global, args: &ApplyArgs) -> miette::Result<ExitStatus> {
    let color = render::stderr_color();
    let events = render::events::sink(global.output, color);
    let dir = provision::base_dir(&global.config);
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
        let wired = provision::wire(global, BundlePolicy::CreateIfNew, &events).await?;
        let engine = wired.engine(events.clone());
        let plan = engine.plan().await.map_err(|e| EngineFailure::of("apply", e))?;
        if global.output == OutputFormat::Text {
            eprint!("{}", render::plan::text(&plan, color));
        }
        if !plan.has_changes() {
            return Ok(ExitStatus::Success);
        }
        if !provision::confirm("Apply these changes?", args.yes)? {
            eprintln!("Nothing was changed.");
            return Ok(ExitStatus::Failure);
        }
        let done = engine
            .converge(args.allow_replace)
            .await
            .map_err(|e| EngineFailure::of("apply", e))?;
        if global.output == OutputFormat::Text {
            let ids: Vec<String> = done.vm_ids.iter().map(|(n, id)| format!("{n}={id}")).collect();
            eprintln!("\nApply complete. VMs: {}. Next: `homelabctl config export` to store talosconfig/kubeconfig encrypted.", ids.join(", "));
        }
        Ok(ExitStatus::Success)
    })
}
