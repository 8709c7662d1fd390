//! One module per command: each turns parsed arguments into an exit code or a user-facing error.

pub mod scan;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
    }
}
