//! `homelabctl demo`: the whole provisioning flow against the built-in simulators, no Proxmox needed.
//! It starts the lab in-process, creates a repository with `init` (every address in 127.0.0.0/8), stores the
//! simulator's token with SOPS, runs `apply` with its real progress output, shows `status`, and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use homelab_config::template::InitValues;
use homelab_repo::Repo;
use homelab_sim::lab::{Lab, LabOptions};
use miette::{IntoDiagnostic, miette};

use super::Global;
use super::provision::{self, BundlePolicy};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the repository in DIR (it must not exist or be empty) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// The demo's repository values: the reference deployment moved onto loopback.
fn values(lab: &Lab) -> InitValues {
    let info = lab.info();
    InitValues {
        proxmox_endpoint: info.proxmox_endpoint,
        proxmox_node: info.proxmox_node,
        token_id: info.token_id,
        fingerprint: Some(info.fingerprint),
        factory: info.factory_url,
        address: "127.0.20.100/24".into(),
        gateway: "127.0.20.1".into(),
        nameservers: vec!["127.0.20.1".into()],
        ..InitValues::reference()
    }
}

pub fn run(global: &Global, args: &DemoArgs) -> miette::Result<ExitCode> {
    let temp = tempfile::tempdir().into_diagnostic()?;
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().join("homelab"));
    provision::runtime()?.block_on(async {
        eprintln!("==> starting the simulated homelab (Proxmox VE, Image Factory, Talos) on 127.0.0.0/8");
        let lab = Lab::start(LabOptions::demo()).await.map_err(|e| miette!("cannot start the simulator: {e}"))?;
        eprintln!("    Proxmox VE API at {} (certificate {})", lab.info().proxmox_endpoint, lab.info().fingerprint);
        eprintln!("==> homelabctl init {}", dir.display());
        super::init::write_repository(&dir, &values(&lab), &[], false)?;
        let config = dir.join(homelab_config::FILE_NAME);
        let repo = Repo::open(&config).map_err(|e| miette!("{e}"))?;
        repo.set_proxmox_token_secret(&lab.info().token_secret).map_err(|e| miette!("{e}"))?;
        eprintln!("    stored the simulator's API token secret in secrets.enc.yaml (SOPS, age)");
        let global = Global {
            config,
            output: global.output,
        };
        eprintln!("==> homelabctl apply --yes");
        let events = render::events::sink(global.output, render::stderr_color());
        let wired = provision::wire(&global, BundlePolicy::CreateIfNew, &events).await?;
        let engine = wired.engine(events.clone());
        let plan = engine.plan().await.map_err(|e| miette!("{e}"))?;
        if global.output == OutputFormat::Text {
            eprint!("{}", render::plan::text(&plan, render::stderr_color()));
        }
        engine.converge(false).await.map_err(|e| miette!("{e}"))?;
        eprintln!("==> homelabctl status");
        let rows = engine.status().await;
        super::status::print_rows(global.output, &rows);
        if !rows.iter().all(|r| r.healthy) {
            return Err(miette!("the demo cluster is not healthy"));
        }
        match &args.keep {
            Some(d) => eprintln!(
                "\nThe repository is in {}. The simulator stops with this command; the next plan/apply there needs a Proxmox (or `homelabctl demo --keep` into a new directory).",
                d.display()
            ),
            None => eprintln!("\nDemo complete: one Talos node provisioned, bootstrapped and Ready. (`--keep DIR` keeps the repository.)"),
        }
        Ok(ExitCode::SUCCESS)
    })
}
