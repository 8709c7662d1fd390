//! `homelabctl build` and `homelabctl check` end to end.

use crate::{homelabctl, testdata, workspace_root};

#[test]
fn build_prints_exactly_what_kubectl_kustomize_prints() {
    let case = testdata().join("kustomize/gen");
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
    let repo = workspace_root().join("crates/homelab-check/tests/fixtures/repo");
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
        .arg(workspace_root().join("crates/homelab-check/tests/fixtures/repo"))
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

/// `check` in a repository made by `init`, with no schema option and nothing beside the repository: the
/// objects validate against the built-in schemas, and a wrong field is reported at its file and line.
#[test]
fn check_validates_an_init_repository_against_the_built_in_schemas() {
    let t = tempfile::tempdir().unwrap();
    homelabctl().arg("init").arg(t.path()).assert().success();
    let clean = homelabctl()
        .args(["check", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8(clean.stdout).unwrap();
    assert_eq!(clean.status.code(), Some(0), "{text}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("0 error(s), 0 warning(s); ")
            && summary.contains(" object(s) validated against schemas, 0 without a schema"),
        "{text}"
    );
    let validated: usize = summary
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(validated >= 10, "{text}");

    let release = t
        .path()
        .join("kubernetes/infrastructure/kyverno/helmrelease.yaml");
    let source = std::fs::read_to_string(&release).unwrap();
    std::fs::write(
        &release,
        source.replace("  interval: 30m\n", "  interval: 30m\n  intervall: 5m\n"),
    )
    .unwrap();
    std::fs::write(
        t.path()
            .join("kubernetes/infrastructure/kyverno/widget.yaml"),
        "apiVersion: widgets.example.org/v1\nkind: Widget\nmetadata: {name: w}\n",
    )
    .unwrap();
    let kustomization = t
        .path()
        .join("kubernetes/infrastructure/kyverno/kustomization.yaml");
    let k = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(
        &kustomization,
        k.replace("resources:\n", "resources:\n- widget.yaml\n"),
    )
    .unwrap();
    let out = homelabctl()
        .args(["check", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("kubernetes/infrastructure/kyverno/helmrelease.yaml\n  9: error[schema] HelmRelease/kyverno: ")
            && text.contains("intervall"),
        "{text}"
    );
    assert!(
        text.contains("warning[schema] Widget/w: no schema for widgets.example.org/v1 Widget"),
        "{text}"
    );
    assert!(
        text.lines().last().is_some_and(|l| l.contains(&format!(
            "{} object(s) validated against schemas, 1 without a schema",
            validated
        ))),
        "{text}"
    );
}

/// An empty directory is not a passing check.
#[test]
fn check_in_an_empty_directory_says_there_is_nothing_to_check() {
    let t = tempfile::tempdir().unwrap();
    let out = homelabctl()
        .args(["check", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to check in"), "{err}");
    // The pre-commit subset only notes it: an empty repository's first commit has nothing to block.
    let fast = homelabctl()
        .args(["check", "--fast", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(fast.status.code(), Some(0));
    let err = String::from_utf8_lossy(&fast.stderr);
    assert!(err.contains("note: nothing to check in"), "{err}");
}

/// Outside git, `check` honours `.gitignore`: the age key `init` writes (and ignores) is no finding.
#[test]
fn check_outside_git_honours_gitignore() {
    let t = tempfile::tempdir().unwrap();
    homelabctl().arg("init").arg(t.path()).assert().success();
    assert!(!t.path().join(".git").exists());
    let out = homelabctl()
        .args(["check", "--dir"])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains(".age-key.txt"), "{text}");
}
