//! The Flux GitOps tree of a homelab repository, generated from `homelab.yaml`: the root kustomization that
//! scopes the `flux-system` Kustomization, the sync objects, the `infrastructure` and `apps` Flux
//! Kustomizations (SOPS decryption through the `sops-age` Secret), and infrastructure components that each
//! follow one pattern (namespace, HelmRepository, HelmRelease, kustomization) — the NFS subdir external
//! provisioner with a default StorageClass, and Kyverno with an image-signature policy in audit mode.
//!
//! It also operates Flux without the flux CLI, through the small [`cluster::Cluster`] seam (implemented
//! for `homelab-kube`'s client): `sops_key` (the `flux-system/sops-age` Secret from the operator's age
//! identity), `bootstrap::bootstrap` (Flux's install manifests pinned by SHA-256, then the sync objects),
//! `reconcile` (the `reconcile.fluxcd.io/requestedAt` annotation) and `kustomization_status` (readiness).
//!
//! It never writes outside the paths it returns and never builds kustomizations (`homelab-kustomize-controller`
//! does; the Flux Kustomizations it writes are that crate's `Spec`).
//!
//! ```
//! let source = "proxmox: {endpoint: 'https://pve.home:8006', token_id: 'homelabctl@pve!provision'}\n\
//!               nodes:\n  - {name: cp, vm_id: 100, network: {mac: 'BC:24:11:CA:FE:01', \
//!               address: 192.168.20.100/24, gateway: 192.168.20.1}}\n\
//!               gitops: {repository: {url: 'https://github.com/o/homelab'}, \
//!               nfs: {server: nas.home, export: /volume1/kubernetes}}\n";
//! let config = homelab_config::parse(source, None).expect("valid").config;
//! let files = homelab_flux::tree(&config).expect("gitops is set");
//! assert!(files.iter().any(|f| f.path.ends_with("infrastructure/nfs-provisioner/helmrelease.yaml")));
//! ```

mod add;
pub mod apply;
pub mod bootstrap;
pub mod charts;
pub mod cluster;
mod component;
pub mod identity;
mod kube;
pub mod kustomization;
mod manifest;
pub mod policy;
mod reconcile;
mod sops_key;
mod status;
pub mod sync;
mod tree;

pub use add::{AddError, add_component};
pub use component::{Component, ComponentError};
pub use manifest::TreeFile;
pub use reconcile::{REQUESTED_AT, ReconcileError, reconcile};
pub use sops_key::sops_key;
pub use status::{KustomizationStatus, kustomization_status};
pub use tree::{
    APPS_DIR, INFRASTRUCTURE_DIR, NFS_PROVISIONER_NAME, NFS_STORAGE_CLASS, POLICIES_KUSTOMIZATION,
    TreeError, tree,
};
