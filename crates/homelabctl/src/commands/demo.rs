//! `homelabctl demo`: the whole provisioning flow against the built-in simulators, no Proxmox needed.
//! It starts the lab in-process, creates a repository with `init` (every address in 127.0.0.0/8), stores the
//! simulator's token with SOPS, runs `apply` with its real progress output, shows `status`, and exits 0. With
//! `--keep DIR` the lab's state goes to `DIR/.homelab/sim`, so `homelabctl sim --state-dir DIR/.homelab/sim`
//! brings the same simulated homelab back for plan/apply/destroy in that repository.

use crate::ExitStatus;
use crate::failure::failure;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use clap::Args;
use homelab_config::template::InitValues;
use homelab_repo::Repo;
use homelab_sim::lab::Lab;
use miette::{IntoDiagnostic, miette};

use super::Global;
use super::provision::{self, BundlePolicy, EngineFailure};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the repository in DIR (it must not exist or be empty) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// The loopback subnet 127.0.N.0/24 to try first for the node addresses; when another lab holds its
    /// addresses, the next free one is used (so demos run side by side).
    #[arg(long, hide = true, default_value_t = 20)]
    pub subnet: u8,
}

/// Where a demo node listens: its static address (apid, Kubernetes API) and its first DHCP lease (apid in
/// maintenance mode).
fn node_sockets(subnet: u8) -> [SocketAddrV4; 3] {
    let node = Ipv4Addr::new(127, 0, subnet, 100);
    let lease = Ipv4Addr::new(127, 0, subnet, 200);
    [
        SocketAddrV4::new(node, 50000),
        SocketAddrV4::new(node, 6443),
        SocketAddrV4::new(lease, 50000),
    ]
}

/// The first subnet from `first` whose node sockets are all free. A demo on a taken subnet would wait the
/// whole install timeout for "its" node while another lab's node answers on that address.
fn free_subnet(first: u8) -> miette::Result<u8> {
    let taken = |subnet: u8| {
        node_sockets(subnet)
            .into_iter()
            .find(|addr| std::net::TcpListener::bind(addr).is_err())
    };
    let mut busy = Vec::new();
    for subnet in first..=u8::MAX {
        match taken(subnet) {
            None => {
                if let Some(addr) = busy.first() {
                    eprintln!(
                        "    {addr} is taken (another `homelabctl sim` or demo?): the demo uses 127.0.{subnet}.0/24"
                    );
                }
                return Ok(subnet);
            }
            Some(addr) => busy.push(addr),
        }
    }
    Err(miette!(
        help = "stop other `homelabctl sim`/`demo` runs (Ctrl-C), or free the addresses, then start again",
        "no free loopback subnet for the demo's node from 127.0.{first}.0/24 on: the first taken address is {}",
        busy.first()
            .map_or_else(|| "none".to_string(), ToString::to_string)
    ))
}

/// The demo's repository values: the reference deployment moved onto loopback.
fn values(lab: &Lab, subnet: u8) -> InitValues {
    let info = lab.info();
    InitValues {
        proxmox_endpoint: info.proxmox_endpoint,
        proxmox_node: info.proxmox_node,
        token_id: info.token_id,
        fingerprint: Some(info.fingerprint),
        factory: info.factory_url,
        address: format!("127.0.{subnet}.100/24"),
        gateway: format!("127.0.{subnet}.1"),
        nameservers: vec![format!("127.0.{subnet}.1")],
        ..InitValues::reference()
    }
}

/// How to carry on with a kept repository: restart its simulator, then the usual commands.
fn kept_message(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let sim = dir.join(".homelab").join("sim");
    let config = dir.join(homelab_config::FILE_NAME);
    let (dir, sim, config) = (shell_word(&dir), shell_word(&sim), shell_word(&config));
    [
        format!("\nDemo complete. The repository is in {dir}."),
        format!("The simulated homelab stopped with the demo; its state is in {sim}. Start it again (until Ctrl-C):"),
        format!("    homelabctl sim --state-dir {sim}"),
        "then, in another terminal, carry on:".to_string(),
        format!("    homelabctl --config {config} plan"),
        format!("    homelabctl --config {config} status"),
        format!("    homelabctl --config {config} destroy --yes"),
        format!("    homelabctl --config {config} apply --yes"),
    ]
    .join("\n")
}

