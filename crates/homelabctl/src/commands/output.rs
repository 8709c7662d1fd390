//! `homelabctl output [vm_id|talosconfig|kubeconfig]`: the cluster's outputs, like `terraform output`.
//!
//! Secret outputs never reach a terminal by accident: the list shows them as `<sensitive>`, and
//! `output talosconfig|kubeconfig` prints the file only when standard output is not a terminal (a pipe or a
//! redirect: `homelabctl output kubeconfig > ~/.kube/config`) or with `--reveal`.

use crate::ExitStatus;
use std::io::IsTerminal as _;

use clap::{Args, ValueEnum};
use homelab_repo::{OutputName, TALOS_SECRETS_FILE};
use miette::miette;

use super::Global;
use super::config::{open, repo_err};
use crate::cli::OutputFormat;

/// Show the cluster's outputs: VM ids, talosconfig, kubeconfig (secret ones only off a terminal or with
/// --reveal).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The output to print; without it, a table of every output (secret ones shown as `<sensitive>`).
    #[arg(value_enum)]
    pub name: Option<Name>,
    /// Print a secret output even when standard output is a terminal.
    #[arg(long)]
    pub reveal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Name {
    /// The Proxmox VM id of each node (one number for a single node; `name<TAB>id` lines for several).
    #[value(name = "vm_id", alias = "vm-id")]
    VmId,
    /// The talosctl configuration (secret).
    Talosconfig,
    /// The admin kubeconfig (secret).
    Kubeconfig,
}

pub fn run(global: &Global, args: &OutputArgs) -> miette::Result<ExitStatus> {
    let (repo, config) = open(global)?;
    let vm_ids: Vec<(String, u32)> = config
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.vm_id))
        .collect();
    let vm_ids_json = serde_json::Value::Object(
        vm_ids
            .iter()
            .map(|(n, id)| (n.clone(), serde_json::json!(id)))
            .collect(),
    );
    let secret = match args.name {
        None => {
            let have_bundle = repo.path(TALOS_SECRETS_FILE).exists();
            list(global, &vm_ids, vm_ids_json, have_bundle)?;
            return Ok(ExitStatus::Success);
        }
        Some(Name::VmId) => {
            match global.output {
                OutputFormat::Json => outln!("{vm_ids_json}")?,
                OutputFormat::Text => match vm_ids.as_slice() {
                    [(_, id)] => outln!("{id}")?,
                    many => {
                        for (n, id) in many {
                            outln!("{n}\t{id}")?;
                        }
                    }
                },
            }
            return Ok(ExitStatus::Success);
        }
        Some(Name::Talosconfig) => OutputName::Talosconfig,
        Some(Name::Kubeconfig) => OutputName::Kubeconfig,
    };
    if std::io::stdout().is_terminal() && !args.reveal {
        return Err(miette!(
            help = format!(
                "use `homelabctl config decrypt` (writes ./{0} with mode 0600), pipe or redirect it \
                 (`homelabctl output {0} > FILE`), or pass --reveal to show it here",
                secret.as_str()
            ),
            "{} is secret and standard output is a terminal: not printed",
            secret.as_str()
        ));
    }
    let bundle = repo.talos_bundle_required().map_err(repo_err)?;
    let outputs = repo.outputs(&config, &bundle).map_err(repo_err)?;
    let text = outputs.get(secret);
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::json!({ secret.as_str(): text }))?,
        OutputFormat::Text => out!("{text}")?,
    }
    Ok(ExitStatus::Success)
}

fn list(
    global: &Global,
    vm_ids: &[(String, u32)],
    vm_ids_json: serde_json::Value,
    have_bundle: bool,
) -> Result<(), crate::out::WriteError> {
    let secret_value = if have_bundle {
        "<sensitive>"
    } else {
        "(none yet: `homelabctl apply` creates the cluster's secrets)"
    };
    match global.output {
        OutputFormat::Json => {
            let secret = serde_json::json!({ "sensitive": true, "available": have_bundle });
            outln!(
                "{}",
                serde_json::json!({
                    "vm_id": { "sensitive": false, "value": vm_ids_json },
                    "talosconfig": secret,
                    "kubeconfig": secret,
                })
            )?;
        }
        OutputFormat::Text => {
            let ids = match vm_ids {
                [(_, id)] => id.to_string(),
                many => many
                    .iter()
                    .map(|(n, id)| format!("{n}={id}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            outln!("{:<12} {ids}", "vm_id")?;
            outln!("{:<12} {secret_value}", "talosconfig")?;
            outln!("{:<12} {secret_value}", "kubeconfig")?;
        }
    }
    Ok(())
}
