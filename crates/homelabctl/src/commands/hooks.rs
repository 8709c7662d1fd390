//! `homelabctl hooks install` and `homelabctl hooks commit-msg FILE`.

use crate::ExitStatus;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use homelab_workstation::commit_msg;
use homelab_workstation::hooks::{self, Foreign, Installed};
use miette::{IntoDiagnostic, WrapErr};

#[derive(Debug, Args)]
pub struct HooksArgs {
    #[command(subcommand)]
    pub command: HooksCommand,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the pre-commit (fast check + scan of staged content) and commit-msg (Conventional Commits)
    /// hooks where git looks for them (`core.hooksPath` honoured). Running it again is harmless.
    Install(InstallArgs),
    /// Check a commit message file against Conventional Commits 1.0 (what the commit-msg hook runs).
    CommitMsg {
        /// The message file git passes to the hook (`.git/COMMIT_EDITMSG`).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Repository to install into.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Keep an existing hook homelabctl did not write and run it first.
    #[arg(long, conflicts_with = "force")]
    pub chain: bool,
    /// Replace an existing hook homelabctl did not write (it is moved to `<hook>.homelabctl-backup`).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: HooksArgs) -> miette::Result<ExitStatus> {
    match args.command {
        HooksCommand::Install(a) => {
            let foreign = if a.chain {
                Foreign::Chain
            } else if a.force {
                Foreign::Replace
            } else {
                Foreign::Refuse
            };
            for line in install(&a.dir, foreign)? {
                eprintln!("{line}");
            }
            Ok(ExitStatus::Success)
        }
        HooksCommand::CommitMsg { file } => commit_msg_check(&file),
    }
}

/// Installs the hooks and describes what happened, one line per hook.
pub fn install(dir: &Path, foreign: Foreign) -> miette::Result<Vec<String>> {
    let exe = std::env::current_exe()
        .into_diagnostic()
        .wrap_err("cannot locate the homelabctl executable")?;
    let outcomes = hooks::install(dir, &exe, foreign).map_err(|e| {
        let hint = e.hint();
        crate::failure::failure_help(e, hint)
    })?;
    Ok(outcomes
        .iter()
        .map(|o| match o {
            Installed::Created(p) => format!("installed {}", p.display()),
            Installed::Updated(p) => format!("updated {}", p.display()),
            Installed::Unchanged(p) => format!("already installed: {}", p.display()),
            Installed::Chained(p, prev) => format!(
                "installed {} (runs the previous hook, now {}, first)",
                p.display(),
                prev.display()
            ),
            Installed::Replaced(p, backup) => format!(
                "installed {} (the previous hook is kept as {})",
                p.display(),
                backup.display()
            ),
        })
        .collect())
}

fn commit_msg_check(file: &Path) -> miette::Result<ExitStatus> {
    let raw = std::fs::read_to_string(file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read commit message file {}", file.display()))?;
    let message = commit_msg::clean(&raw, comment_char(file));
    match commit_msg::check(&message) {
        Ok(_) => Ok(ExitStatus::Success),
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "  (your message is kept in {}; `git commit -e -F {}` edits it again)",
                file.display(),
                file.display()
            );
            Ok(ExitStatus::Failure)
        }
    }
}

/// git's `core.commentChar` for the repository holding `file` (`#` unless configured).
fn comment_char(file: &Path) -> char {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "--get", "core.commentChar"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        // `auto` makes git pick a character per message; `#` is its first choice.
        .filter(|s| s.trim() != "auto")
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('#')
}