/// `--keep DIR` must not exist or be empty: the demo writes a new repository and a new simulator state there.
fn ensure_empty(dir: &Path) -> miette::Result<()> {
    let used = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(miette!("cannot read {}: {e}", dir.display())),
    };
    if used {
        let sim = dir.join(".homelab").join("sim");
        return Err(miette!(
            help = format!(
                "give a new directory; to carry on with a kept demo, start its simulator: homelabctl sim --state-dir {}",
                shell_word(&sim)
            ),
            "{} is not empty; nothing was written",
            dir.display()
        ));
    }
    Ok(())
}

/// A path as one shell word: as it is when it has only safe characters, else single-quoted.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:@,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

pub fn run(global: &Global, args: &DemoArgs) -> miette::Result<ExitStatus> {
    if let Some(dir) = &args.keep {
        ensure_empty(dir)?;
    }
    let temp = tempfile::tempdir().into_diagnostic()?;
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().join("homelab"));
    provision::runtime()?.block_on(async {
        eprintln!("==> starting the simulated homelab (Proxmox VE, Image Factory, Talos) on 127.0.0.0/8");
        let subnet = free_subnet(args.subnet)?;
        let mut opts = super::sim::lab_options(subnet);
        opts.state_dir = args.keep.as_ref().map(|d| d.join(".homelab").join("sim"));
        let lab = Lab::start(opts).await.map_err(|e| miette!("cannot start the simulator: {e}"))?;
        eprintln!("    Proxmox VE API at {} (certificate {})", lab.info().proxmox_endpoint, lab.info().fingerprint);
        eprintln!("==> homelabctl init {}", dir.display());
        super::init::write_repository(&dir, &values(&lab, subnet), &[], false)?;
        let config = dir.join(homelab_config::FILE_NAME);
        let repo = Repo::open(&config).map_err(failure)?;
        repo.set_proxmox_token_secret(&lab.info().token_secret).map_err(failure)?;
        eprintln!("    stored the simulator's API token secret in secrets.enc.yaml (SOPS, age)");
        let global = Global {
            config,
            output: global.output,
            format: global.format,
        };
        eprintln!("==> homelabctl apply --yes");
        let events = render::events::sink(global.output, render::stderr_color());
        let wired = provision::wire(&global, BundlePolicy::CreateIfNew, &events).await?;
        let engine = wired.engine(events.clone());
        let plan = engine.plan().await.map_err(|e| EngineFailure::of("demo", e))?;
        if global.output == OutputFormat::Text {
            eprint!("{}", render::plan::text(&plan, render::stderr_color()));
        }
        engine.converge(false).await.map_err(|e| EngineFailure::of("demo", e))?;
        eprintln!("==> homelabctl status");
        let rows = engine.status().await;
        super::status::print_rows(global.output, &rows)?;
        if !rows.iter().all(|r| r.healthy) {
            return Err(miette!("the demo cluster is not healthy"));
        }
        lab.save().map_err(|e| miette!("cannot save the simulated homelab: {e}"))?;
        match &args.keep {
            Some(d) => eprintln!("{}", kept_message(d)),
            None => eprintln!("\nDemo complete: one Talos node provisioned, bootstrapped and Ready. (`--keep DIR` keeps the repository.)"),
        }
        Ok(ExitStatus::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_printed_commands_are_one_shell_word() {
        assert_eq!(
            shell_word(Path::new("/tmp/lab-1/x.yaml")),
            "/tmp/lab-1/x.yaml"
        );
        assert_eq!(shell_word(Path::new("/tmp/my lab")), "'/tmp/my lab'");
        assert_eq!(shell_word(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}
