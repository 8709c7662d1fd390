//! The ports implemented over the real client crates. Each adapter translates a client's typed errors into
//! [`crate::ports::PortError`], deciding what is worth retrying.

pub mod factory;
pub mod kube;
pub mod proxmox;
pub mod talos;
