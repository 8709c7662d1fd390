//! Integration tests for the homelabctl binary (one test binary, one module per command).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alias_bombs;
mod cli_edge;
mod config_commands;
mod etcd;
mod flux_tree;
mod gitops;
mod hooks;
mod identity_lookup;
mod import;
mod kill_apply;
mod lab_sim;
mod lifecycle;
mod outputs;
mod patches;
mod placement;
mod proxmox;
mod scan;
mod snapshots;
mod sops;
mod sops_edit_signals;
mod talos;
mod upgrade;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn homelabctl() -> Command {
    let mut cmd = Command::cargo_bin("homelabctl").expect("binary built");
    cmd.env_remove("HOMELAB_CONFIG").env("NO_COLOR", "1");
    cmd
}

/// A multi-threaded runtime for an in-process simulator lab (TLS provider installed); keep it alive as long
/// as anything it serves.
pub fn lab_runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The in-process lab started with `options`, and the runtime that serves it.
pub fn start_lab(
    options: homelab_sim::lab::LabOptions,
) -> (tokio::runtime::Runtime, homelab_sim::lab::Lab) {
    let runtime = lab_runtime();
    let lab = runtime
        .block_on(homelab_sim::lab::Lab::start(options))
        .expect("lab starts");
    (runtime, lab)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The binary run in `dir` as a user with no key, config or token of their own in the environment: `HOME` is
/// `dir`, and every variable that would point homelabctl elsewhere is removed.
pub fn isolated(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_homelabctl"));
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("HOMELAB_CONFIG")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET");
    cmd
}
