//! What Flux's kustomize-controller knows about a Flux `Kustomization` (kustomize.toolkit.fluxcd.io), in one
//! place: its API version, kind and spec fields, read from the repository and written into the sync
//! objects ([`Spec`]); and building one as the controller does ([`build`]: the generated or extended
//! kustomization, LoadRestrictionsNone, then postBuild substitution with fluxcd/pkg/envsubst's rules).
//!
//! `homelab-check` calls it to check the tree, `homelab-flux` to write the Kustomizations it generates, and
//! the binary's `build --flux`. The kustomize build itself is `homelab-kustomize`'s; this crate never
//! touches a cluster.

mod build;
pub mod envsubst;
mod spec;

pub use build::{FluxBuild, FluxKustomization, TreeDoc, build, discover, kustomization_for};
pub use spec::{
    API_GROUP, API_VERSION, Decryption, KIND, Patch, PostBuild, SUBSTITUTE_KEY, SourceRef, Spec,
    SubstituteFrom, is_flux_kustomization,
};

/// Why a Flux Kustomization cannot be read or built.
#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Kustomize(#[from] homelab_kustomize::Error),
}
