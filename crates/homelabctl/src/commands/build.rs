//! `homelabctl build DIR`: print the kustomize build of one directory exactly as `kustomize build` would.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, WrapErr};

/// Arguments of `homelabctl build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The kustomization directory to build.
    pub dir: PathBuf,
    /// Which files a kustomization may read (kustomize's --load-restrictor).
    #[arg(long, value_enum, default_value = "LoadRestrictionsRootOnly")]
    pub load_restrictor: Restrictor,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Restrictor {
    #[value(name = "LoadRestrictionsRootOnly")]
    RootOnly,
    #[value(name = "LoadRestrictionsNone")]
    None,
}

pub fn run(args: BuildArgs) -> miette::Result<ExitCode> {
    let opts = homelab_kustomize::Options {
        load_restrictor: match args.load_restrictor {
            Restrictor::RootOnly => homelab_kustomize::LoadRestrictor::RootOnly,
            Restrictor::None => homelab_kustomize::LoadRestrictor::None,
        },
    };
    let out = homelab_kustomize::build_dir(&args.dir, &opts)
        .and_then(|o| o.to_yaml())
        .map_err(|e| {
            miette::miette!(
                help = "fix the kustomization, or compare with `kubectl kustomize`",
                "{e}"
            )
        })
        .wrap_err(format!("building {}", args.dir.display()))?;
    std::io::stdout()
        .write_all(out.as_bytes())
        .into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}
