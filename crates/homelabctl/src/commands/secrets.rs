//! `homelabctl secrets set-proxmox-token`: store the Proxmox API token secret in `secrets.enc.yaml`
//! (encrypted through `.sops.yaml`), read from standard input so it never appears in argv or shell history.

use crate::ExitStatus;
use std::io::{BufRead as _, IsTerminal as _};

use clap::{Args, Subcommand};
use homelab_repo::{Repo, SECRETS_FILE};
use miette::miette;
use zeroize::Zeroizing;

use super::Global;
use super::config::repo_err;

/// The repository's secrets (secrets.enc.yaml).
#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store the Proxmox API token secret (the UUID shown once when the token is created) as
    /// `proxmox.token_secret` in secrets.enc.yaml, creating or updating the file encrypted. The secret is read
    /// from standard input (typed without echo on a terminal, or piped), never from the command line.
    /// HOMELAB_PROXMOX_TOKEN_SECRET, when set, overrides the stored value at run time.
    SetProxmoxToken,
}

pub fn run(global: &Global, args: &SecretsArgs) -> miette::Result<ExitStatus> {
    match args.command {
        SecretsCommand::SetProxmoxToken => set_proxmox_token(global),
    }
}

fn set_proxmox_token(global: &Global) -> miette::Result<ExitStatus> {
    let repo = Repo::open(&global.config).map_err(repo_err)?;
    let secret = read_secret_line("Proxmox API token secret: ")?;
    repo.set_proxmox_token_secret(&secret).map_err(repo_err)?;
    eprintln!(
        "{}: proxmox.token_secret stored (encrypted)",
        repo.path(SECRETS_FILE).display()
    );
    Ok(ExitStatus::Success)
}

/// One line from standard input; on a terminal, prompts on standard error and turns echo off meanwhile.
fn read_secret_line(prompt: &str) -> miette::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        stty(&["-echo"]);
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    if tty {
        stty(&["echo"]);
        eprintln!();
    }
    match read {
        Ok(0) => Err(miette!(
            help =
                "pipe it in, e.g. `pass show proxmox/token | homelabctl secrets set-proxmox-token`",
            "no token secret on standard input"
        )),
        Ok(_) => Ok(line),
        Err(e) => Err(miette!("reading standard input: {e}")),
    }
}

/// Runs `stty` on the terminal that is standard input (best effort: without it, input is echoed).
fn stty(args: &[&str]) {
    let _ = std::process::Command::new("stty")
        .args(args)
        .stdin(std::process::Stdio::inherit())
        .status();
}
