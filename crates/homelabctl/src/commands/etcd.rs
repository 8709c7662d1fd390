//! `homelabctl etcd …`: snapshots of the cluster's etcd (written only age-encrypted, under `backups/` by
//! default, with their metadata beside them), the list of snapshots and their pruning, the members, and the
//! documented Talos disaster recovery from a snapshot. The logic lives in the engine (`etcd`) and the
//! repository (`backups`); this module wires them and renders.

use crate::ExitStatus;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use homelab_engine::adapters::talos::Talos;
use homelab_engine::etcd::{Etcd, Member};
use homelab_repo::{Repo, Snapshot, SnapshotMeta, SnapshotTarget};
use miette::miette;

use super::Global;
use super::provision::{self, confirm, load_config};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct EtcdArgs {
    #[command(subcommand)]
    pub command: EtcdCommand,
}

#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// Stream a snapshot from a healthy member and write it age-encrypted to the .sops.yaml recipients of the
    /// Talos secrets bundle (never a plaintext byte on disk), by default under backups/ (gitignored), with a
    /// metadata file beside it (time, cluster, Talos and etcd versions; nothing secret).
    Snapshot {
        /// Write the encrypted snapshot to FILE instead of backups/ (metadata goes to FILE.json). Named
        /// `--out` as in `plan --out`: `--output` is the older name of the global `--format`.
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Afterwards keep only the newest N snapshots under backups/.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// List the snapshots under backups/, oldest first.
    Snapshots {
        /// Delete all but the newest N first.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// The etcd members: id, name, peer URLs, leader, learner.
    Members,
    /// Talos' disaster recovery from an encrypted snapshot: etcd's data is wiped on every control plane,
    /// the snapshot is uploaded to the first and bootstrapped there, the others rejoin. Every change to the
    /// cluster since the snapshot is lost.
    Restore {
        /// The encrypted snapshot (from `etcd snapshot`).
        file: PathBuf,
        /// Confirm without asking.
        #[arg(long)]
        yes: bool,
        /// How long to wait for each node to come back, rejoin, or take the snapshot.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
    },
}

pub fn run(global: &Global, args: &EtcdArgs) -> miette::Result<ExitStatus> {
    match &args.command {
        EtcdCommand::Snapshot { out, keep } => snapshot(global, out.as_deref(), *keep),
        EtcdCommand::Snapshots { keep } => snapshots(global, *keep),
        EtcdCommand::Members => members(global),
        EtcdCommand::Restore { file, yes, timeout } => {
            restore(global, file, *yes, Duration::from_secs(*timeout))
        }
    }
}

/// The repository, homelab.yaml and the Talos client credentials minted from the bundle.
struct Site {
    repo: Repo,
    config: homelab_config::Config,
    talos: Talos,
}

fn site(global: &Global) -> miette::Result<Site> {
    let config = load_config(&global.config)?;
    let repo = Repo::open(&global.config).map_err(|e| miette!("{e}"))?;
    let bundle = repo.talos_bundle_required().map_err(|e| miette!("{e}"))?;
    let talos = Talos::from_bundle(&bundle).map_err(|e| miette!("{e}"))?;
    Ok(Site {
        repo,
        config,
        talos,
    })
}

impl Site {
    fn etcd(&self, global: &Global, timeout: Duration) -> Etcd<'_> {
        Etcd {
            config: &self.config,
            credentials: &self.talos.credentials,
            events: render::events::sink(global.output, render::stderr_color()),
            timeout,
        }
    }
}

/// Streams a snapshot from a healthy member of `config`'s cluster and writes it age-encrypted to `target`
/// with its metadata beside it: `etcd snapshot`, and the snapshot every upgrade starts with.
pub(crate) async fn write_snapshot(
    repo: &Repo,
    config: &homelab_config::Config,
    talos: &Talos,
    events: homelab_engine::events::EventSink,
    target: SnapshotTarget<'_>,
) -> miette::Result<Snapshot> {
    let now = time::OffsetDateTime::now_utc();
    let mut writer = repo
        .snapshot_writer(target, &config.cluster.name, now)
        .map_err(|e| {
            miette!(
                help = "the snapshot is encrypted to the recipients .sops.yaml gives talos-secrets.enc.yaml",
                "{e}"
            )
        })?;
    let etcd = Etcd {
        config,
        credentials: &talos.credentials,
        events,
        timeout: Duration::ZERO,
    };
    let taken = etcd
        .snapshot(&mut writer)
        .await
        .map_err(|e| miette!("etcd snapshot: {e}"))?;
    writer
        .finish(SnapshotMeta {
            taken_at: String::new(),
            cluster: config.cluster.name.clone(),
            node: taken.node,
            talos_version: taken.talos_version,
            etcd_version: taken.etcd_version,
            size: 0,
            file: String::new(),
            recipients: Vec::new(),
        })
        .map_err(|e| miette!("{e}"))
}

