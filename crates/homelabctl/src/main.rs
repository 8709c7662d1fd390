//! `homelabctl`: the binary. Parses arguments, runs one command, renders its result or error, and maps the
//! outcome to an exit status ([`ExitStatus`], the one table of codes).

#[macro_use]
mod out;
mod cli;
mod commands;
mod duration;
mod failure;
mod render;

use std::process::ExitCode;

use clap::Parser;

/// How a run ended. The only place exit codes are chosen; README.md and `--help` carry the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; nothing to report.
    Success,
    /// 1: a failure, findings, an invalid file, or a refused confirmation.
    Failure,
    /// 2: `plan --detailed-exitcode` found changes to apply (as `terraform plan -detailed-exitcode`).
    Changes,
    /// 64 (EX_USAGE of sysexits.h): the command line itself is wrong: an unknown flag, a missing argument.
    /// Kept apart from 2 so a typo in CI never reads as "changes present".
    Usage,
    /// 128 + N: the command stopped on signal N after cleaning up (`sops edit` on SIGTERM, SIGINT, SIGHUP),
    /// the status a shell gives a process that signal killed.
    Signalled(u8),
}

impl ExitStatus {
    /// The process exit code of this status.
    pub const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Usage => 64,
            ExitStatus::Signalled(signal) => 128u8.saturating_add(signal),
        }
    }

    /// Success when `ok`, else Failure.
    pub const fn from_ok(ok: bool) -> Self {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

fn main() -> ExitCode {
    // One crypto backend (ring) for every TLS user in the process; reqwest and tonic need it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are answers (stdout, 0); anything else is a usage error (stderr, 64).
            let status = if e.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            let _ = e.print();
            return status.into();
        }
    };
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(report) => {
            eprintln!("{report:?}");
            ExitStatus::Failure.into()
        }
    }
}
