//! `homelabctl talos …` end to end through the binary.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::testdata;

#[test]
fn secrets_check_accepts_a_talosctl_bundle_and_prints_no_secret() {
    let file = testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
    Command::cargo_bin("homelabctl")
        .unwrap()
        .args(["talos", "secrets", "check"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("certs.os"))
        .stdout(predicate::str::contains("expires 2033-05-22T12:14:42Z"))
        .stdout(predicate::str::contains("PRIVATE").not())
        .stdout(predicate::str::contains("2psnp2").not());
}

#[test]
fn secrets_check_rejects_a_file_that_is_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(&file, "cluster: {}\n").unwrap();
    Command::cargo_bin("homelabctl")
        .unwrap()
        .args(["talos", "secrets", "check"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("talosctl gen secrets"));
}

/// A repository made by `homelabctl init` (homelab.yaml for one control plane, .sops.yaml, age identity).
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("homelabctl")
        .unwrap()
        .arg("init")
        .arg(dir.path())
        .assert()
        .success();
    dir
}

fn homelabctl(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("homelabctl").unwrap();
    cmd.current_dir(dir)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env("SOPS_AGE_KEY_FILE", dir.join(".age-key.txt"))
        .env("HOMELAB_CONFIG", dir.join("homelab.yaml"));
    cmd
}

fn fixture() -> std::path::PathBuf {
    testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml")
}

#[test]
fn secrets_import_stores_the_bundle_encrypted_and_sops_decrypts_it_back_exactly() {
    let dir = repo();
    homelabctl(dir.path())
        .args(["talos", "secrets", "import"])
        .arg(fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("talos-secrets.enc.yaml"));
    let stored = std::fs::read_to_string(dir.path().join("talos-secrets.enc.yaml")).unwrap();
    assert!(stored.contains("ENC[AES256_GCM"));
    assert!(!stored.contains("2psnp2.lry8e9gycdix3bpa"));
    let out = std::process::Command::new("sops")
        .args(["decrypt", "talos-secrets.enc.yaml"])
        .current_dir(dir.path())
        .env("SOPS_AGE_KEY_FILE", dir.path().join(".age-key.txt"))
        .output()
        .expect("sops is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(fixture()).unwrap()
    );
}

#[test]
fn secrets_import_refuses_to_replace_a_bundle_without_force() {
    let dir = repo();
    let import = |force: bool| {
        let mut cmd = homelabctl(dir.path());
        cmd.args(["talos", "secrets", "import"]).arg(fixture());
        if force {
            cmd.arg("--force");
        }
        cmd.assert()
    };
    import(false).success();
    let before = std::fs::read(dir.path().join("talos-secrets.enc.yaml")).unwrap();
    import(false)
        .failure()
        .stderr(predicate::str::contains("already exists"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        std::fs::read(dir.path().join("talos-secrets.enc.yaml")).unwrap(),
        before
    );
    import(true).success();
}

#[test]
fn talos_config_prints_the_node_config_with_secrets_masked_unless_revealed() {
    let dir = repo();
    homelabctl(dir.path())
        .args(["talos", "secrets", "import"])
        .arg(fixture())
        .assert()
        .success();
    let masked = homelabctl(dir.path())
        .args(["talos", "config"])
        .assert()
        .success();
    let masked = String::from_utf8(masked.get_output().stdout.clone()).unwrap();
    assert!(
        masked.contains("kind: HostnameConfig\nhostname: talos-cp-01\n"),
        "{masked}"
    );
    assert!(masked.contains("kind: VolumeConfig\nname: STATE\n"));
    assert!(masked.contains("image: factory.talos.dev/nocloud-installer-secureboot/"));
    assert!(masked.contains("******"));
    for secret in [
        "2psnp2.lry8e9gycdix3bpa",
        "oamejv.9tk1nhuwnlc2nghf",
        "Wiu0qx68V3MKhFDr8",
    ] {
        assert!(!masked.contains(secret), "{secret} leaked");
    }
    homelabctl(dir.path())
        .args(["talos", "config", "--node", "talos-cp-01", "--reveal"])
        .assert()
        .success()
        .stdout(predicate::str::contains("token: 2psnp2.lry8e9gycdix3bpa"));
    homelabctl(dir.path())
        .args(["talos", "config", "--node", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("talos-cp-01"));
}

#[test]
fn talos_config_without_a_bundle_says_how_to_recover() {
    let dir = repo();
    homelabctl(dir.path())
        .args(["talos", "config"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "talos-secrets.enc.yaml: not found",
        ))
        .stderr(predicate::str::contains("secrets import"));
}
