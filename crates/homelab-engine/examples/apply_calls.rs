//! Benchmark: the API calls an apply makes, against the minimum it needs.
//!
//! Run: `cargo run -p homelab-engine --example apply_calls`. Starts the in-process lab (fast timings), then
//! runs what `homelabctl apply` runs — wiring as the binary does, a plan, then converge when it has
//! changes — from nothing, again with nothing to change, and a `plan` with nothing to change. For each it prints every endpoint the simulators
//! served (Proxmox per method and path template, the Image Factory, apid per gRPC method, the Kubernetes
//! API per path) with the calls made, the minimum the flow needs and the ratio. Calls that poll for
//! something to happen (task status, the guest agent, Talos installing, Kubernetes becoming ready) are
//! waits: their minimum is one answer, the rest is time, marked `wait` and not counted as waste. Only
//! requests a simulator served are counted: a connection refused (apid not up yet) is not a call.
//!
//! Calls beyond the minimum that remain, and why: each command first checks whether a VM of the cluster
//! exists (one status read, deciding whether a missing Talos bundle may be generated); the Proxmox client's
//! `create` checks the VMID is free, `ensure_started` reads the status and `ensure_downloaded` lists the
//! storage before acting, so each call is safe on its own even right after the engine looked.

use std::collections::BTreeMap;

use homelab_config::template::InitValues;
use homelab_engine::events::EventSink;
use homelab_engine::wiring::{self, Wired};
use homelab_sim::lab::{Lab, LabOptions};
use homelab_sim::requests::difference;
use homelab_talos::secrets::SecretsBundle;
use secrecy::SecretString;

/// What a phase needs of an endpoint: a number of calls, or a number of answers of a wait.
#[derive(Debug, Clone, Copy)]
enum Need {
    Calls(u64),
    Wait(u64),
}

/// The minimum of each endpoint per phase, reasoned from the flow for one node (DESIGN.md, provisioning
/// flow). `apply` is a plan and, when it has changes, a converge; converge observes again (the operator may
/// confirm minutes after the plan), so an apply with changes reads each live object twice, an apply without
/// changes once. Endpoints not listed need no call at all.
fn minimum(phase: Phase, endpoint: &str) -> Need {
    use Need::{Calls, Wait};
    let changes = phase == Phase::ApplyFromNothing;
    let reads = if changes { 2 } else { 1 };
    match endpoint {
        // The ISO's presence: one listing of the ISO storage per observation.
        "proxmox GET /nodes/{node}/storage/{storage}/content" => Calls(reads),
        // One download of the ISO (the factory serves it once) and one schematic registration per run (its
        // id is content-addressed, but the factory must know it to build the ISO).
        "proxmox POST /nodes/{node}/storage/{storage}/download-url" if changes => Calls(1),
        e if e.starts_with("factory GET /image/") && changes => Calls(1),
        "factory POST /schematics" => Calls(1),
        // The VM: its status per observation; its config only once it exists (a VM made by this run is
        // known); one create, one start.
        "proxmox GET /nodes/{node}/qemu/{vmid}/status/current" => Calls(reads),
        "proxmox GET /nodes/{node}/qemu/{vmid}/config" if !changes => Calls(1),
        "proxmox POST /nodes/{node}/qemu" if changes => Calls(1),
        "proxmox POST /nodes/{node}/qemu/{vmid}/status/start" if changes => Calls(1),
        // Three tasks (download, create, start) end when they end: polling them is a wait, one answer each.
        "proxmox GET /nodes/{node}/tasks/{upid}/status" if changes => Wait(3),
        // The DHCP address comes from the agent, which answers only once the VM has booted.
        "proxmox GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces" if changes => Wait(1),
        // Talos: one maintenance apply, then waiting for the installed node; later one Version answer.
        "apid /machine.MachineService/ApplyConfiguration" if changes => Calls(1),
        "apid /machine.MachineService/Version" if changes => Wait(1),
        "apid /machine.MachineService/Version" => Calls(1),
        // etcd: one member list to know whether it is bootstrapped; one bootstrap from nothing.
        "apid /machine.MachineService/EtcdMemberList" => Calls(1),
        "apid /machine.MachineService/Bootstrap" if changes => Calls(1),
        // One kubeconfig to talk to Kubernetes; then the API server's readiness and the nodes (one list).
        "apid /machine.MachineService/Kubeconfig" => Calls(1),
        "kube GET /readyz" | "kube GET /api/v1/nodes" => {
            if changes {
                Wait(1)
            } else {
                Calls(1)
            }
        }
        _ => Calls(0),
    }
}

