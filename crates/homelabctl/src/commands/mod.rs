//! One module per command: each turns parsed arguments into an exit code or a user-facing error.

use std::process::ExitCode;

pub mod build;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(args),
    }
}
