//! Client for the Talos apid gRPC API (`machine.MachineService`), the way homelabctl drives a
//! node: apply the machine configuration while the node sits in maintenance mode, then talk
//! mutual TLS with the talosconfig credentials to bootstrap etcd, fetch the kubeconfig, list
//! services and etcd members, read COSI resources (the running machine config), upgrade the node, snapshot and recover etcd, or reset the node.
//!
//! The protobuf definitions in `proto/` are the subset homelabctl uses of the official Talos
//! v1.12.4 `api/machine/machine.proto` and `api/common/common.proto` (same field numbers), compiled by `build.rs` with protox (no `protoc`). The `server` feature also generates the
//! server traits, for the simulator in `homelab-sim`.
//!
//! Security notes: maintenance mode is unauthenticated in Talos itself (self-signed server
//! certificate, no client certificate); [`ApidClient::connect_maintenance`] accepts any server
//! unless a [`Fingerprint`] pin is given. Installed mode always verifies the server against the
//! OS CA. Kubeconfig bytes are returned in a [`zeroize::Zeroizing`] buffer.
//!
//! This crate does not render or validate machine configs, generate certificates, or know
//! anything of Proxmox.
//!
//! ```no_run
//! # async fn demo(ca: &[u8], crt: &[u8], key: &[u8]) -> Result<(), homelab_apid::ApidError> {
//! use homelab_apid::{ApidClient, ApplyMode, BootstrapRetry, ClientCredentials};
//! let config = b"version: v1alpha1\n...";
//! let mut maint = ApidClient::connect_maintenance("127.0.20.50:50000".parse().unwrap(), None).await?;
//! maint.apply_configuration(config, ApplyMode::Reboot, false).await?;
//! let creds = ClientCredentials::from_pem(ca, crt, key)?;
//! let mut node = ApidClient::connect("127.0.20.100:50000".parse().unwrap(), &creds).await?;
//! node.bootstrap_with_retry(BootstrapRetry::default()).await?;
//! let kubeconfig = node.kubeconfig().await?;
//! # Ok(()) }
//! ```

mod archive;
mod client;
mod cosi;
mod error;
mod etcd;
pub mod proto;
mod tls;
mod upgrade;

pub use client::{
    APID_PORT, ApidClient, ApplyMode, ApplyOutcome, BOOT_ID_PATH, BootstrapRetry, Bootstrapped,
    EtcdMember, NodeVersion, ResetOptions, Service,
};
pub use cosi::{
    CONFIG_NAMESPACE, MACHINE_CONFIG_ACTIVE_ID, MACHINE_CONFIG_TYPE, Resource,
    machine_config_bytes, machine_config_proto_spec,
};
pub use error::ApidError;
pub use etcd::{EtcdStatus, SnapshotStream};
pub use tls::{ClientCredentials, Fingerprint, parse_key};
pub use upgrade::UpgradeAck;
