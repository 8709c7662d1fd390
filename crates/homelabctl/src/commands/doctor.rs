//! `homelabctl doctor`: checks the configured Proxmox (node, version, token privileges, storages, bridges)
//! and says how to fix each problem. Exit status: 0 when nothing failed, 1 otherwise.

use crate::ExitStatus;
use crate::failure::failure;
use std::io::Write;
use std::path::Path;

use clap::Args;
use homelab_engine::events::EventSink;
use homelab_proxmox::doctor::{CheckStatus, DoctorInput, DoctorReport, DoctorVm};
use homelab_repo::Repo;
use miette::{IntoDiagnostic, miette};

use super::Global;
use super::provision;
use crate::cli::OutputFormat;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn run(global: &Global, _args: &DoctorArgs) -> miette::Result<ExitStatus> {
    let report = examine(&global.config)?;
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report).into_diagnostic()?
        )?,
        OutputFormat::Text => {
            let mut text = Vec::new();
            print_text(&report, &mut text);
            crate::out::bytes(&text)?;
        }
    }
    Ok(if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Runs every check against the Proxmox that `config_path` names, with the token secret from the repository
/// (`secrets.enc.yaml`, or `HOMELAB_PROXMOX_TOKEN_SECRET`).
pub fn examine(config_path: &Path) -> miette::Result<DoctorReport> {
    let config = provision::load_config(config_path)?;
    let repo = Repo::open(config_path).map_err(failure)?;
    let secret = repo.proxmox_token_secret().map_err(|e| {
        miette!(
            help = "store it with `homelabctl secrets set-proxmox-token` (reads stdin), or export HOMELAB_PROXMOX_TOKEN_SECRET",
            "no Proxmox token secret: {e}"
        )
    })?;
    // The client reports an insecure TLS setting through this sink, once.
    let events = EventSink::new(|e| {
        if let homelab_engine::events::Event::Warning { message, .. } = e {
            eprintln!("warning: {message}");
        }
    });
    let base = provision::base_dir(config_path);
    let proxmox =
        homelab_engine::wiring::proxmox(&config, &base, secret, &events).map_err(failure)?;
    let input = DoctorInput {
        node: config.proxmox.node.clone(),
        iso_storage: config.proxmox.iso_storage.clone(),
        vms: config
            .nodes
            .iter()
            .map(|n| DoctorVm {
                vmid: n.vm_id,
                node: n.proxmox_node.clone(),
                storage: n.disk.storage.clone(),
                bridge: n.network.bridge.clone(),
                vlan: n.network.vlan,
            })
            .collect(),
    };
    let runtime = provision::runtime()?;
    Ok(runtime.block_on(homelab_proxmox::doctor::run(&proxmox.client, &input)))
}

/// One line per check, the fix under each one that did not pass, and a summary line.
pub fn print_text(report: &DoctorReport, out: &mut dyn Write) {
    for c in &report.checks {
        let mark = match c.status {
            CheckStatus::Pass => "ok  ",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        };
        let _ = writeln!(out, "{mark}  {}: {}", c.name, c.detail);
        if let Some(fix) = c.fix.as_ref().filter(|_| c.status != CheckStatus::Pass) {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    let _ = if failed == 0 {
        writeln!(out, "doctor: all checks passed")
    } else {
        writeln!(out, "doctor: {failed} check(s) failed")
    };
}
