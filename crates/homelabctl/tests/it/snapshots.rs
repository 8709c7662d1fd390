//! Snapshots of what users read: `check` findings and `scan` findings in text, JSON and SARIF, and
//! `validate` errors in text and JSON. A change of wording or layout fails here and shows as a diff
//! of the `.snap` files under `snapshots/` (review it, then accept with `cargo insta review`, or
//! `INSTA_UPDATE=always` for a new snapshot). In CI (`CI=true`) insta never writes: a mismatch fails.
//!
//! Every command runs in its temporary directory on relative paths, so no snapshot holds a
//! machine's path.

use std::path::Path;

use crate::isolated;

/// Runs the binary in `dir`; returns the exit code, standard output and standard error.
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = isolated(dir, args).output().expect("homelabctl runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// A Flux tree with a plaintext Secret, and a file a `.sops.yaml` rule covers left unencrypted.
fn tree_with_findings() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    write(
        t.path(),
        ".sops.yaml",
        "creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    age: age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy\n",
    );
    write(t.path(), "secrets.enc.yaml", "password: not-encrypted\n");
    write(
        t.path(),
        "kubernetes/app/kustomization.yaml",
        "resources: [secret.yaml]\n",
    );
    write(
        t.path(),
        "kubernetes/app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {user: app}\n",
    );
    t
}

#[test]
fn check_findings_in_every_format() {
    let t = tree_with_findings();
    for format in ["text", "json", "sarif"] {
        let (code, stdout, stderr) = run(
            t.path(),
            &["check", "--fast", "--dir", ".", "--format", format],
        );
        assert_eq!(code, Some(1), "{format}: {stdout}{stderr}");
        insta::assert_snapshot!(format!("check_{format}"), stdout);
    }
}

/// A working tree with one GitHub token (assembled at run time so this file holds no secret).
fn tree_with_secret() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    let secret = format!("{}{}", "ghp_", "Zq8Xw2Lr5Tn9Vb3Mk7Hj1Gf4Dd6Ss0Aa8Pp2");
    write(t.path(), "ci.env", &format!("TOKEN={secret}\n"));
    write(t.path(), "README.md", "nothing here\n");
    t
}

#[test]
fn scan_findings_in_every_format() {
    let t = tree_with_secret();
    for format in ["text", "json", "sarif"] {
        let (code, stdout, stderr) = run(t.path(), &["scan", "--no-git", "--format", format, "."]);
        assert_eq!(code, Some(1), "{format}: {stdout}{stderr}");
        insta::assert_snapshot!(format!("scan_{format}"), stdout);
    }
}

/// A homelab.yaml with several errors: a duplicate address, an unknown field, a bad size.
const INVALID_CONFIG: &str = "\
proxmox:
  endpoint: https://192.168.20.10:8006
  node: pve
  token_id: \"homelabctl@pve!provision\"
  iso_storage: local
image:
  talos_version: v1.12.4
  platform: nocloud
cluster:
  name: homelab
  kubernetes_version: 1.35.0
  colour: blue
nodes:
  - name: talos-cp-01
    role: controlplane
    vm_id: 100
    memory: lots
    network:
      mac: \"BC:24:11:CA:FE:01\"
      address: 192.168.20.100/24
      gateway: 192.168.20.1
  - name: talos-cp-02
    role: controlplane
    vm_id: 101
    network:
      mac: \"BC:24:11:CA:FE:02\"
      address: 192.168.20.100/24
      gateway: 192.168.20.1
";

#[test]
fn validate_errors_in_text_and_json() {
    let t = tempfile::tempdir().expect("tempdir");
    write(t.path(), "homelab.yaml", INVALID_CONFIG);
    let (code, stdout, stderr) = run(t.path(), &["validate", "--config", "homelab.yaml"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    insta::assert_snapshot!("validate_text", format!("{stdout}{stderr}"));
    let (code, stdout, stderr) = run(
        t.path(),
        &["validate", "--config", "homelab.yaml", "--format", "json"],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    insta::assert_snapshot!("validate_json", stdout);
}
