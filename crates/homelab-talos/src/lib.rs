//! The Talos side of homelabctl, computed locally: the cluster's secrets bundle (the PKI and tokens, in the
//! `talosctl gen secrets` layout), certificates minted from it, and more modules to come.
//!
//! This crate does not read `homelab.yaml`, encrypt files or talk to Proxmox; callers hand it plain inputs.
//!
//! ```
//! use homelab_talos::secrets::SecretsBundle;
//! let bundle = SecretsBundle::generate().unwrap();
//! let yaml = bundle.to_yaml().unwrap();
//! let again = SecretsBundle::from_yaml(&yaml).unwrap();
//! assert_eq!(again.cluster.id.expose(), bundle.cluster.id.expose());
//! ```

pub mod machine_config;
pub mod pem;
pub mod pki;
pub mod secret;
pub mod secrets;
