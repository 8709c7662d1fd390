//! `homelabctl doctor`: checks the configured Proxmox (node, version, token privileges, storages, bridges)
//! and says how to fix each problem. Exit status: 0 when nothing failed, 1 otherwise.

use std::process::ExitCode;

use clap::Args;
use homelab_config::TlsTrust as ConfigTrust;
use homelab_proxmox::doctor::{CheckStatus, DoctorInput, DoctorVm};
use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust};
use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;
use crate::cli::OutputFormat;

/// Where the token secret comes from until the SOPS-backed secrets file is wired in.
pub const TOKEN_SECRET_ENV: &str = "HOMELAB_PROXMOX_TOKEN_SECRET";

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub fn run(global: &Global, _args: &DoctorArgs) -> miette::Result<ExitCode> {
    let loaded = homelab_config::load(&global.config).map_err(|e| miette!("{e}"))?;
    let px = &loaded.config.proxmox;
    let secret = std::env::var(TOKEN_SECRET_ENV).map_err(|_| {
        miette!(
            help = format!("export {TOKEN_SECRET_ENV}=<the token's UUID secret> (reading it from secrets.enc.yaml comes later)"),
            "no Proxmox token secret"
        )
    })?;
    let token = ApiToken::new(px.token_id.clone(), secret.into()).map_err(|e| miette!("{e}"))?;
    let mut opts = ClientOptions::new(px.endpoint.clone(), token);
    opts.trust = match px.tls.trust() {
        ConfigTrust::SystemRoots => TlsTrust::SystemRoots,
        ConfigTrust::CaFile(p) => {
            let base = global
                .config
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            TlsTrust::CaFile(if p.is_absolute() { p } else { base.join(p) })
        }
        ConfigTrust::Fingerprint(f) => {
            TlsTrust::Fingerprint(Fingerprint::parse(&f).map_err(|e| miette!("{e}"))?)
        }
        ConfigTrust::Insecure => TlsTrust::Insecure,
    };
    let client = Client::new(opts).map_err(|e| miette!("{e}"))?;
    if let Some(w) = client.tls_warning() {
        eprintln!("warning: {w}");
    }
    let input = DoctorInput {
        node: px.node.clone(),
        iso_storage: px.iso_storage.clone(),
        vms: loaded
            .config
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
    let runtime = tokio::runtime::Runtime::new()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    let report = runtime.block_on(homelab_proxmox::doctor::run(&client, &input));
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).into_diagnostic()?
        ),
        OutputFormat::Text => {
            for c in &report.checks {
                let mark = match c.status {
                    CheckStatus::Pass => "ok  ",
                    CheckStatus::Warn => "warn",
                    CheckStatus::Fail => "FAIL",
                };
                println!("{mark}  {}: {}", c.name, c.detail);
                if let Some(fix) = c.fix.as_ref().filter(|_| c.status != CheckStatus::Pass) {
                    println!("      fix: {fix}");
                }
            }
            let failed = report
                .checks
                .iter()
                .filter(|c| c.status == CheckStatus::Fail)
                .count();
            if failed == 0 {
                println!("doctor: all checks passed");
            } else {
                println!("doctor: {failed} check(s) failed");
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
