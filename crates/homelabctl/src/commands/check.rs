//! `homelabctl check`: run the repository checkers and print their findings grouped by file.

use crate::ExitStatus;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use homelab_gitops::{
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
    /// Directory laid out like `../shared/schemas` (kubernetes/v1.35.0-local-strict, crd-jsonschemas/…).
    #[arg(long, env = "HOMELAB_SCHEMAS", value_name = "DIR")]
    pub schema_dir: Option<PathBuf>,
    /// kubeconform-style schema location (template with {{.ResourceKind}}, {{.Group}}, … or a directory);
    /// tried before the schema directory. Repeatable.
    #[arg(long, value_name = "TEMPLATE")]
    pub schema_location: Vec<String>,
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

fn schema_dir(args: &CheckArgs) -> Option<PathBuf> {
    if let Some(d) = &args.schema_dir {
        return Some(d.clone());
    }
    let shared = std::env::var_os("HOMELAB_SHARED").map(PathBuf::from);
    [
        shared.map(|s| s.join("schemas")),
        Some(args.dir.join("../shared/schemas")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("kubernetes").is_dir())
}

pub fn run(global: &super::Global, args: CheckArgs) -> miette::Result<ExitStatus> {
    let mut locations = args.schema_location.clone();
    if let Some(d) = schema_dir(&args) {
        locations.extend(default_locations(&d));
    }
    let opts = CheckOptions {
        load_restrictor: args.load_restrictor.into(),
        schema: SchemaOptions {
            locations,
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
    let report = homelab_gitops::run(&args.dir, &opts, &checkers, args.fast)
        .into_diagnostic()
        .wrap_err(format!("reading the repository at {}", args.dir.display()))?;
    let format = match global.format {
        crate::cli::Format::Text => Format::Text,
        crate::cli::Format::Json => Format::Json,
        crate::cli::Format::Sarif => Format::Sarif,
    };
    crate::out::bytes(render(&report, format).as_bytes())?;
    Ok(if report.errors() > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
