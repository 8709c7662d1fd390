//! `homelabctl replace NODE`: a new VM for the same node name, VM id, MAC and address. The replacement is
//! checked (a control plane only while every other one is healthy), confirmed, recorded in the journal — so
//! any rerun of `replace` or `apply` continues it instead of starting over — and then applied like `apply`:
//! the old node leaves etcd, is drained, reset and its VM deleted; the new one is created, installs and joins.

use clap::Args;
use homelab_engine::flow::ApplyOptions;
use homelab_engine::lock::ApplyLock;

use super::Global;
use super::apply::RepoSnapshots;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::ExitStatus;
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The node to replace, by its name in homelab.yaml.
    #[arg(value_name = "NODE")]
    pub node: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long draining a node may wait for its pods to leave (PodDisruptionBudgets may hold them back),
    /// e.g. 90s, 10m; the default is 15m. A drain cut off is resumed by the next run.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub drain_timeout: Option<std::time::Duration>,
}

pub fn run(global: &Global, args: &ReplaceArgs) -> miette::Result<ExitStatus> {
    let color = render::stderr_color();
    let events = render::events::sink(global.output, color);
    let dir = provision::base_dir(&global.config);
    let _lock = ApplyLock::acquire(&dir.join(".homelab"), "homelabctl replace").map_err(|e| {
        crate::failure::failure_help(
            e,
            "wait for it to finish; if it was killed, the lock is released with it",
        )
    })?;
    provision::runtime()?.block_on(async {
        let mut wired = provision::wire(global, BundlePolicy::ReadOnly, &events).await?;
        if let Some(drain) = args.drain_timeout {
            wired.timeouts.drain = drain;
        }
        let engine = wired.engine(events.clone());
        let fail = |e| EngineFailure::of("replace", e);
        let continuing = engine.check_replace(&args.node).await.map_err(fail)?;
        if !continuing
            && !provision::confirm(
                &format!(
                    "Replace {}: drain it, reset it and delete its VM (its disk and TPM state are lost), then \
                     build it anew?",
                    args.node
                ),
                args.yes,
            )?
        {
            eprintln!("Nothing was changed.");
            return Ok(ExitStatus::Failure);
        }
        engine.begin_replace(&args.node).await.map_err(fail)?;
        let plan = engine.plan().await.map_err(fail)?;
        if global.output == OutputFormat::Text {
            eprint!("{}", render::plan::text(&plan, color));
        }
        let snapshots = RepoSnapshots::new(global, &wired, events.clone())?;
        engine
            .apply(
                &plan,
                ApplyOptions {
                    snapshot: Some(&snapshots),
                    ..ApplyOptions::default()
                },
            )
            .await
            .map_err(fail)?;
        if global.output == OutputFormat::Text {
            eprintln!(
                "\n{} replaced: same VM id, MAC and address, so talosconfig and kubeconfig stay valid.",
                args.node
            );
        }
        Ok(ExitStatus::Success)
    })
}
