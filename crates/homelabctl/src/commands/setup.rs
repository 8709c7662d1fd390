//! `homelabctl setup`: first-time set-up of an operator's machine and checkout: an age identity in the
//! standard place, the git hooks, and `doctor` against the Proxmox the checkout's homelab.yaml names.

use crate::ExitStatus;
use std::path::{Path, PathBuf};

use clap::Args;
use homelab_workstation::hooks::Foreign;
use homelab_workstation::identity::{self, Identity};

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The repository checkout to set up.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Keep existing git hooks homelabctl did not write and run them first.
    #[arg(long, conflicts_with = "force")]
    pub chain: bool,
    /// Replace existing git hooks homelabctl did not write (they are kept as `<hook>.homelabctl-backup`).
    #[arg(long)]
    pub force: bool,
    /// Do not run `doctor` (e.g. when the Proxmox host is not reachable from here yet).
    #[arg(long)]
    pub skip_doctor: bool,
}

pub fn run(args: SetupArgs) -> miette::Result<ExitStatus> {
    // Where sops reads the operator's own key: SOPS_AGE_KEY_FILE, else its default keys.txt.
    let key_file = homelab_sops::personal_key_file().map_err(crate::failure::failure)?;
    let id = identity::ensure(&key_file).map_err(|e| {
        crate::failure::failure_help(
            e,
            "set SOPS_AGE_KEY_FILE to an identity file, or fix the file named above",
        )
    })?;
    match &id {
        Identity::Created { path, .. } => eprintln!(
            "created age identity {} (mode 0600; back it up)",
            path.display()
        ),
        Identity::Existing { path, .. } => {
            eprintln!("age identity {} already exists", path.display())
        }
    }
    outln!("{}", id.public_key())?;

    let foreign = if args.chain {
        Foreign::Chain
    } else if args.force {
        Foreign::Replace
    } else {
        Foreign::Refuse
    };
    match homelab_workstation::hooks::hooks_dir(&args.dir) {
        Ok(_) => {
            for line in super::hooks::install(&args.dir, foreign)? {
                eprintln!("{line}");
            }
        }
        Err(e) => eprintln!("git hooks not installed: {e}"),
    }
    if args.skip_doctor {
        return Ok(ExitStatus::Success);
    }
    doctor(&args.dir)
}

/// Runs `doctor` when the checkout has a homelab.yaml; its lines go to stderr so stdout stays the public key.
fn doctor(dir: &Path) -> miette::Result<ExitStatus> {
    let config = dir.join(homelab_config::FILE_NAME);
    if !config.is_file() {
        eprintln!(
            "doctor skipped: no {} in {} (create one with `homelabctl init`, then run `homelabctl doctor`)",
            homelab_config::FILE_NAME,
            dir.display()
        );
        return Ok(ExitStatus::Success);
    }
    eprintln!("==> homelabctl doctor ({})", config.display());
    let report = super::doctor::examine(&config)?;
    super::doctor::print_text(&report, &mut std::io::stderr().lock());
    Ok(if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