/// Endpoints some phase needs, listed even when a run made no call to them.
const NEEDED: [&str; 13] = [
    "proxmox GET /nodes/{node}/storage/{storage}/content",
    "proxmox POST /nodes/{node}/storage/{storage}/download-url",
    "factory POST /schematics",
    "proxmox GET /nodes/{node}/qemu/{vmid}/status/current",
    "proxmox GET /nodes/{node}/qemu/{vmid}/config",
    "proxmox POST /nodes/{node}/qemu",
    "proxmox POST /nodes/{node}/qemu/{vmid}/status/start",
    "apid /machine.MachineService/ApplyConfiguration",
    "apid /machine.MachineService/Version",
    "apid /machine.MachineService/EtcdMemberList",
    "apid /machine.MachineService/Bootstrap",
    "apid /machine.MachineService/Kubeconfig",
    "kube GET /readyz",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ApplyFromNothing,
    ApplyNoChange,
    PlanNoChange,
}

impl Phase {
    fn title(self) -> &'static str {
        match self {
            Phase::ApplyFromNothing => "apply from nothing",
            Phase::ApplyNoChange => "apply with nothing to change",
            Phase::PlanNoChange => "plan with nothing to change",
        }
    }
}

/// Prints one phase's table; returns (calls made, minimum, calls beyond the minimum outside waits).
fn report(phase: Phase, calls: &BTreeMap<String, u64>) -> (u64, u64, u64) {
    println!("\n{}", phase.title());
    println!(
        "{:<72} {:>6} {:>8} {:>6}",
        "endpoint", "calls", "minimum", "ratio"
    );
    let mut endpoints: Vec<String> = calls.keys().cloned().collect();
    for needed in NEEDED {
        let wanted = !matches!(minimum(phase, needed), Need::Calls(0));
        if wanted && !calls.contains_key(needed) {
            endpoints.push(needed.to_string());
        }
    }
    endpoints.sort();
    let mut totals = (0, 0, 0);
    for endpoint in endpoints {
        let made = calls.get(&endpoint).copied().unwrap_or(0);
        let (need, label, wait) = match minimum(phase, &endpoint) {
            Need::Calls(n) => (n, n.to_string(), false),
            Need::Wait(n) => (n, format!("{n} wait"), true),
        };
        let ratio = if need == 0 {
            "extra".to_string()
        } else {
            format!("{:.1}", made as f64 / need as f64)
        };
        // Image paths carry the 64-hex schematic id; the table keeps its start.
        let shown: String = endpoint.chars().take(72).collect();
        println!("{shown:<72} {made:>6} {label:>8} {ratio:>6}");
        totals.0 += made;
        totals.1 += need;
        if !wait {
            totals.2 += made.saturating_sub(need);
        }
    }
    println!(
        "{:<72} {:>6} {:>8} {:>6.1}   ({} calls beyond the minimum outside waits)",
        "total",
        totals.0,
        totals.1,
        totals.0 as f64 / totals.1.max(1) as f64,
        totals.2
    );
    totals
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let lab = Lab::start(LabOptions::fast(91)).await?;
    let info = lab.info();
    // The repository `homelabctl init` writes, pointed at the lab.
    let yaml = homelab_config::template::homelab_yaml(&InitValues {
        proxmox_endpoint: info.proxmox_endpoint.clone(),
        proxmox_node: info.proxmox_node.clone(),
        token_id: info.token_id.clone(),
        fingerprint: Some(info.fingerprint.clone()),
        factory: info.factory_url.clone(),
        address: "127.0.91.100/24".into(),
        gateway: "127.0.91.1".into(),
        nameservers: vec!["127.0.91.1".into()],
        ..InitValues::reference()
    });
    let config = homelab_config::parse(&yaml, None)
        .map_err(|e| e.to_string())?
        .config;
    let bundle = SecretsBundle::generate()?;
    let repo = tempfile::tempdir()?;
    let mut totals = Vec::new();
    for phase in [
        Phase::ApplyFromNothing,
        Phase::ApplyNoChange,
        Phase::PlanNoChange,
    ] {
        // Each command is its own process: wired afresh, as `homelabctl apply` and `plan` wire it (default
        // timeouts and polling, no connection or cache kept from the previous command).
        let before = lab.request_counts();
        let events = EventSink::discard();
        let token = SecretString::from(info.token_secret.clone());
        let proxmox = wiring::proxmox(&config, repo.path(), token, &events)?;
        wiring::cluster_exists(&proxmox, &config)
            .await
            .map_err(|e| e.message)?;
        let wired = Wired::new(config.clone(), repo.path(), proxmox, bundle.clone())?;
        let engine = wired.engine(events);
        let plan = engine.plan().await.map_err(|e| e.to_string())?;
        if phase != Phase::PlanNoChange && plan.has_changes() {
            engine.converge(false).await.map_err(|e| e.to_string())?;
        }
        if phase != Phase::ApplyFromNothing && plan.has_changes() {
            return Err(format!("{}: the lab did not converge: {plan:?}", phase.title()).into());
        }
        totals.push((
            phase,
            report(phase, &difference(&before, &lab.request_counts())),
        ));
    }
    println!(
        "\nsummary: phase, calls made, minimum, ratio, calls beyond the minimum outside waits"
    );
    for (phase, (made, need, extra)) in totals {
        println!(
            "  {:<30} {made:>5} {need:>5} {:>5.1} {extra:>5}",
            phase.title(),
            made as f64 / need.max(1) as f64
        );
    }
    Ok(())
}
