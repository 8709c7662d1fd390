//! `homelabctl plan`: the steps apply would execute, per resource, with field diffs (secrets redacted),
//! disruption and preconditions; `--out FILE` saves them (no secret in it) for `homelabctl apply FILE`.

use crate::ExitStatus;
use std::path::PathBuf;

use clap::Args;
use homelab_engine::plan::Plan;
use miette::miette;

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 0 when nothing would change, 2 when something would, 1 on errors (as terraform does).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE (JSON: steps, preconditions, digests of homelab.yaml and of the secrets file;
    /// never a secret) for `homelabctl apply FILE`, which refuses it once it is stale.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(global: &Global, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let events = render::events::sink(global.output, render::stderr_color());
    let mut plan = provision::runtime()?.block_on(async {
        let wired = provision::wire(global, BundlePolicy::ReadOnly, &events).await?;
        wired
            .engine(events.clone())
            .plan()
            .await
            .map_err(|e| miette::Report::new(EngineFailure::of("plan", e)))
    })?;
    if let Some(out) = &args.out {
        plan.origin = Some(provision::plan_origin(&global.config)?);
        save(&plan, out)?;
    }
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        )?,
        OutputFormat::Text => out!("{}", render::plan::text(&plan, render::stderr_color()))?,
    }
    if let Some(out) = &args.out {
        eprintln!(
            "Saved the plan to {}: `homelabctl apply {}` executes exactly it, or refuses it once the homelab \
             or homelab.yaml changed.",
            out.display(),
            out.display()
        );
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Writes the plan as JSON (it holds digests and redacted diffs, never a secret), replacing FILE whole.
fn save(plan: &Plan, out: &std::path::Path) -> miette::Result<()> {
    let json = serde_json::to_vec_pretty(plan).map_err(|e| miette!("serializing the plan: {e}"))?;
    homelab_fs::write(out, &json, homelab_fs::Mode::KeepOr(0o644)).map_err(|e| {
        miette!(
            help = "choose a writable path for --out",
            "cannot write the plan to {}: {e}",
            out.display()
        )
    })
}
