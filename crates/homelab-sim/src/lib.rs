//! Simulators that stand in for the outside world in tests and in `homelabctl demo`: the Proxmox VE API, the
//! Talos Image Factory, each VM's Talos apid, and a minimal Kubernetes API. They are strict where the real
//! services are strict, listen on loopback (127.0.0.0/8) only, and take faults from a deterministic seed.

pub mod change;
pub mod factory;
pub mod kube;
pub mod lab;
pub mod pki;
pub mod proxmox;
mod random;
pub mod requests;
pub mod sim_file;
pub mod talos;
mod task;
