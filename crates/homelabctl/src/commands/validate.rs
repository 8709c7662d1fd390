//! `homelabctl validate`: report every problem in homelab.yaml with its position and a hint.

use crate::ExitStatus;

use homelab_config::{LoadError, Severity};

use super::Global;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::render;

pub fn run(global: &Global, args: &ValidateArgs) -> miette::Result<ExitStatus> {
    let file = global.config.display().to_string();
    let (source, diagnostics) = match homelab_config::load(&global.config) {
        Ok(loaded) => (
            std::fs::read_to_string(&global.config).unwrap_or_default(),
            loaded.warnings,
        ),
        Err(LoadError::Invalid {
            source_text,
            diagnostics,
            ..
        }) => (source_text, diagnostics),
        Err(e @ LoadError::Read { .. }) => {
            return Err(crate::failure::failure_help(
                e,
                "run `homelabctl init` to create one, or pass --config FILE",
            ));
        }
    };
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let failed = errors > 0 || (args.strict && warnings > 0);
    match global.output {
        OutputFormat::Json => outln!("{}", render::diagnostics_json(&file, &diagnostics))?,
        OutputFormat::Text => {
            eprint!(
                "{}",
                render::diagnostics_text(&file, &source, &diagnostics, render::stderr_color())
            );
            if failed {
                eprintln!("{file}: {errors} error(s), {warnings} warning(s)");
            } else {
                outln!("{file} is valid ({warnings} warning(s))")?;
            }
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
