//! `homelabctl talos …` end to end through the binary.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::shared;

#[test]
fn secrets_check_accepts_a_talosctl_bundle_and_prints_no_secret() {
    let file = shared().join("testdata/talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
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
