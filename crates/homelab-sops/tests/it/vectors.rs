//! Every file real sops encrypted decrypts (MAC verified) to exactly what real sops decrypted.

use homelab_sops::{Style, decrypt_file};

use crate::common::{identities, identities2, vectors};

const FILES: [&str; 9] = [
    "basic.yaml",
    "basic.json",
    "basic.env",
    "blob.bin",
    "multidoc.yaml",
    "types.yaml",
    "regex/secret.yaml",
    "maconly/app.yaml",
    "multi/two.yaml",
];

fn check(enc: &str, dec: &str) {
    let v = vectors();
    let d = decrypt_file(&v.join("enc").join(enc), &identities())
        .unwrap_or_else(|e| panic!("{enc}: {e}"));
    let expected = std::fs::read(v.join("dec").join(dec)).expect("dec file");
    let got = d.plaintext(&Style::default());
    assert!(
        got[..] == expected[..],
        "{enc}: plaintext differs\n--- ours\n{}\n--- sops\n{}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn every_sops_vector_decrypts_to_the_sops_plaintext() {
    for f in FILES {
        check(f, f);
    }
}

#[test]
fn file_encrypted_with_age_flag_decrypts_like_the_rule_based_one() {
    check("basic.cli.yaml", "basic.yaml");
}

#[test]
fn second_recipient_decrypts_the_two_recipient_file() {
    let v = vectors();
    let d = decrypt_file(&v.join("enc/multi/two.yaml"), &identities2()).expect("decrypt with key2");
    assert_eq!(
        &d.plaintext(&Style::default())[..],
        &std::fs::read(v.join("dec/multi/two.yaml")).expect("dec")[..]
    );
    assert_eq!(d.recipients().len(), 2);
}

#[test]
fn extract_prints_one_value_without_newline() {
    let v = vectors();
    let d = decrypt_file(&v.join("enc/basic.yaml"), &identities()).expect("decrypt");
    let got = d
        .extract(r#"["nested"]["deep"]["deeper"]"#, &Style::default())
        .expect("extract");
    assert_eq!(
        &got[..],
        &std::fs::read(v.join("dec/extract_deeper.txt")).expect("extract file")[..]
    );
    assert!(
        d.extract(r#"["nested"]["nope"]"#, &Style::default())
            .is_err()
    );
}

#[test]
fn files_from_an_independent_implementation_verify() {
    let v = vectors();
    for f in [
        "basic.yaml",
        "basic.json",
        "basic.env",
        "blob.bin",
        "multidoc.yaml",
        "types.yaml",
    ] {
        decrypt_file(&v.join("py_enc").join(f), &identities())
            .unwrap_or_else(|e| panic!("py_enc/{f}: {e}"));
    }
}

#[test]
fn lookup_reads_typed_values() {
    let d = decrypt_file(&vectors().join("enc/basic.yaml"), &identities()).expect("decrypt");
    assert_eq!(
        d.lookup(&["nested", "deep", "deeper"])
            .and_then(|v| v.as_str()),
        Some("secret")
    );
    assert_eq!(d.lookup(&["int"]), Some(&homelab_sops::Value::Int(42)));
    assert_eq!(
        d.lookup(&["nested", "list", "3", "nested_in_list"])
            .and_then(|v| v.as_str()),
        Some("x")
    );
}
