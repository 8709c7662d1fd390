//! `homelabctl`: the binary. Parses arguments, runs one command, renders its result or error.
//!
//! Exit codes: 0 success; 1 failure (invalid input, findings, an operation that failed);
//! 2 usage errors (from clap) and, for `plan --detailed-exitcode`, "changes pending".

mod cli;
mod commands;
mod fsx;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One crypto backend (ring) for every TLS user in the process; reqwest and tonic need it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
