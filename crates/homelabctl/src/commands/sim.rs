//! `homelabctl sim`: runs the simulators in the foreground on loopback, prints and writes `sim.json`, and
//! stops cleanly on SIGINT/SIGTERM.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use homelab_sim::proxmox::{EndpointFault, FaultKind, Faults, ProxmoxSim, PveVersion, SimOptions};
use homelab_sim::sim_file::{ProxmoxSection, SimFile};
use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;
use crate::cli::OutputFormat;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Directory for sim.json and the simulated cluster CA (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".homelab/sim")]
    pub state_dir: PathBuf,
    /// Loopback address to listen on (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: Ipv4Addr,
    /// Port of the Proxmox API (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub proxmox_port: u16,
    /// Proxmox VE version to imitate: 8.4 or 9.1.
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

pub fn run(global: &Global, args: &SimArgs) -> miette::Result<ExitCode> {
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
    let opts = SimOptions {
        version,
        bind: args.bind,
        port: args.proxmox_port,
        faults,
        ..SimOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(serve(global, args, opts))
}

async fn serve(global: &Global, args: &SimArgs, opts: SimOptions) -> miette::Result<ExitCode> {
    let iso_storage = opts
        .storages
        .iter()
        .find(|s| s.content.contains("iso"))
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let vm_storage = opts
        .storages
        .iter()
        .find(|s| s.content.contains("images"))
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let bridge = opts
        .interfaces
        .iter()
        .find(|i| i.kind == "bridge")
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let sim = ProxmoxSim::start(opts)
        .await
        .map_err(|e| miette!(help = "pick another --proxmox-port, or 0", "{e}"))?;

    std::fs::create_dir_all(&args.state_dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", args.state_dir.display()))?;
    let state_dir = std::fs::canonicalize(&args.state_dir).into_diagnostic()?;
    let ca_file = state_dir.join("proxmox-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", ca_file.display()))?;
    let sim_json = state_dir.join("sim.json");
    let mut file = SimFile::read(&sim_json).unwrap_or_default();
    file.proxmox = Some(ProxmoxSection {
        endpoint: sim.endpoint(),
        node: sim.node(),
        pve_version: sim.version().full().to_string(),
        token_id: sim.token_id().to_string(),
        token_secret: sim.token_secret().to_string(),
        fingerprint: sim.fingerprint().to_string(),
        ca_file: ca_file.clone(),
        iso_storage,
        vm_storage,
        bridge,
    });
    file.write(&sim_json).map_err(|e| miette!("{e}"))?;

    match global.output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&file).into_diagnostic()?)
        }
        OutputFormat::Text => {
            println!(
                "Proxmox VE {} simulator on {}",
                sim.version().full(),
                sim.endpoint()
            );
            println!("  node          {}", sim.node());
            println!("  token id      {}", sim.token_id());
            println!(
                "  token secret  {}   (a simulator credential)",
                sim.token_secret()
            );
            println!("  fingerprint   {}", sim.fingerprint());
            println!("  CA file       {}", ca_file.display());
            println!("  written to    {}", sim_json.display());
            println!("Stop with Ctrl-C.");
        }
    }
    wait_for_stop().await?;
    sim.shutdown().await;
    // The endpoint is gone: remove our section so nobody connects to a dead simulator.
    if let Ok(mut current) = SimFile::read(&sim_json) {
        current.proxmox = None;
        if current.other.is_empty() {
            let _ = std::fs::remove_file(&sim_json);
        } else {
            let _ = current.write(&sim_json);
        }
    }
    if global.output == OutputFormat::Text {
        println!("simulator stopped");
    }
    Ok(ExitCode::SUCCESS)
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
