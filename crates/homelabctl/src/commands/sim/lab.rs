//! `homelabctl sim` (the default mode): the whole lab — Proxmox VE, Image Factory, a Talos node per VM and the
//! Kubernetes API of a bootstrapped control plane — restored from and saved on every change to the state
//! directory, so `demo --keep` repositories and interrupted sessions carry on where they stopped.

use crate::ExitStatus;
use std::path::Path;

use homelab_sim::lab::{LAB_STATE_FILE, Lab, LabError, LabOptions};
use homelab_sim::talos::NodePhase;
use miette::{IntoDiagnostic, miette};

use super::{SimArgs, print_proxmox, retract_sim_json, state_dir, wait_for_stop, write_sim_json};
use crate::cli::OutputFormat;
use crate::commands::Global;

pub(super) async fn serve(
    global: &Global,
    args: &SimArgs,
    mut opts: LabOptions,
) -> miette::Result<ExitStatus> {
    let dir = state_dir(&args.state_dir)?;
    let restored = dir.join(LAB_STATE_FILE).is_file();
    opts.state_dir = Some(dir.clone());
    let proxmox_opts = opts.proxmox.clone();
    let lab = Lab::start(opts).await.map_err(|e| start_error(&e, &dir))?;
    let factory = serde_json::json!({ "url": lab.factory.url() });
    let file = write_sim_json(&dir, &lab.proxmox, &proxmox_opts, &[("factory", factory)])?;
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&file).into_diagnostic()?)?,
        OutputFormat::Text => print_lab(&lab, &dir, restored)?,
    }
    // A reader that went away during the start-up lines means stop now, as on SIGTERM.
    if !crate::out::closed() {
        wait_for_stop().await?;
    }
    let saved = lab.save();
    drop(lab);
    retract_sim_json(&dir, &["factory"]);
    saved.map_err(|e| miette!("cannot save the simulated homelab: {e}"))?;
    if global.output == OutputFormat::Text {
        outln!("state saved in {}", dir.join(LAB_STATE_FILE).display())?;
        outln!("simulator stopped")?;
    }
    Ok(ExitStatus::Success)
}

fn print_lab(lab: &Lab, dir: &Path, restored: bool) -> Result<(), crate::out::WriteError> {
    print_proxmox(&lab.proxmox, dir)?;
    outln!("Image Factory simulator on {}", lab.factory.url())?;
    for vm in lab.proxmox.vms() {
        let power = if vm.running { "running" } else { "stopped" };
        let talos = match lab.node(vm.vmid).map(|n| (n.phase(), n.kube_addr())) {
            Some((NodePhase::Installed(addr), kube)) => match kube {
                Some(k) => format!("Talos installed, apid {addr}, Kubernetes API {k}"),
                None => format!("Talos installed, apid {addr}"),
            },
            Some((NodePhase::Maintenance(addr), _)) => {
                format!("Talos maintenance mode, apid {addr}")
            }
            Some((NodePhase::Failed(why), _)) => format!("Talos failed: {why}"),
            Some((NodePhase::Off, _)) | None => "Talos off".into(),
        };
        outln!("  VM {:<10} {power:<8} {talos}", vm.vmid)?;
    }
    let verb = if restored {
        "restored from"
    } else {
        "saved to"
    };
    outln!(
        "State {verb} {} (kept current)",
        dir.join(LAB_STATE_FILE).display()
    )?;
    outln!("  written to    {}", dir.join("sim.json").display())?;
    outln!("Ready. Stop with Ctrl-C.")
}

fn start_error(e: &LabError, dir: &Path) -> miette::Report {
    if e.is_busy() {
        miette!(
            help = "one simulator per state directory: use the one that runs, or stop it (Ctrl-C) first",
            "cannot start the simulated homelab: {e}"
        )
    } else if e.is_address_in_use() {
        miette!(
            help = format!(
                "is another `homelabctl sim` (or `demo`) running on {}? Stop it or free the address, then start \
                 again (the addresses stay fixed: homelab.yaml names them)",
                dir.display()
            ),
            "cannot start the simulated homelab: {e}"
        )
    } else {
        miette!(
            help = format!(
                "to start an empty lab instead, move {} away",
                dir.join(LAB_STATE_FILE).display()
            ),
            "cannot start the simulated homelab: {e}"
        )
    }
}
