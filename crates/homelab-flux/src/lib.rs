//! The Flux GitOps tree of a homelab repository, generated from `homelab.yaml`: the root kustomization that
//! scopes the `flux-system` Kustomization, the sync objects, the `infrastructure` and `apps` Flux
//! Kustomizations (SOPS decryption through the `sops-age` Secret), and infrastructure components that each
//! follow one pattern (namespace, HelmRepository, HelmRelease, kustomization) — the NFS subdir external
//! provisioner with a default StorageClass, and Kyverno with an image-signature policy in audit mode.
//!
//! This crate only produces and edits files (and the Flux objects as values); it never writes outside the
//! paths it returns, never talks to a cluster and never builds kustomizations (`homelab-gitops` does).
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
pub mod charts;
mod component;
pub mod kustomization;
mod manifest;
pub mod policy;
pub mod sync;
mod tree;

pub use add::{AddError, add_component};
pub use component::{Component, ComponentError};
pub use manifest::TreeFile;
pub use tree::{
    APPS_DIR, INFRASTRUCTURE_DIR, NFS_PROVISIONER_NAME, NFS_STORAGE_CLASS, POLICIES_KUSTOMIZATION,
    TreeError, tree,
};
