//! `homelabctl fmt`: rewrite homelab.yaml in the canonical layout, or with `--check` only report.

use crate::ExitStatus;

use homelab_fs::Mode;
use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;
use crate::cli::FmtArgs;

pub fn run(global: &Global, args: &FmtArgs) -> miette::Result<ExitStatus> {
    let path = args.file.as_ref().unwrap_or(&global.config);
    let source = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let formatted = homelab_config::format::format(&source).map_err(|e| {
        miette!(
            help = "fix the file first (`homelabctl validate` shows where)",
            "cannot format {}: {e}",
            path.display()
        )
    })?;
    if formatted == source {
        return Ok(ExitStatus::Success);
    }
    if args.check {
        eprintln!("{} is not formatted; run `homelabctl fmt`:", path.display());
        eprint!(
            "{}",
            homelab_engine::plan::line_diff(&source, &formatted).unwrap_or_default()
        );
        return Ok(ExitStatus::Failure);
    }
    homelab_fs::write(path, formatted.as_bytes(), Mode::KeepOr(0o644))
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    outln!("formatted {}", path.display())?;
    Ok(ExitStatus::Success)
}
