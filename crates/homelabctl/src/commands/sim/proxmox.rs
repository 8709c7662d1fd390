//! `homelabctl sim --proxmox-only`: just the Proxmox VE API simulator, fresh each time.

use crate::ExitStatus;

use homelab_sim::proxmox::{ProxmoxSim, SimOptions};
use miette::IntoDiagnostic;

use super::{SimArgs, print_proxmox, retract_sim_json, state_dir, wait_for_stop, write_sim_json};
use crate::cli::OutputFormat;
use crate::commands::Global;

pub(super) async fn serve(
    global: &Global,
    args: &SimArgs,
    opts: SimOptions,
) -> miette::Result<ExitStatus> {
    let sim = ProxmoxSim::start(opts.clone())
        .await
        .map_err(|e| crate::failure::failure_help(e, "pick another --proxmox-port, or 0"))?;
    let dir = state_dir(&args.state_dir)?;
    let file = write_sim_json(&dir, &sim, &opts, &[])?;
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&file).into_diagnostic()?)?,
        OutputFormat::Text => {
            print_proxmox(&sim, &dir)?;
            outln!("  written to    {}", dir.join("sim.json").display())?;
            outln!("Stop with Ctrl-C.")?;
        }
    }
    // A reader that went away during the start-up lines means stop now, as on SIGTERM.
    if !crate::out::closed() {
        wait_for_stop().await?;
    }
    sim.shutdown().await;
    retract_sim_json(&dir, &[]);
    if global.output == OutputFormat::Text {
        outln!("simulator stopped")?;
    }
    Ok(ExitStatus::Success)
}
