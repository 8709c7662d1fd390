//! `homelabctl check`: run the repository checkers and print their findings grouped by file.

use crate::ExitStatus;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use homelab_check::{
    CheckOptions, Format, MissingSchema, SchemaOptions, default_checkers, default_locations, render,
};
use miette::{IntoDiagnostic, WrapErr};

use super::build::Restrictor;

/// Arguments of `homelabctl check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Repository root.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Only the fast checks (the pre-commit subset): no Flux builds, no schema validation.
    #[arg(long)]
    pub fast: bool,
    /// Extra schema directory, used before the built-in schemas: kubeconform's layout
    /// (kubernetes/v1.35.0-local-strict/…), the CRDs-catalog layout ({group}/{kind}_{version}.json), or
    /// plain schema files. Repeatable.
    #[arg(long, env = "HOMELAB_SCHEMAS", value_name = "DIR")]
    pub schema_dir: Vec<PathBuf>,
    /// Extra kubeconform-style schema location (a template with {{.ResourceKind}}, {{.Group}},
    /// {{.ResourceAPIVersion}}, … or a directory), used before the built-in schemas. Repeatable.
    #[arg(long, value_name = "TEMPLATE")]
    pub schema_location: Vec<String>,
    /// Validate only against --schema-location/--schema-dir and the tree's CRDs, not the built-in schemas.
    #[arg(long)]
    pub no_builtin_schemas: bool,
    /// What an object without a schema is.
    #[arg(long, value_enum, default_value_t = Missing::Warn)]
    pub missing_schemas: Missing,
    /// Do not validate this kind (`Kind` or `group/version/Kind`). Repeatable.
    #[arg(long, value_name = "KIND")]
    pub skip_kind: Vec<String>,
    /// Restrictor for the plain build of each kustomization directory.
    #[arg(long, value_enum, default_value = "LoadRestrictionsRootOnly")]
    pub load_restrictor: Restrictor,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Missing {
    Error,
    Warn,
    Ignore,
}

pub fn run(global: &super::Global, args: CheckArgs) -> miette::Result<ExitStatus> {
    // The user's locations come first; the tree's CRDs and the built-in schemas follow (in the validator).
    let mut locations = args.schema_location.clone();
    for d in &args.schema_dir {
        locations.extend(default_locations(d));
    }
    let opts = CheckOptions {
        load_restrictor: args.load_restrictor.into(),
        schema: SchemaOptions {
            locations,
            builtin: !args.no_builtin_schemas,
            missing: match args.missing_schemas {
                Missing::Error => MissingSchema::Error,
                Missing::Warn => MissingSchema::Warn,
                Missing::Ignore => MissingSchema::Ignore,
            },
            skip: args.skip_kind.clone(),
            ..SchemaOptions::default()
        },
    };
    let mut checkers = default_checkers();
    checkers.push(Box::new(super::check_secrets::SecretScan));
    let report = homelab_check::run(&args.dir, &opts, &checkers, args.fast)
        .into_diagnostic()
        .wrap_err(format!("reading the repository at {}", args.dir.display()))?;
    let format = match global.format {
        crate::cli::Format::Text => Format::Text,
        crate::cli::Format::Json => Format::Json,
        crate::cli::Format::Sarif => Format::Sarif,
    };
    crate::out::bytes(render(&report, format).as_bytes())?;
    // A check that found nothing to look at must not read as a pass (a CI step run in the wrong directory).
    // The pre-commit subset (`--fast`) only notes it: a commit in a repository with no files yet (an initial
    // empty commit) has nothing to block.
    if let Some(why) = nothing_to_check(report.files) {
        if args.fast {
            eprintln!("note: nothing to check in {}: {why}", args.dir.display());
            return Ok(ExitStatus::Success);
        }
        return Err(miette::miette!(
            help = "run it in the repository root or pass --dir; `homelabctl init DIR` creates a repository",
            "nothing to check in {}: {why}",
            args.dir.display()
        ));
    }
    Ok(if report.errors() > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Why `dir` holds nothing `check` is for, if so: no files at all (after `.gitignore`). A directory with
/// files but no homelab.yaml or Flux tree still gets the secret scan, and the report says which checks
/// were skipped.
fn nothing_to_check(files: usize) -> Option<&'static str> {
    (files == 0).then_some("it has no files (or .gitignore ignores all of them)")
}
