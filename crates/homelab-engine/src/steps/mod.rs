//! The kinds of plan step, one module each, every one owning both its diff (what `plan` shows) and its
//! action (what `apply` does): the image, the VMs, the machine configs, the bootstrap and etcd membership,
//! Kubernetes readiness, the Talos upgrades and the Kubernetes upgrade, and the removal and replacement of
//! nodes.

pub mod bootstrap;
pub mod image;
pub mod kubernetes;
pub mod kubernetes_upgrade;
pub mod machine_config;
pub mod remove;
pub mod talos_upgrade;
pub mod vm;
