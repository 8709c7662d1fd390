//! One module per command: each turns parsed arguments into an exit code or a user-facing error.

pub mod talos;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Talos(args) => talos::run(args),
    }
}
