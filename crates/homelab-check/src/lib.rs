//! Health checks of a homelab repository's GitOps side: Flux `Kustomization` emulation (building each
//! `spec.path` like kustomize-controller, with postBuild substitution), schema validation of every rendered
//! object (Kubernetes 1.35 local-strict and CRD schemas, kubeconform-style locations), and repository policy
//! (`.sops.yaml` coverage, no plaintext Secret under `kubernetes/`, a valid `homelab.yaml`).
//!
//! The kustomize build itself lives in `homelab-kustomize`, what a Flux Kustomization is and how
//! kustomize-controller builds one in `homelab-kustomize-controller`. This crate never prints: the binary renders a
//! [`Report`] with [`render`]. It does not decrypt SOPS files (the check is structural) nor scan for leaked
//! secrets (that checker comes from `homelab-scan` and plugs in through [`Checker`]).
//!
//! ```no_run
//! use homelab_check::{CheckOptions, Format, default_checkers, render, run};
//! let report = run(std::path::Path::new("."), &CheckOptions::default(), &default_checkers(), false)?;
//! print!("{}", render(&report, Format::Text));
//! # Ok::<(), std::io::Error>(())
//! ```

mod check;
mod finding;
pub mod flux;
mod locate;
pub mod repo;
pub mod schema;

pub use check::{
    CheckOptions, Checker, ConfigCheck, Context, FluxCheck, KustomizeCheck, PlaintextSecretCheck,
    SopsCheck, default_checkers, parallel_map, run,
};
pub use finding::{Finding, Format, Report, SchemaSummary, Severity, render};
pub use repo::Repo;
pub use schema::{
    MissingSchema, SchemaOptions, Validator, Verdict, crd_schemas, default_locations,
};
