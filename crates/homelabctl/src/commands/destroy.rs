//! `homelabctl destroy`: remove the cluster's VMs (optionally resetting Talos first) and, if asked, the ISO.

use crate::ExitStatus;
use crate::failure::failure;

use clap::Args;
use homelab_engine::lock::ApplyLock;

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::render;

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Reset Talos (wipe STATE and EPHEMERAL) before removing each VM.
    #[arg(long)]
    pub reset: bool,
    /// Also delete the Talos ISO from the ISO storage.
    #[arg(long)]
    pub remove_iso: bool,
}

pub fn run(global: &Global, args: &DestroyArgs) -> miette::Result<ExitStatus> {
    let events = render::events::sink(global.output, render::stderr_color());
    let dir = provision::base_dir(&global.config);
    let _lock = ApplyLock::acquire(&dir.join(".homelab"), "homelabctl destroy").map_err(failure)?;
    if !provision::confirm(
        "Destroy every VM of this cluster (their disks and TPM state are lost)?",
        args.yes,
    )? {
        eprintln!("Nothing was changed.");
        return Ok(ExitStatus::Failure);
    }
    provision::runtime()?.block_on(async {
        let wired = provision::wire(global, BundlePolicy::Optional, &events).await?;
        wired.engine(events.clone()).destroy(args.reset, args.remove_iso).await.map_err(|e| EngineFailure::of("destroy", e))?;
        eprintln!("Destroyed. The secrets bundle (talos-secrets.enc.yaml) is kept: `apply` rebuilds the same cluster identity.");
        Ok(ExitStatus::Success)
    })
}
