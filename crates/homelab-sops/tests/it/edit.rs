//! The edit flow: sops-written file → edit → sops sees exactly the edit; unchanged edits write nothing; a broken
//! edit never touches the original.

use std::path::Path;
use std::process::Command;

use homelab_sops::{EditOutcome, EditSession, SopsError, Style, decrypt_file, edit_file};

use crate::common::{identities, sops_decrypt, vectors};

/// Runs a shell script as the "editor" (`$1` is the file).
struct Scripted {
    scripts: Vec<&'static str>,
    reopen: bool,
    errors: usize,
}

impl EditSession for Scripted {
    fn open_editor(&mut self, path: &Path) -> Result<(), SopsError> {
        let script = if self.scripts.is_empty() {
            "true"
        } else {
            self.scripts.remove(0)
        };
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("editor")
            .arg(path)
            .status()
            .expect("sh");
        assert!(status.success());
        Ok(())
    }
    fn reopen_after_error(&mut self, _error: &SopsError) -> bool {
        self.errors += 1;
        self.reopen
    }
}

fn copy_vector(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(Path::new(name).file_name().expect("name"));
    std::fs::write(
        &path,
        std::fs::read(vectors().join("enc").join(name)).expect("vector"),
    )
    .expect("write");
    (dir, path)
}

#[test]
fn edit_of_a_sops_file_changes_exactly_what_was_edited() {
    for (name, script, from, to) in [
        (
            "basic.yaml",
            "sed -i 's/deeper: secret/deeper: changed/' \"$1\"",
            "deeper: secret",
            "deeper: changed",
        ),
        (
            "basic.json",
            "sed -i 's/\"x\"/\"y\"/' \"$1\"",
            "\"nested_in_list\": \"x\"",
            "\"nested_in_list\": \"y\"",
        ),
        (
            "basic.env",
            "sed -i 's/hunter2/hunter3/' \"$1\"",
            "hunter2",
            "hunter3",
        ),
        (
            "multidoc.yaml",
            "sed -i 's/b: two/b: three/' \"$1\"",
            "b: two",
            "b: three",
        ),
    ] {
        let (_dir, path) = copy_vector(name);
        let before = std::fs::read_to_string(&path).expect("read");
        let mut s = Scripted {
            scripts: vec![script],
            reopen: false,
            errors: 0,
        };
        let outcome = edit_file(&path, &identities(), &Style::default(), &mut s).expect("edit");
        assert_eq!(outcome, EditOutcome::Saved, "{name}");
        let expected = std::fs::read_to_string(vectors().join("dec").join(name))
            .expect("dec")
            .replace(from, to);
        assert_eq!(
            String::from_utf8(sops_decrypt(&path)).expect("utf8"),
            expected,
            "{name}"
        );
        // Small diff: only the edited value, lastmodified and mac lines differ.
        let after = std::fs::read_to_string(&path).expect("read");
        // `float_integral: 1.0` decrypts to `1`, which re-reads as an int: sops's own edit re-types it the same way.
        let changed: Vec<_> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b && !a.starts_with("float_integral:"))
            .collect();
        assert_eq!(before.lines().count(), after.lines().count(), "{name}");
        let per_doc = if name == "multidoc.yaml" { 2 } else { 1 };
        assert_eq!(changed.len(), 1 + 2 * per_doc, "{name}: {changed:#?}");
    }
}

#[test]
fn edit_without_changes_writes_nothing() {
    let (_dir, path) = copy_vector("types.yaml");
    let before = std::fs::read(&path).expect("read");
    let mut s = Scripted {
        scripts: vec!["true"],
        reopen: false,
        errors: 0,
    };
    assert_eq!(
        edit_file(&path, &identities(), &Style::default(), &mut s).expect("edit"),
        EditOutcome::Unchanged
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn broken_edit_leaves_the_original_untouched() {
    let (_dir, path) = copy_vector("basic.yaml");
    let before = std::fs::read(&path).expect("read");
    let mut s = Scripted {
        scripts: vec!["printf 'a: [unclosed\\n' > \"$1\""],
        reopen: false,
        errors: 0,
    };
    let err = edit_file(&path, &identities(), &Style::default(), &mut s).expect_err("parse error");
    assert!(err.to_string().contains("left unchanged"), "{err}");
    assert_eq!(s.errors, 1);
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn broken_edit_can_be_fixed_after_reopening() {
    let (_dir, path) = copy_vector("basic.yaml");
    let mut s = Scripted {
        scripts: vec![
            "printf 'a: [unclosed\\n' > \"$1\"",
            "printf 'a: fixed\\n' > \"$1\"",
        ],
        reopen: true,
        errors: 0,
    };
    assert_eq!(
        edit_file(&path, &identities(), &Style::default(), &mut s).expect("edit"),
        EditOutcome::Saved
    );
    assert_eq!(s.errors, 1);
    assert_eq!(sops_decrypt(&path), b"a: fixed\n");
}

/// The lines of an encrypted YAML file other than `lastmodified` and `mac` (which every seal renews) and
/// `float_integral` (`1.0` decrypts to `1`, which re-reads as an int, as in sops's own edit).
fn sealed_values(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            !["lastmodified:", "mac:", "float_integral:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect()
}

#[test]
fn every_reencryption_of_an_unchanged_plaintext_keeps_every_value() {
    // The IV stash is built on the first re-encryption (a plain decrypt does not build it); the second
    // one must find it in place.
    for name in ["basic.yaml", "types.yaml", "multidoc.yaml"] {
        let (_dir, path) = copy_vector(name);
        let before = std::fs::read_to_string(&path).expect("read");
        let mut d = decrypt_file(&path, &identities()).expect("decrypt");
        let plain = d.plaintext(&Style::default());
        for round in 0..2 {
            let after = d.reencrypt(&plain, &Style::default()).expect("reencrypt");
            let after = String::from_utf8(after).expect("utf8");
            assert_eq!(
                sealed_values(&after),
                sealed_values(&before),
                "{name}, round {round}"
            );
        }
    }
}
