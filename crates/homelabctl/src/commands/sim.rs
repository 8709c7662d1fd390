//! `homelabctl sim`: runs the simulators in the foreground on loopback until SIGINT/SIGTERM — by default the
//! whole lab (Proxmox VE, Image Factory, a Talos node per VM, Kubernetes) kept in and restored from
//! `--state-dir`, or with `--proxmox-only` just the Proxmox VE API. Both print and write `sim.json`.

mod lab;
mod proxmox;

use crate::ExitStatus;
use crate::failure::failure;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::Args;
use homelab_sim::lab::LabOptions;
use homelab_sim::proxmox::{
    EndpointFault, FaultKind, Faults, ProxmoxSim, PveVersion, SimOptions, SimTiming,
};
use homelab_sim::sim_file::{ProxmoxSection, SimFile};
use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Directory for sim.json, the simulated cluster CA and (for the lab) its saved state, lab.json. A lab
    /// started on a directory that holds a saved state comes back as it was: the same ports, certificate,
    /// token, VMs and Talos nodes.
    #[arg(long, value_name = "DIR", default_value = ".homelab/sim")]
    pub state_dir: PathBuf,
    /// Run only the Proxmox VE API simulator (no Image Factory, no Talos nodes, nothing saved).
    #[arg(long)]
    pub proxmox_only: bool,
    /// Loopback address to listen on (127.0.0.0/8 only; a restored lab keeps its address).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: Ipv4Addr,
    /// Port of the Proxmox API (0 = any free port; a restored lab keeps its port).
    #[arg(long, default_value_t = 0)]
    pub proxmox_port: u16,
    /// Port of the Image Factory (0 = any free port; a restored lab keeps its port).
    #[arg(long, default_value_t = 0)]
    pub factory_port: u16,
    /// Proxmox VE version to imitate: 8.4 or 9.1 (a restored lab keeps its version).
    #[arg(long, default_value = "9.1", value_name = "VERSION")]
    pub pve_version: String,
    /// Seed for fault injection (same seed, same faults).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probability (0–1) that any Proxmox request fails with a transient 503.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub error_rate: f64,
    /// The guest agent never answers (like a Talos image without the qemu-guest-agent extension).
    #[arg(long)]
    pub agent_never_answers: bool,
}

pub fn run(global: &Global, args: &SimArgs) -> miette::Result<ExitStatus> {
    let lab = lab_options(20);
    let opts = proxmox_options(args, lab.proxmox.timing.clone())?;
    let runtime = tokio::runtime::Runtime::new()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    if args.proxmox_only {
        runtime.block_on(proxmox::serve(global, args, opts))
    } else {
        let lab = LabOptions {
            proxmox: opts,
            factory_port: args.factory_port,
            ..lab
        };
        runtime.block_on(lab::serve(global, args, lab))
    }
}

/// The lab's setup: the demo's timings (a person can follow them), DHCP leases from `127.0.<subnet>.200`.
pub(super) fn lab_options(subnet: u8) -> LabOptions {
    let mut opts = LabOptions::demo();
    opts.dhcp_first = Ipv4Addr::new(127, 0, subnet, 200);
    opts
}

fn proxmox_options(args: &SimArgs, timing: SimTiming) -> miette::Result<SimOptions> {
    let version = PveVersion::parse(&args.pve_version).ok_or_else(|| {
        miette!(
            help = "use 8.4 or 9.1",
            "unsupported --pve-version '{}'",
            args.pve_version
        )
    })?;
    if !(0.0..=1.0).contains(&args.error_rate) {
        return Err(miette!(
            help = "give a probability between 0 and 1",
            "invalid --error-rate {}",
            args.error_rate
        ));
    }
    let mut faults = Faults {
        seed: args.seed,
        agent_never_answers: args.agent_never_answers,
        ..Faults::default()
    };
    if args.error_rate > 0.0 {
        faults.endpoints.push(EndpointFault::new(
            "*",
            FaultKind::Unavailable,
            args.error_rate,
        ));
    }
    Ok(SimOptions {
        version,
        bind: args.bind,
        port: args.proxmox_port,
        faults,
        timing,
        ..SimOptions::default()
    })
}

/// Creates the state directory and returns its absolute path.
fn state_dir(dir: &Path) -> miette::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    std::fs::canonicalize(dir).into_diagnostic()
}

/// Writes the CA file and the Proxmox section of `sim.json` (plus `other` sections); returns the file.
fn write_sim_json(
    dir: &Path,
    sim: &ProxmoxSim,
    opts: &SimOptions,
    other: &[(&str, serde_json::Value)],
) -> miette::Result<SimFile> {
    let ca_file = dir.join("proxmox-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", ca_file.display()))?;
    let first = |pick: &dyn Fn(&homelab_sim::proxmox::Storage) -> bool| {
        opts.storages.iter().find(|s| pick(s)).map(|s| s.id.clone())
    };
    let sim_json = dir.join("sim.json");
    let mut file = SimFile::read(&sim_json).unwrap_or_default();
    file.proxmox = Some(ProxmoxSection {
        endpoint: sim.endpoint(),
        node: sim.node(),
        pve_version: sim.version().full().to_string(),
        token_id: sim.token_id().to_string(),
        token_secret: sim.token_secret().to_string(),
        fingerprint: sim.fingerprint().to_string(),
        ca_file,
        iso_storage: first(&|s| s.content.contains("iso")).unwrap_or_default(),
        vm_storage: first(&|s| s.content.contains("images")).unwrap_or_default(),
        bridge: opts
            .interfaces
            .iter()
            .find(|i| i.kind == "bridge")
            .map(|i| i.name.clone())
            .unwrap_or_default(),
    });
    for (key, value) in other {
        file.other.insert((*key).to_string(), value.clone());
    }
    file.write(&sim_json).map_err(failure)?;
    Ok(file)
}

/// Prints what a Proxmox client needs.
fn print_proxmox(sim: &ProxmoxSim, dir: &Path) -> Result<(), crate::out::WriteError> {
    outln!(
        "Proxmox VE {} simulator on {}",
        sim.version().full(),
        sim.endpoint()
    )?;
    outln!("  node          {}", sim.node())?;
    outln!("  token id      {}", sim.token_id())?;
    outln!(
        "  token secret  {}   (a simulator credential)",
        sim.token_secret()
    )?;
    outln!("  fingerprint   {}", sim.fingerprint())?;
    outln!("  CA file       {}", dir.join("proxmox-ca.pem").display())
}

/// The endpoint is gone: removes the sections of `keys` so nobody connects to a dead simulator.
fn retract_sim_json(dir: &Path, keys: &[&str]) {
    let sim_json = dir.join("sim.json");
    if let Ok(mut current) = SimFile::read(&sim_json) {
        current.proxmox = None;
        for key in keys {
            current.other.remove(*key);
        }
        if current.other.is_empty() {
            let _ = std::fs::remove_file(&sim_json);
        } else {
            let _ = current.write(&sim_json);
        }
    }
}

async fn wait_for_stop() -> miette::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).into_diagnostic()?;
        let mut int = signal(SignalKind::interrupt()).into_diagnostic()?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.into_diagnostic()?;
    Ok(())
}
