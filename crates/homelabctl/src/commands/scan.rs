//! `homelabctl scan`: secret scanning of the working tree, git history or staged changes.

use crate::ExitStatus;
use std::path::PathBuf;

use clap::Args;
use homelab_scan::report::{self, Format};
use homelab_scan::{Baseline, Options, ScanRequest, Source};
use miette::{IntoDiagnostic, WrapErr};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Repository or directory to scan.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Scan the added lines of every commit on every ref instead of the working tree.
    #[arg(long, conflicts_with_all = ["no_git", "staged"])]
    pub history: bool,
    /// Scan every file under PATH without consulting git (.gitignore is not applied).
    #[arg(long, conflicts_with = "staged")]
    pub no_git: bool,
    /// Scan only the staged changes (what the pre-commit hook runs).
    #[arg(long)]
    pub staged: bool,
    /// A gitleaks.toml to use instead of `PATH/.gitleaks.toml` or the built-in rules. (`--config` is
    /// homelab.yaml everywhere, so it cannot name this file.)
    #[arg(long, value_name = "FILE")]
    pub gitleaks_config: Option<PathBuf>,
    /// Accepted findings: fingerprints (file:rule:line, commit:file:rule:line) or a JSON report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the fingerprints of the current findings to FILE (a baseline) and exit 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Report findings on lines marked `gitleaks:allow` / `homelabctl:allow` too.
    #[arg(long)]
    pub ignore_allow_comments: bool,
    /// Decode base64, hex, percent and unicode-escaped text and rescan it, up to this many nested levels
    /// (gitleaks' `--max-decode-depth`; 0 turns decoding off).
    #[arg(long, value_name = "N", default_value_t = homelab_scan::DEFAULT_MAX_DECODE_DEPTH)]
    pub max_decode_depth: usize,
}

pub fn run(global: &super::Global, args: ScanArgs) -> miette::Result<ExitStatus> {
    if global.config.extension().is_some_and(|e| e == "toml") {
        // `--config` used to double as the gitleaks configuration; say where that option went.
        return Ok(super::usage_error(miette::miette!(
            help = format!("use --gitleaks-config {}", global.config.display()),
            "--config names homelab.yaml, not a gitleaks configuration"
        )));
    }
    let config = args.gitleaks_config;
    let source = if args.history {
        Source::History
    } else if args.staged {
        Source::Staged
    } else if args.no_git {
        Source::Directory
    } else {
        Source::Tree
    };
    let request = ScanRequest {
        root: args.path,
        source,
        config,
        baseline: args.baseline,
        options: Options {
            allow_comments: !args.ignore_allow_comments,
            max_decode_depth: args.max_decode_depth,
            ..Options::default()
        },
    };
    let outcome = homelab_scan::scan(&request).map_err(|e| {
        let hint = e.hint();
        crate::failure::failure_help(e, hint)
    })?;
    if let Some(path) = args.write_baseline {
        std::fs::write(&path, Baseline::render(&outcome.findings))
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write baseline {}", path.display()))?;
        eprintln!(
            "wrote {} fingerprint(s) to {}",
            outcome.findings.len(),
            path.display()
        );
        return Ok(ExitStatus::Success);
    }
    let format = match global.format {
        crate::cli::Format::Text => Format::Text,
        crate::cli::Format::Json => Format::Json,
        crate::cli::Format::Sarif => Format::Sarif,
    };
    out!(
        "{}",
        report::render(
            format,
            &outcome.findings,
            &outcome.config,
            outcome.scanned,
            outcome.accepted
        )
    )?;
    let status = if outcome.findings.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    // The process ends with this command: freeing the compiled rules and their matchers' caches (tens of
    // MB after a history scan) would only delay the exit.
    std::mem::forget(outcome);
    Ok(status)
}
