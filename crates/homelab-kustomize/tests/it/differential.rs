//! Every case (shared testdata and our own fixtures) builds byte for byte like its recorded
//! `expected.yaml`, and like a live `kubectl kustomize` run on the same directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use homelab_kustomize::{Options, build_dir};

fn cases(root: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for e in entries.flatten() {
        let case = e.path();
        let expected = case.join("expected.yaml");
        if !expected.is_file() {
            continue;
        }
        let dir = if case.join("overlay").is_dir() {
            case.join("overlay")
        } else {
            case.clone()
        };
        out.push((e.file_name().to_string_lossy().to_string(), dir, expected));
    }
    out.sort();
    out
}

fn kubectl_kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl must be installed (.ci/install-peers)");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kubectl prints UTF-8")
}

fn check_all(root: &Path, min_cases: usize) {
    let cases = cases(root);
    assert!(
        cases.len() >= min_cases,
        "expected at least {min_cases} cases under {}",
        root.display()
    );
    let mut failures = Vec::new();
    for (name, dir, expected) in &cases {
        let want = std::fs::read_to_string(expected).expect("expected.yaml readable");
        let got = build_dir(dir, &Options::default()).and_then(|o| o.to_yaml());
        match got {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{name}: output differs from expected.yaml\n--- got\n{got}"
            )),
            Err(e) => failures.push(format!("{name}: build failed: {e}")),
        }
        let live = kubectl_kustomize(dir);
        if live != want {
            failures.push(format!(
                "{name}: kubectl kustomize no longer matches expected.yaml (regenerate fixtures)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shared_testdata_cases_build_byte_identical_to_kubectl_kustomize() {
    check_all(&crate::testdata().join("kustomize"), 5);
}

#[test]
fn own_fixture_cases_build_byte_identical_to_kubectl_kustomize() {
    check_all(&crate::fixtures_dir(), 9);
}
