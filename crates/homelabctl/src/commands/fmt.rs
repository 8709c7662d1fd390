//! `homelabctl fmt`: rewrite homelab.yaml in the canonical layout, or with `--check` only report.

use crate::ExitStatus;

use miette::{IntoDiagnostic, WrapErr, miette};

use super::Global;
use crate::cli::FmtArgs;
use crate::fsx;

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
    let mode = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o644);
    fsx::write_atomic(path, formatted.as_bytes(), mode)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    outln!("formatted {}", path.display())?;
    Ok(ExitStatus::Success)
}
