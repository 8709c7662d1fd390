//! The Flux tree's `Kustomization`s as the checks see them: the repository's manifests handed to
//! `homelab-kustomize-controller`, which owns what a Flux Kustomization is and how kustomize-controller
//! builds one.

use homelab_kustomize_controller::TreeDoc;
pub use homelab_kustomize_controller::{FluxBuild, FluxError, FluxKustomization};

use crate::repo::Repo;

/// The parsed documents of the Flux tree (`kubernetes/`), in file order.
fn tree_docs(repo: &Repo) -> Vec<TreeDoc<'_>> {
    repo.tree_files()
        .filter_map(|f| match &f.yaml {
            Some(Ok(docs)) => Some(docs.iter().map(|doc| TreeDoc { file: &f.rel, doc })),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every Flux Kustomization in the Flux tree, in file order.
pub fn discover(repo: &Repo) -> Vec<FluxKustomization> {
    homelab_kustomize_controller::discover(tree_docs(repo))
}

/// The kustomization kustomize-controller would build for `fk`.
pub fn kustomization_for(
    repo: &Repo,
    fk: &FluxKustomization,
) -> Result<homelab_kustomize::kustomization::Kustomization, FluxError> {
    homelab_kustomize_controller::kustomization_for(&repo.root, fk)
}

/// Builds `fk` like kustomize-controller, including postBuild substitution from the tree's ConfigMaps and
/// Secrets.
pub fn build(repo: &Repo, fk: &FluxKustomization) -> Result<FluxBuild, FluxError> {
    homelab_kustomize_controller::build(&repo.root, &tree_docs(repo), fk)
}
