//! End-to-end tests of the `homelabctl` binary: exit codes, messages, files written.

mod config_commands;

use std::path::PathBuf;

use assert_cmd::Command;

pub fn homelabctl() -> Command {
    let mut cmd = Command::cargo_bin("homelabctl").expect("binary built");
    cmd.env_remove("HOMELAB_CONFIG").env("NO_COLOR", "1");
    cmd
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
