//! Benchmark: `plan` with nothing to change against the in-process simulators.
//!
//! Run: `cargo run --release -p homelab-engine --example plan_bench [ROUNDS]`. Converges once, then times
//! ROUNDS plans and prints min/median/mean wall time per plan. The simulators answer without deliberate
//! delays on the read paths a no-change plan uses, so the figure is the engine's own time plus loopback
//! round trips (TLS to Proxmox, mutual TLS to apid, the Kubernetes API).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use homelab_engine::adapters::{factory::Factory, kube::Kube, proxmox::Proxmox, talos::Talos};
use homelab_engine::events::EventSink;
use homelab_engine::flow::{Engine, Timeouts};
use homelab_engine::talos_render::TalosRenderer;
use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust, WaitOptions};
use homelab_sim::lab::{Lab, LabOptions};
use homelab_talos::secrets::SecretsBundle;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let lab = Lab::start(LabOptions::fast(90)).await?;
    let info = lab.info();
    let yaml = format!(
        "proxmox:\n  endpoint: {}\n  token_id: \"{}\"\n  tls:\n    fingerprint: \"{}\"\nimage:\n  factory: {}\n\
         nodes:\n  - name: talos-cp-01\n    vm_id: 100\n    network:\n      mac: \"BC:24:11:CA:FE:01\"\n      address: 127.0.90.100/24\n      gateway: 127.0.90.1\n",
        info.proxmox_endpoint, info.token_id, info.fingerprint, info.factory_url
    );
    let config = homelab_config::parse(&yaml, None)
        .map_err(|e| e.to_string())?
        .config;
    let mut options = ClientOptions::new(
        info.proxmox_endpoint.clone(),
        ApiToken::new(info.token_id.clone(), info.token_secret.clone().into())?,
    );
    options.trust = TlsTrust::Fingerprint(Fingerprint::parse(&info.fingerprint)?);
    let proxmox = Proxmox {
        client: Client::new(options)?,
        wait: WaitOptions::default(),
    };
    let bundle = SecretsBundle::generate()?;
    let talos = Talos::from_bundle(&bundle).map_err(|e| e.message)?;
    let factory = Factory::new(&config).map_err(|e| e.message)?;
    let renderer = TalosRenderer {
        bundle,
        base_dir: PathBuf::from("."),
    };
    let state = tempfile::tempdir()?;
    let engine = Engine {
        config: &config,
        hypervisor: &proxmox,
        factory: &factory,
        talos: &talos,
        kube: &Kube::default(),
        renderer: &renderer,
        state_dir: state.path().to_path_buf(),
        events: EventSink::discard(),
        timeouts: Timeouts {
            poll: Duration::from_millis(100),
            ..Timeouts::default()
        },
    };
    engine.converge(false).await.map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let plan = engine.plan().await.map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        assert!(!plan.has_changes(), "the benchmark needs a converged lab");
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / rounds as u32;
    println!(
        "plan (no changes), {rounds} rounds: min {:.1} ms, median {:.1} ms, mean {:.1} ms (goal < 100 ms)",
        times[0].as_secs_f64() * 1e3,
        times[rounds / 2].as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3
    );
    Ok(())
}
