//! Alias bombs against every YAML entry of the store (plaintext parse, encrypt, decrypt, `.sops.yaml`): each
//! is refused at its line with go-yaml's message, as real sops refuses it, and ordinary anchors still work.

use homelab_goyaml::alias::{EXCESSIVE_ALIASING, billion_laughs};
use homelab_sops::{CreationRule, Format, Value, decrypt, encrypt, parse_plaintext};

use crate::common::{RECIPIENT, identities};

fn assert_refused(err: homelab_sops::SopsError, file: &str) {
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{file}:5:")) && text.ends_with(EXCESSIVE_ALIASING),
        "unexpected error: {text}"
    );
}

#[test]
fn plaintext_encrypt_and_decrypt_refuse_an_alias_bomb_at_its_line() {
    // Forty levels would be 10^40 scalars: only refusing before expansion can finish at all.
    let bomb = billion_laughs(40);
    let err = parse_plaintext(Format::Yaml, bomb.as_bytes(), "bomb.yaml").expect_err("parse");
    assert_refused(err, "bomb.yaml");
    let rule = CreationRule::for_recipients(&[RECIPIENT]);
    let err = encrypt(bomb.as_bytes(), Format::Yaml, &rule, "bomb.yaml").expect_err("encrypt");
    assert_refused(err, "bomb.yaml");
    let err = decrypt(
        bomb.as_bytes(),
        Format::Yaml,
        &identities(),
        "bomb.enc.yaml",
    )
    .expect_err("decrypt");
    assert_refused(err, "bomb.enc.yaml");
}

#[test]
fn a_sops_config_with_an_alias_bomb_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".sops.yaml");
    std::fs::write(&path, billion_laughs(40)).expect("write");
    let err = homelab_sops::SopsConfig::load(&path).expect_err("bomb");
    assert!(err.to_string().contains(EXCESSIVE_ALIASING), "{err}");
}

#[test]
fn ordinary_anchors_still_expand() {
    let text = "base: &b {user: admin, port: 22}\nweb: *b\ndb: *b\n";
    let docs = parse_plaintext(Format::Yaml, text.as_bytes(), "ok.yaml").expect("parse");
    let web = docs[0]
        .items()
        .find(|(k, _)| *k == "web")
        .map(|(_, v)| v.clone());
    assert!(matches!(web, Some(Value::Map(_))), "{web:?}");
}
