//! The provisioning engine: turns a validated `homelab.yaml` into the desired resources (image, VMs, machine
//! configs, bootstrap, kubeconfig, Talos versions), observes what is live, diffs the two into a
//! [`plan::Plan`] of ordered steps ([`steps`]), and applies exactly those steps, reporting typed
//! [`events::Event`]s.
//!
//! Live state (Proxmox, Talos, Kubernetes) is the truth. The engine keeps only a small, non-secret journal and
//! an apply lock under `.homelab/`; neither is needed for correctness. It never prints and never parses
//! arguments: the binary renders its events.

pub mod adapters;
pub mod desired;
pub mod destroy;
pub mod etcd;
pub mod events;
pub mod flow;
pub mod hardware;
pub mod journal;
pub mod kubernetes_upgrade;
pub mod lock;
pub mod placement;
pub mod plan;
pub mod ports;
pub mod status;
pub mod steps;
pub mod talos_render;
pub mod versions;
pub mod wait;
pub mod wiring;
