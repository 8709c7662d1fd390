//! `homelabctl plan`: what apply would do, per resource, with field diffs (secrets redacted).

use crate::ExitStatus;

use clap::Args;

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 0 when nothing would change, 2 when something would, 1 on errors (as terraform does).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub fn run(global: &Global, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let events = render::events::sink(global.output, render::stderr_color());
    let plan = provision::runtime()?.block_on(async {
        let wired = provision::wire(global, BundlePolicy::ReadOnly, &events).await?;
        wired
            .engine(events.clone())
            .plan()
            .await
            .map_err(|e| miette::Report::new(EngineFailure::of("plan", e)))
    })?;
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        )?,
        OutputFormat::Text => out!("{}", render::plan::text(&plan, render::stderr_color()))?,
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
