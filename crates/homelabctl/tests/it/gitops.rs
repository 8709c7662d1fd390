//! `homelabctl build` and `homelabctl check` end to end.

use crate::{homelabctl, shared, workspace_root};

#[test]
fn build_prints_exactly_what_kubectl_kustomize_prints() {
    let case = shared().join("testdata/kustomize/gen");
    let expected = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    let out = homelabctl()
        .arg("build")
        .arg(case.join("overlay"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn build_flux_applies_post_build_substitution() {
    let repo = workspace_root().join("crates/homelab-gitops/tests/fixtures/repo");
    let out = homelabctl()
        .arg("build")
        .arg(&repo)
        .args(["--flux", "flux-system/web"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  replicas: 3\n"), "{text}");
    assert!(text.contains("value: Europe/Paris"), "{text}");
}

#[test]
fn check_exits_one_with_findings_grouped_by_file() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("kubernetes/app")).unwrap();
    std::fs::write(
        t.path().join("kubernetes/app/kustomization.yaml"),
        "resources: [s.yaml]\n",
    )
    .unwrap();
    std::fs::write(
        t.path().join("kubernetes/app/s.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: abc}\n",
    )
    .unwrap();
    let out = homelabctl()
        .args(["check", "--fast", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("kubernetes/app/s.yaml\n  1: error[secret] Secret/s is not encrypted"),
        "{text}"
    );
    let ok = homelabctl()
        .args(["check", "--dir"])
        .arg(workspace_root().join("crates/homelab-gitops/tests/fixtures/repo"))
        .arg("--schema-dir")
        .arg(shared().join("schemas"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["errors"], 0);
}
