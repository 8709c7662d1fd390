//! `config export|decrypt`, `talos secrets import`: a repository made by `init`, checked with the real sops.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use predicates::prelude::*;

use crate::{homelabctl, testdata};

/// A repository made by `homelabctl init` (own `.age-key.txt`) with upstream Talos's test bundle imported.
pub fn initialised_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(dir.path(), &["init", "."]).success();
    let bundle = testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
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
    let bundle = testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
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

/// Runs homelabctl under `script`, so its standard output is a terminal; returns (success, what it printed).
fn run_on_a_terminal(dir: &Path, args: &str) -> (bool, String) {
    let bin = assert_cmd::cargo::cargo_bin("homelabctl");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{} {args}", bin.display()), "/dev/null"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("HOMELAB_CONFIG")
        .output()
        .expect("script (util-linux)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn output_list_shows_secret_outputs_as_sensitive_even_when_piped() {
    let dir = initialised_repo();
    let text = run_in(dir.path(), &["output"])
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).expect("utf8");
    assert_eq!(
        text,
        "vm_id        100\ntalosconfig  <sensitive>\nkubeconfig   <sensitive>\n"
    );
    let json = run_in(dir.path(), &["output", "--output", "json"])
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(json["vm_id"]["value"]["talos-cp-01"], 100);
    assert_eq!(
        json["kubeconfig"],
        serde_json::json!({"sensitive": true, "available": true})
    );
    run_in(dir.path(), &["output", "vm_id"])
        .success()
        .stdout("100\n");
}

#[test]
fn secret_output_prints_when_piped_and_is_refused_on_a_terminal_unless_revealed() {
    let dir = initialised_repo();
    let root = dir.path();
    run_in(root, &["config", "export"]).success();
    let piped = run_in(root, &["output", "kubeconfig"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(piped).expect("utf8"),
        real_sops_decrypt(root, "output/kubeconfig.enc.yaml"),
        "the exported kubeconfig, unchanged"
    );

    let (ok, shown) = run_on_a_terminal(root, "output kubeconfig");
    assert!(!ok);
    assert!(
        shown.contains("kubeconfig is secret and standard output is a terminal"),
        "{shown}"
    );
    assert!(!shown.contains("client-key-data"), "{shown}");

    let (ok, shown) = run_on_a_terminal(root, "output talosconfig --reveal");
    assert!(ok, "{shown}");
    assert!(shown.contains("contexts:"), "{shown}");
}

#[test]
fn set_proxmox_token_reads_standard_input_and_stores_it_encrypted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    run_in(root, &["init", "."]).success();
    homelabctl()
        .args(["secrets", "set-proxmox-token"])
        .current_dir(root)
        .env("HOME", root)
        .env_remove("SOPS_AGE_KEY_FILE")
        .write_stdin("0d9c2a4e-5b1f-4c7e-9a3d-6f8e1b2c3d4e\n")
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains(
            "proxmox.token_secret stored (encrypted)",
        ));
    let raw = std::fs::read_to_string(root.join("secrets.enc.yaml")).expect("written");
    assert!(!raw.contains("0d9c2a4e"));
    assert_eq!(
        real_sops_decrypt(root, "secrets.enc.yaml"),
        "proxmox:\n    token_secret: 0d9c2a4e-5b1f-4c7e-9a3d-6f8e1b2c3d4e\n"
    );
    // The secret is never accepted on the command line.
    run_in(root, &["secrets", "set-proxmox-token", "s3cret"]).failure();
    homelabctl()
        .args(["secrets", "set-proxmox-token"])
        .current_dir(root)
        .env("HOME", root)
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no token secret on standard input",
        ));
}
