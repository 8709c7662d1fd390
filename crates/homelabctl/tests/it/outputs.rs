//! `config export|decrypt`, `talos secrets import`: a repository made by `init`, checked with the real sops.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use predicates::prelude::*;

use crate::{homelabctl, shared};

/// A repository made by `homelabctl init` (own `.age-key.txt`) with upstream Talos's test bundle imported.
pub fn initialised_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(dir.path(), &["init", "."]).success();
    let bundle = shared().join("testdata/talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
    run_in(
        dir.path(),
        &["talos", "secrets", "import", bundle.to_str().expect("utf8")],
    )
    .success()
    .stdout(predicate::str::contains("talos-secrets.enc.yaml: imported"));
    dir
}

/// Runs homelabctl in `dir` with only the repository's identity available.
pub fn run_in(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    homelabctl()
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET")
        .assert()
}

fn real_sops_decrypt(dir: &Path, file: &str) -> String {
    let out = std::process::Command::new("sops")
        .args(["-d", file])
        .current_dir(dir)
        .env("SOPS_AGE_KEY_FILE", dir.join(".age-key.txt"))
        .env("HOME", dir)
        .output()
        .expect("sops installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn export_then_decrypt_give_the_same_files_real_sops_and_kubectl_accept() {
    let dir = initialised_repo();
    let root = dir.path();
    run_in(root, &["config", "export"])
        .success()
        .stdout(predicate::str::contains(
            "output/talosconfig.enc.yaml: created",
        ))
        .stdout(predicate::str::contains(
            "output/kubeconfig.enc.yaml: created",
        ));
    let exported_talos = std::fs::read(root.join("output/talosconfig.enc.yaml")).expect("read");

    run_in(root, &["config", "export"])
        .success()
        .stdout(predicate::str::contains(
            "output/talosconfig.enc.yaml: unchanged",
        ))
        .stdout(predicate::str::contains(
            "output/kubeconfig.enc.yaml: unchanged",
        ));
    assert_eq!(
        std::fs::read(root.join("output/talosconfig.enc.yaml")).expect("read"),
        exported_talos,
        "a second export does not touch the file"
    );

    // `init` already ignores both files, so nothing is added.
    run_in(root, &["config", "decrypt"])
        .success()
        .stdout(predicate::str::contains("talosconfig: created"))
        .stdout(predicate::str::contains(".gitignore").not());
    for name in ["talosconfig", "kubeconfig"] {
        let local = root.join(name);
        let mode = std::fs::metadata(&local)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&local).expect("read"),
            real_sops_decrypt(root, &format!("output/{name}.enc.yaml")),
            "decrypt writes exactly what sops decrypts from the export"
        );
    }
    let view = std::process::Command::new("kubectl")
        .args([
            "config",
            "view",
            "--kubeconfig",
            "kubeconfig",
            "-o",
            "jsonpath={.current-context}",
        ])
        .current_dir(root)
        .output()
        .expect("kubectl");
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&view.stdout), "admin@homelab");
}

#[test]
fn export_without_a_bundle_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(dir.path(), &["init", "."]).success();
    run_in(dir.path(), &["config", "export"])
        .failure()
        .stderr(predicate::str::contains("talos-secrets.enc.yaml"))
        .stderr(predicate::str::contains("homelabctl apply"));
    assert!(!dir.path().join("output").exists());
}

#[test]
fn import_refuses_to_replace_an_existing_bundle() {
    let dir = initialised_repo();
    let before = std::fs::read(dir.path().join("talos-secrets.enc.yaml")).expect("read");
    let bundle = shared().join("testdata/talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
    run_in(
        dir.path(),
        &["talos", "secrets", "import", bundle.to_str().expect("utf8")],
    )
    .failure()
    .stderr(predicate::str::contains("already exists"));
    assert_eq!(
        std::fs::read(dir.path().join("talos-secrets.enc.yaml")).expect("read"),
        before
    );
}
