//! Integration tests of the simulators, driven through the real clients (homelab-apid, kubectl) or raw HTTP.
//! Loopback only: every address is in 127.0.0.0/8 with ephemeral ports.

mod cosi;
mod day2;
mod factory;
mod fixture;
mod kubernetes;
mod persist;
mod proxmox;
mod talos;
mod talos_ha;

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}
