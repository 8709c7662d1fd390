//! `homelabctl sim --proxmox-only`: just the Proxmox VE API simulator, fresh each time.

use std::process::ExitCode;

use homelab_sim::proxmox::{ProxmoxSim, SimOptions};
use miette::{IntoDiagnostic, miette};

use super::{SimArgs, print_proxmox, retract_sim_json, state_dir, wait_for_stop, write_sim_json};
use crate::cli::OutputFormat;
use crate::commands::Global;

pub(super) async fn serve(
    global: &Global,
    args: &SimArgs,
    opts: SimOptions,
) -> miette::Result<ExitCode> {
    let sim = ProxmoxSim::start(opts.clone())
        .await
        .map_err(|e| miette!(help = "pick another --proxmox-port, or 0", "{e}"))?;
    let dir = state_dir(&args.state_dir)?;
    let file = write_sim_json(&dir, &sim, &opts, &[])?;
    match global.output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&file).into_diagnostic()?)
        }
        OutputFormat::Text => {
            print_proxmox(&sim, &dir);
            println!("  written to    {}", dir.join("sim.json").display());
            println!("Stop with Ctrl-C.");
        }
    }
    wait_for_stop().await?;
    sim.shutdown().await;
    retract_sim_json(&dir, &[]);
    if global.output == OutputFormat::Text {
        println!("simulator stopped");
    }
    Ok(ExitCode::SUCCESS)
}
