//! `homelabctl build DIR`: print the kustomize build of one directory exactly as `kustomize build` would.

use crate::ExitStatus;
use crate::failure::failure;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use miette::{IntoDiagnostic, WrapErr};

/// Arguments of `homelabctl build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The kustomization directory to build (with --flux: the repository root).
    pub dir: PathBuf,
    /// Build this Flux Kustomization (`name` or `namespace/name`) the way kustomize-controller does,
    /// with postBuild substitution.
    #[arg(long, value_name = "NAME")]
    pub flux: Option<String>,
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

impl From<Restrictor> for homelab_kustomize::LoadRestrictor {
    fn from(r: Restrictor) -> Self {
        match r {
            Restrictor::RootOnly => homelab_kustomize::LoadRestrictor::RootOnly,
            Restrictor::None => homelab_kustomize::LoadRestrictor::None,
        }
    }
}

fn build_flux(args: &BuildArgs, name: &str) -> miette::Result<String> {
    let repo = homelab_check::Repo::open(&args.dir)
        .into_diagnostic()
        .wrap_err(format!("reading {}", args.dir.display()))?;
    let all = homelab_check::flux::discover(&repo);
    let (ns, n) = name
        .split_once('/')
        .map_or((None, name), |(a, b)| (Some(a), b));
    let matches: Vec<_> = all
        .iter()
        .filter(|k| k.name == n && ns.is_none_or(|ns| k.namespace == ns))
        .collect();
    let fk = match matches.as_slice() {
        [one] => *one,
        [] => {
            let names: Vec<String> = all
                .iter()
                .map(|k| format!("{}/{}", k.namespace, k.name))
                .collect();
            return Err(miette::miette!(
                help = format!(
                    "known: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
                "no Flux Kustomization named {name:?} under {}/kubernetes",
                args.dir.display()
            ));
        }
        _ => {
            return Err(miette::miette!(
                help = "use namespace/name",
                "several Flux Kustomizations are named {name:?}"
            ));
        }
    };
    let b = homelab_check::flux::build(&repo, fk)
        .map_err(failure)
        .wrap_err(format!(
            "building Flux Kustomization {}/{} ({}:{})",
            fk.namespace, fk.name, fk.file, fk.line
        ))?;
    for n in &b.notes {
        eprintln!("note: {n}");
    }
    b.output.to_yaml().map_err(failure)
}

pub fn run(args: BuildArgs) -> miette::Result<ExitStatus> {
    if let Some(name) = args.flux.clone() {
        let out = build_flux(&args, &name)?;
        crate::out::bytes(out.as_bytes())?;
        return Ok(ExitStatus::Success);
    }
    let opts = homelab_kustomize::Options {
        load_restrictor: args.load_restrictor.into(),
    };
    let out = homelab_kustomize::build_dir(&args.dir, &opts)
        .and_then(|o| o.to_yaml())
        .map_err(|e| {
            crate::failure::failure_help(
                e,
                "fix the kustomization, or compare with `kubectl kustomize`",
            )
        })
        .wrap_err(format!("building {}", args.dir.display()))?;
    crate::out::bytes(out.as_bytes())?;
    Ok(ExitStatus::Success)
}
