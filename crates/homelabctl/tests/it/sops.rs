//! `homelabctl sops …` end to end through the binary, against the real sops.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::{homelabctl, testdata};

fn vectors() -> PathBuf {
    testdata().join("sops")
}

/// Runs homelabctl with only the vector identity visible.
fn cli(dir: &Path) -> assert_cmd::Command {
    let mut cmd = homelabctl();
    cmd.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env("SOPS_AGE_KEY_FILE", vectors().join("key.txt"))
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_RECIPIENTS")
        .env_remove("SOPS_EDITOR");
    cmd
}

fn sops_decrypt(file: &Path) -> Vec<u8> {
    sops_decrypt_with(file, &vectors().join("key.txt"))
}

fn sops_decrypt_with(file: &Path, key: &Path) -> Vec<u8> {
    let xdg = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sops")
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .arg("decrypt")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn encrypt_in_place_with_the_repository_rule_is_read_by_sops() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(vectors().join(".sops.yaml"), dir.path().join(".sops.yaml")).unwrap();
    std::fs::write(dir.path().join("s.yaml"), "token: abc\nport: 8006\n").unwrap();
    cli(dir.path())
        .args(["sops", "encrypt", "--in-place", "s.yaml"])
        .assert()
        .success()
        .stdout("");
    let enc = std::fs::read_to_string(dir.path().join("s.yaml")).unwrap();
    assert!(enc.contains("token: ENC[AES256_GCM,") && !enc.contains("abc"));
    assert_eq!(
        sops_decrypt(&dir.path().join("s.yaml")),
        b"token: abc\nport: 8006\n"
    );
}

#[test]
fn decrypt_prints_plaintext_and_extract_prints_one_value() {
    let dir = tempfile::tempdir().unwrap();
    cli(dir.path())
        .args(["sops", "decrypt"])
        .arg(vectors().join("enc/basic.json"))
        .assert()
        .success()
        .stdout(std::fs::read_to_string(vectors().join("dec/basic.json")).unwrap());
    cli(dir.path())
        .args([
            "sops",
            "decrypt",
            "--extract",
            r#"["nested"]["deep"]["deeper"]"#,
        ])
        .arg(vectors().join("enc/basic.yaml"))
        .assert()
        .success()
        .stdout("secret");
}

#[test]
fn decrypt_output_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    cli(dir.path())
        .args(["sops", "decrypt", "-o", "plain.bin"])
        .arg(vectors().join("enc/blob.bin"))
        .assert()
        .success();
    let meta = std::fs::metadata(dir.path().join("plain.bin")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read(dir.path().join("plain.bin")).unwrap(),
        std::fs::read(vectors().join("dec/blob.bin")).unwrap()
    );
}

#[test]
fn edit_with_a_scripted_editor_is_byte_stable_for_sops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("basic.yaml");
    std::fs::copy(vectors().join("enc/basic.yaml"), &file).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/key: value/key: edited/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    cli(dir.path())
        .env("EDITOR", &editor)
        .args(["sops", "edit", "basic.yaml"])
        .assert()
        .success();
    let expected = std::fs::read_to_string(vectors().join("dec/basic.yaml"))
        .unwrap()
        .replace("key: value", "key: edited");
    assert_eq!(String::from_utf8(sops_decrypt(&file)).unwrap(), expected);
    // A second edit that changes nothing writes nothing.
    let before = std::fs::read(&file).unwrap();
    cli(dir.path())
        .env("EDITOR", "true")
        .args(["sops", "edit", "basic.yaml"])
        .assert()
        .success();
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn tampered_file_fails_with_mac_mismatch_and_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(vectors().join("enc/basic.yaml")).unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        text.replace("visible", "tampered"),
    )
    .unwrap();
    cli(dir.path())
        .args(["sops", "decrypt", "t.yaml"])
        .assert()
        .failure()
        .stdout("")
        .stderr(predicate::str::contains("t.yaml").and(predicate::str::contains("MAC mismatch")))
        .stderr(predicate::str::contains("hello world").not());
}

#[test]
fn updatekeys_adds_the_second_recipient_from_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("multi")).unwrap();
    std::fs::copy(vectors().join(".sops.yaml"), dir.path().join(".sops.yaml")).unwrap();
    std::fs::copy(
        vectors().join("enc/basic.yaml"),
        dir.path().join("multi/one.yaml"),
    )
    .unwrap();
    cli(dir.path())
        .args(["sops", "updatekeys", "--yes", "multi/one.yaml"])
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("multi/one.yaml")).unwrap();
    assert!(text.contains("age19txh7dkdtzqmvpsw87cvkm69t0phmzw2q6qmssjurpjr0hk56dqs0883mg"));
    // The new recipient's own identity now opens the file in the real sops.
    assert_eq!(
        sops_decrypt_with(
            &dir.path().join("multi/one.yaml"),
            &vectors().join("key2.txt")
        ),
        std::fs::read(vectors().join("dec/basic.yaml")).unwrap()
    );
    cli(dir.path())
        .args(["sops", "updatekeys", "--yes", "multi/one.yaml"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already up to date"));
}
