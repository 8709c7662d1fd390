//! Preflight checks of a Proxmox setup (doctor).
