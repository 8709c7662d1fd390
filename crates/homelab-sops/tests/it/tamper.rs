//! Bad input gets a clear error, names the file, and never shows plaintext.

use homelab_sops::{CreationRule, Format, SopsConfig, SopsError, decrypt, encrypt};

use crate::common::{RECIPIENT, identities, identities2, vectors};

fn sops_yaml() -> String {
    std::fs::read_to_string(vectors().join("enc/basic.yaml")).expect("vector")
}

fn assert_mac_mismatch(text: &str) {
    let err = decrypt(
        text.as_bytes(),
        Format::Yaml,
        &identities(),
        "vault.enc.yaml",
    )
    .expect_err("tampered");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("vault.enc.yaml") && msg.contains("MAC mismatch"),
        "{msg}"
    );
    for secret in ["hello world", "secret", "héllo", "visible", "42"] {
        assert!(!msg.contains(secret), "message leaks {secret:?}: {msg}");
    }
}

#[test]
fn changed_clear_text_value_is_a_mac_mismatch() {
    assert_mac_mismatch(
        &sops_yaml().replace("public_unencrypted: visible", "public_unencrypted: changed"),
    );
}

#[test]
fn changed_ciphertext_is_a_mac_mismatch() {
    assert_mac_mismatch(&sops_yaml().replace("data:ooAv3bd4FvX5z5Y=", "data:ooAv3bd4GvX5z5Y="));
}

#[test]
fn moved_encrypted_value_is_a_mac_mismatch() {
    // Swapping two values breaks their AAD (the key path).
    let text = sops_yaml();
    let string_line = text
        .lines()
        .find(|l| l.starts_with("string: "))
        .expect("string line")
        .to_string();
    let unicode_line = text
        .lines()
        .find(|l| l.starts_with("unicode: "))
        .expect("unicode line")
        .to_string();
    let swapped = text
        .replace(&string_line, "@@S@@")
        .replace(&unicode_line, &string_line.replace("string: ", "unicode: "))
        .replace("@@S@@", &unicode_line.replace("unicode: ", "string: "));
    assert_mac_mismatch(&swapped);
}

#[test]
fn removed_value_is_a_mac_mismatch() {
    let text = sops_yaml();
    let line = text
        .lines()
        .find(|l| l.starts_with("int: "))
        .expect("int line")
        .to_string();
    assert_mac_mismatch(&text.replace(&format!("{line}\n"), ""));
}

#[test]
fn changed_lastmodified_is_a_mac_mismatch() {
    assert_mac_mismatch(&sops_yaml().replace("2026-11-25T19:52:15Z", "2026-11-25T19:52:16Z"));
}

#[test]
fn missing_identity_lists_recipients_and_places_searched() {
    let other = identities2();
    let err =
        decrypt(sops_yaml().as_bytes(), Format::Yaml, &other, "s.yaml").expect_err("no identity");
    let msg = err.to_string();
    assert!(
        msg.contains(RECIPIENT) && msg.contains("s.yaml") && msg.contains("looked for"),
        "{msg}"
    );
}

#[test]
fn plain_file_is_not_a_sops_file() {
    let err = decrypt(b"a: 1\n", Format::Yaml, &identities(), "plain.yaml").expect_err("not sops");
    assert!(matches!(err, SopsError::NotSops { .. }), "{err}");
    let err = decrypt(b"garbage", Format::Binary, &identities(), "blob").expect_err("not sops");
    assert!(matches!(err, SopsError::NotSops { .. }), "{err}");
}

#[test]
fn encrypting_an_encrypted_file_is_refused() {
    let rule = CreationRule::for_recipients(&[RECIPIENT]);
    let err = encrypt(sops_yaml().as_bytes(), Format::Yaml, &rule, "x.yaml").expect_err("already");
    assert!(matches!(err, SopsError::AlreadyEncrypted { .. }), "{err}");
}

#[test]
fn no_matching_creation_rule_names_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    age: {RECIPIENT}\n"),
    )
    .expect("write");
    let cfg = SopsConfig::find(dir.path()).expect("find").expect("config");
    let err = cfg
        .rule_for(&dir.path().join("plain.yaml"))
        .expect_err("no rule");
    let msg = err.to_string();
    assert!(
        msg.contains(".sops.yaml") && msg.contains("no matching creation rules"),
        "{msg}"
    );
    assert!(cfg.rule_for(&dir.path().join("x.enc.yaml")).is_ok());
}

#[test]
fn uint64_value_is_refused_like_sops() {
    let rule = CreationRule::for_recipients(&[RECIPIENT]);
    let err = encrypt(
        b"big: 18446744073709551615\n",
        Format::Yaml,
        &rule,
        "u.yaml",
    )
    .expect_err("uint64");
    assert!(err.to_string().contains("u.yaml:1:"), "{err}");
}
