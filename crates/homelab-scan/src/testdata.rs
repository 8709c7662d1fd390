//! For unit tests: locating the repository's test data (`testdata/` at the workspace root), and running
//! git in a throw-away repository.

use std::path::{Path, PathBuf};

/// `rel` inside the repository's test data (`testdata/` at the workspace root; see its README).
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// Runs `git args` in `dir` with a fixed identity, asserts that it succeeded, and returns its output.
pub fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    out.stdout
}