fn snapshot(
    global: &Global,
    output: Option<&std::path::Path>,
    keep: Option<usize>,
) -> miette::Result<ExitStatus> {
    let site = site(global)?;
    let target = match output {
        Some(file) => SnapshotTarget::File(file),
        None => SnapshotTarget::Backups,
    };
    let snap = provision::runtime()?.block_on(write_snapshot(
        &site.repo,
        &site.config,
        &site.talos,
        render::events::sink(global.output, render::stderr_color()),
        target,
    ))?;
    let pruned = match keep {
        Some(n) => site.repo.prune_snapshots(n).map_err(|e| miette!("{e}"))?,
        None => Vec::new(),
    };
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "path": snap.path, "meta": snap.meta,
                "pruned": pruned.iter().map(|s| &s.path).collect::<Vec<_>>(),
            })
        ),
        OutputFormat::Text => {
            println!(
                "{}: etcd snapshot of {} from {} ({} bytes, age-encrypted to {} recipient(s))",
                shown(&snap.path).display(),
                snap.meta.cluster,
                snap.meta.node,
                snap.meta.size,
                snap.meta.recipients.len()
            );
            for p in &pruned {
                println!("pruned {}", shown(&p.path).display());
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// A path under the repository as the user would type it (`backups/…`, not `./backups/…`).
pub(crate) fn shown(path: &std::path::Path) -> &std::path::Path {
    path.strip_prefix(".").unwrap_or(path)
}

fn snapshots(global: &Global, keep: Option<usize>) -> miette::Result<ExitStatus> {
    let repo = Repo::open(&global.config).map_err(|e| miette!("{e}"))?;
    let pruned = match keep {
        Some(n) => repo.prune_snapshots(n).map_err(|e| miette!("{e}"))?,
        None => Vec::new(),
    };
    let list = repo.snapshots().map_err(|e| miette!("{e}"))?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "snapshots": list.iter().map(|s| serde_json::json!({"path": s.path, "meta": s.meta})).collect::<Vec<_>>(),
                "pruned": pruned.iter().map(|s| &s.path).collect::<Vec<_>>(),
            })
        ),
        OutputFormat::Text => {
            for p in &pruned {
                println!("pruned {}", shown(&p.path).display());
            }
            println!("{}", snapshot_table(&list));
        }
    }
    Ok(ExitStatus::Success)
}

fn snapshot_table(list: &[Snapshot]) -> String {
    let mut out =
        String::from("TAKEN                 CLUSTER       TALOS     ETCD    SIZE        FILE\n");
    for s in list {
        let m = &s.meta;
        out.push_str(&format!(
            "{:<21} {:<13} {:<9} {:<7} {:<11} {}\n",
            m.taken_at,
            m.cluster,
            m.talos_version,
            m.etcd_version,
            m.size,
            shown(&s.path).display()
        ));
    }
    out.trim_end().to_string()
}

fn members(global: &Global) -> miette::Result<ExitStatus> {
    let site = site(global)?;
    let members = provision::runtime()?
        .block_on(site.etcd(global, Duration::ZERO).members())
        .map_err(|e| miette!("etcd members: {e}"))?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&members).unwrap_or_default()
        ),
        OutputFormat::Text => println!("{}", member_table(&members)),
    }
    Ok(ExitStatus::Success)
}

fn member_table(members: &[Member]) -> String {
    let name = members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<16}  {:<name$}  {:<6}  {:<7}  PEER URLS\n",
        "ID", "NAME", "LEADER", "LEARNER"
    );
    for m in members {
        out.push_str(&format!(
            "{:016x}  {:<name$}  {:<6}  {:<7}  {}\n",
            m.id,
            m.name,
            if m.leader { "yes" } else { "no" },
            if m.learner { "yes" } else { "no" },
            m.peer_urls.join(",")
        ));
    }
    out.trim_end().to_string()
}

fn restore(
    global: &Global,
    file: &std::path::Path,
    yes: bool,
    timeout: Duration,
) -> miette::Result<ExitStatus> {
    let site = site(global)?;
    // Decrypt first: nothing is wiped unless the snapshot is readable.
    let snapshot = site.repo.read_snapshot(file).map_err(|e| miette!("{e}"))?;
    let question = format!(
        "Restoring etcd from {} wipes etcd's data on every control plane of `{}`; every change since the \
         snapshot is lost.",
        file.display(),
        site.config.cluster.name
    );
    if !confirm(&question, yes)? {
        return Ok(ExitStatus::Failure);
    }
    provision::runtime()?
        .block_on(site.etcd(global, timeout).restore(&snapshot))
        .map_err(|e| miette!("etcd restore: {e}"))?;
    if global.output == OutputFormat::Text {
        println!(
            "etcd of `{}` restored from {}",
            site.config.cluster.name,
            file.display()
        );
    }
    Ok(ExitStatus::Success)
}
