//! Files homelab-sops encrypts are decrypted by the real sops to exactly the expected plaintext.

use std::path::Path;

use homelab_sops::{CreationRule, Format, Style, decrypt, encrypt, encrypt_file};

use crate::common::{RECIPIENT, RECIPIENT2, identities, sops_decrypt, vectors};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::write(&dst, std::fs::read(e.path()).expect("read")).expect("write");
        }
    }
}

#[test]
fn every_format_and_rule_of_the_vector_config_round_trips_through_real_sops() {
    let v = vectors();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(v.join(".sops.yaml"), dir.path().join(".sops.yaml")).expect("config");
    copy_dir(&v.join("plain"), dir.path());
    for f in [
        "basic.yaml",
        "basic.json",
        "basic.env",
        "blob.bin",
        "multidoc.yaml",
        "types.yaml",
        "regex/secret.yaml",
        "maconly/app.yaml",
        "multi/two.yaml",
    ] {
        let path = dir.path().join(f);
        let plain = std::fs::read(&path).expect("plain");
        encrypt_file(&path, &plain, dir.path()).unwrap_or_else(|e| panic!("{f}: {e}"));
        let got = sops_decrypt(&path);
        let expected = std::fs::read(v.join("dec").join(f)).expect("dec");
        assert!(
            got == expected,
            "{f}: sops decrypted\n{}",
            String::from_utf8_lossy(&got)
        );
    }
    // The rules took effect: regex file keeps metadata in clear, maconly marks itself, multi has two keys.
    let regex = std::fs::read_to_string(dir.path().join("regex/secret.yaml")).expect("read");
    assert!(
        regex.contains("    name: mysecret\n")
            && regex.contains("encrypted_regex: ^(data|stringData)$")
    );
    let maconly = std::fs::read_to_string(dir.path().join("maconly/app.yaml")).expect("read");
    assert!(maconly.contains("public_b: two\n") && maconly.contains("mac_only_encrypted: true"));
    let multi = std::fs::read_to_string(dir.path().join("multi/two.yaml")).expect("read");
    assert!(multi.contains(RECIPIENT) && multi.contains(RECIPIENT2));
}

/// Encrypts canonical plaintext (already in sops's rendering) and checks both sops and we give it back exactly.
fn round_trip(name: &str, format: Format, plain: &[u8]) {
    let rule = CreationRule::for_recipients(&[RECIPIENT, RECIPIENT2]);
    let enc = encrypt(plain, format, &rule, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, &enc).expect("write");
    let by_sops = sops_decrypt(&path);
    assert!(
        by_sops == plain,
        "{name}: sops decrypted\n{}\nexpected\n{}",
        String::from_utf8_lossy(&by_sops),
        String::from_utf8_lossy(plain)
    );
    let ours = decrypt(&enc, format, &identities(), name).expect("decrypt");
    assert_eq!(
        &ours.plaintext(&Style::default())[..],
        plain,
        "{name}: our decrypt"
    );
}

#[test]
fn unicode_keys_and_values_round_trip_through_sops() {
    round_trip(
        "unicode.yaml",
        Format::Yaml,
        "# kommentar ü\nclé: värde ✓\n日本: 東京\nemoji: \"smile \\U0001F600\"\nquote: '''x'\ncolon: 'a: b'\nnbsp: a\u{a0}b\n"
            .as_bytes(),
    );
    round_trip(
        "unicode.json",
        Format::Json,
        "{\n\t\"clé\": \"värde ✓ 😀\",\n\t\"日本\": \"東京\"\n}\n".as_bytes(),
    );
    round_trip(
        "unicode.env",
        Format::Dotenv,
        "# ü\nCLÉ=värde ✓\nJA=東京\n".as_bytes(),
    );
}

#[test]
fn deep_nesting_round_trips_through_sops() {
    let mut y = String::new();
    for i in 0..24 {
        y.push_str(&" ".repeat(i * 4));
        y.push_str(&format!("level{i}:\n"));
    }
    y.push_str(&" ".repeat(24 * 4));
    y.push_str("- - - leaf\n");
    y.push_str(&" ".repeat(24 * 4 + 4));
    y.push_str("- k: |\n");
    y.push_str(&" ".repeat(24 * 4 + 8));
    y.push_str("text\n");
    round_trip("deep.yaml", Format::Yaml, y.as_bytes());
    let mut j = String::from("{\n");
    for i in 0..20 {
        j.push_str(&"\t".repeat(i + 1));
        j.push_str(&format!("\"l{i}\": {{\n"));
    }
    j.push_str(&"\t".repeat(21));
    j.push_str("\"leaf\": [\n");
    j.push_str(&"\t".repeat(22));
    j.push_str("1.5\n");
    j.push_str(&"\t".repeat(21));
    j.push_str("]\n");
    for i in (0..21).rev() {
        j.push_str(&"\t".repeat(i));
        j.push_str("}\n");
    }
    round_trip("deep.json", Format::Json, j.as_bytes());
}

#[test]
fn empty_values_round_trip_through_sops() {
    round_trip(
        "empty.yaml",
        Format::Yaml,
        b"empty: \"\"\nnothing: null\nmap: {}\nlist: []\nitems:\n    - \"\"\n    - null\n    - {}\n",
    );
    round_trip(
        "empty.json",
        Format::Json,
        b"{\n\t\"e\": \"\",\n\t\"n\": null,\n\t\"m\": {},\n\t\"l\": []\n}\n",
    );
    round_trip("empty.env", Format::Dotenv, b"EMPTY=\nX=1\n");
    round_trip("empty.bin", Format::Binary, b"");
    round_trip("nul.bin", Format::Binary, &[0, 255, 0, 1, 2, 3, b'\n']);
}

#[test]
fn big_documents_round_trip_through_sops() {
    let mut y = String::from("# big\n");
    for i in 0..3000 {
        y.push_str(&format!(
            "key{i}:\n    name: value number {i}\n    \"n\": {i}\n    f: {i}.5\n    \"on\": true\n"
        ));
        y.push_str(&format!("    list:\n        - a{i}\n        - \"{i}\"\n"));
    }
    round_trip("big.yaml", Format::Yaml, y.as_bytes());
}
