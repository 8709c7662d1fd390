//! One module per command: each turns parsed arguments into an exit code or a user-facing error.

pub mod apply;
pub mod build;
pub mod check;
mod check_secrets;
pub mod config;
pub mod demo;
pub mod destroy;
pub mod doctor;
pub mod etcd;
pub mod flux;
pub mod flux_tree;
mod fmt;
pub mod hooks;
pub mod import;
mod init;
pub mod output;
pub mod plan;
mod provision;
pub mod replace;
pub mod scan;
mod schema;
pub mod secrets;
pub mod setup;
pub mod sim;
pub mod sops;
pub mod status;
pub mod talos;
mod validate;

use miette::miette;

use crate::ExitStatus;
use crate::cli::{Cli, Command, Format, OutputFormat};

pub fn run(cli: Cli) -> miette::Result<ExitStatus> {
    if cli.format == Format::Sarif && !matches!(cli.command, Command::Scan(_) | Command::Check(_)) {
        return Ok(usage_error(miette!(
            help = "use --format text or --format json; SARIF reports findings, which only `scan` and `check` have",
            "--format sarif is offered by `scan` and `check` only"
        )));
    }
    let global = Global {
        config: cli.config,
        output: match cli.format {
            Format::Json => OutputFormat::Json,
            Format::Text | Format::Sarif => OutputFormat::Text,
        },
        format: cli.format,
    };
    match cli.command {
        Command::Plan(args) => plan::run(&global, &args),
        Command::Apply(args) => apply::run(&global, &args),
        Command::Destroy(args) => destroy::run(&global, &args),
        Command::Replace(args) => replace::run(&global, &args),
        Command::Status(args) => status::run(&global, &args),
        Command::Etcd(args) => etcd::run(&global, &args),
        Command::Demo(args) => demo::run(&global, &args),
        Command::Validate(args) => validate::run(&global, &args),
        Command::Init(args) => init::run(&global, &args),
        Command::Fmt(args) => fmt::run(&global, &args),
        Command::Schema(args) => schema::run(&args),
        Command::Talos(args) => talos::run(&global, args),
        Command::Gitops(args) => flux_tree::run(&global, &args),
        Command::Flux(args) => flux::run(&global, &args),
        Command::Sops(args) => sops::run(&global, args),
        Command::Build(args) => build::run(args),
        Command::Check(args) => check::run(&global, args),
        Command::Scan(args) => scan::run(&global, args),
        Command::Hooks(args) => hooks::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Config(args) => config::run(&global, &args),
        Command::Doctor(args) => doctor::run(&global, &args),
        Command::Sim(args) => sim::run(&global, &args),
        Command::Output(args) => output::run(&global, &args),
        Command::Secrets(args) => secrets::run(&global, &args),
        Command::Import(args) => import::run(&global, &args),
    }
}

/// A command line clap accepts but that makes no sense (a wrong combination of arguments): printed like any
/// error, with the exit status of clap's own usage errors.
fn usage_error(report: miette::Report) -> ExitStatus {
    eprintln!("{report:?}");
    ExitStatus::Usage
}

/// Options every command sees.
pub struct Global {
    /// homelab.yaml (`--config`).
    pub config: std::path::PathBuf,
    /// The output format (`--format`) of commands without findings.
    pub output: OutputFormat,
    /// `--format` as given, SARIF included (`scan`, `check`).
    pub format: Format,
}
