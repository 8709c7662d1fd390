//! The `homelab.yaml` model: the declarative description of a homelab (Proxmox, Talos image, cluster, nodes,
//! GitOps), its defaults (which reproduce the original single-node deployment), and its validation.
//!
//! This crate only reads and checks configuration. It knows nothing of Proxmox, Talos or SOPS clients.
