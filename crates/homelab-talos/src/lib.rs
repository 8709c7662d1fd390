//! The Talos side of homelabctl, computed locally: the cluster's secrets bundle (PKI and tokens in the
//! `talosctl gen secrets` layout) and certificates minted from it, the Talos 1.12 machine configuration of
//! each node, talosconfig and kubeconfig, and the Image Factory client (schematics, ISO and installer).
//!
//! This crate does not read `homelab.yaml`, encrypt files, print, or talk to Proxmox; callers hand it plain
//! inputs and store its secret outputs encrypted. The apid gRPC client is a separate module/crate.
//!
//! ```
//! use homelab_talos::secrets::SecretsBundle;
//! let bundle = SecretsBundle::generate().unwrap();
//! let yaml = bundle.to_yaml().unwrap();
//! let again = SecretsBundle::from_yaml(&yaml).unwrap();
//! assert_eq!(again.cluster.id.expose(), bundle.cluster.id.expose());
//! ```

pub mod configpatcher;
pub mod factory;
pub mod import;
pub mod kubeconfig;
pub mod machine_config;
pub mod pem;
pub mod pki;
pub mod secret;
pub mod secrets;
pub mod talosconfig;
