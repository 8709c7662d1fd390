//! Shared helpers: the repository's SOPS test vectors, their identities, and running the real sops.

use std::path::{Path, PathBuf};
use std::process::Command;

use homelab_sops::Identities;

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn vectors() -> PathBuf {
    testdata().join("sops")
}

pub fn key_file() -> PathBuf {
    vectors().join("key.txt")
}

pub fn identities() -> Identities {
    let text = std::fs::read_to_string(key_file()).expect("key.txt");
    Identities::from_text(&text).expect("identities")
}

pub fn identities2() -> Identities {
    let text = std::fs::read_to_string(vectors().join("key2.txt")).expect("key2.txt");
    Identities::from_text(&text).expect("identities")
}

pub const RECIPIENT: &str = "age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy";
pub const RECIPIENT2: &str = "age19txh7dkdtzqmvpsw87cvkm69t0phmzw2q6qmssjurpjr0hk56dqs0883mg";

/// A `sops` command with the test key and no user state.
pub fn sops(xdg: &Path, key: &Path) -> Command {
    let mut c = Command::new("sops");
    c.env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("XDG_CONFIG_HOME", xdg)
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_RECIPIENTS");
    c
}

/// Runs `sops decrypt FILE` and returns stdout, or panics with stderr.
pub fn sops_decrypt(file: &Path) -> Vec<u8> {
    let xdg = tempfile::tempdir().expect("tempdir");
    let out = sops(xdg.path(), &key_file())
        .arg("decrypt")
        .arg(file)
        .output()
        .expect("run sops");
    assert!(
        out.status.success(),
        "sops decrypt {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
