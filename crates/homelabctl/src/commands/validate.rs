//! `homelabctl validate`: report every problem in homelab.yaml with its position and a hint.

use crate::ExitStatus;

use homelab_config::{LoadError, Severity};

use super::Global;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::render;

pub fn run(global: &Global, args: &ValidateArgs) -> miette::Result<ExitStatus> {
    let file = global.config.display().to_string();
    let (source, diagnostics) = match homelab_config::load(&global.config) {
        Ok(loaded) => {
            let mut diagnostics = loaded.warnings;
            diagnostics.extend(patch_diagnostics(&global.config, &loaded.config));
            (
                std::fs::read_to_string(&global.config).unwrap_or_default(),
                diagnostics,
            )
        }
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

/// The user's Talos patches, applied to each node's rendered config and checked against the Talos schema
/// (placeholder secrets: nothing secret is needed or shown).
fn patch_diagnostics(
    config_path: &std::path::Path,
    config: &homelab_config::Config,
) -> Vec<homelab_config::Diagnostic> {
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    homelab_engine::talos_render::validate_patches(config, base)
        .into_iter()
        .map(|(i, failure)| {
            let d = homelab_config::Diagnostic::error(format!("nodes[{i}]"), failure.message)
                .with_hint(
                    "patches apply in order: cluster.patches, cluster.role_patches, nodes[].patches",
                );
            // An inline patch's line is a homelab.yaml line: point the report there.
            match failure.location {
                Some((file, line)) if file == homelab_config::FILE_NAME && line > 0 => {
                    d.at(Some(homelab_config::Span { line, column: 1 }))
                }
                _ => d,
            }
        })
        .collect()
}
