//! `check` on a Flux repository: clean when clean; each kind of problem reported at its file and line.

use homelab_check::{CheckOptions, Format, Severity, default_checkers, render, run};

fn opts() -> CheckOptions {
    CheckOptions {
        schema: crate::schema_options(),
        ..Default::default()
    }
}

#[test]
fn the_fixture_repository_has_no_errors() {
    let report =
        run(&crate::fixture_repo(), &opts(), &default_checkers(), false).expect("check runs");
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn problems_are_reported_with_file_and_line() {
    let t = crate::copy_fixture();
    let root = t.path();
    // a schema error after substitution, a plaintext Secret, an unencrypted file matched by .sops.yaml
    let dep = root.join("kubernetes/apps/web/app/deployment.yaml");
    let text = std::fs::read_to_string(&dep)
        .expect("read")
        .replace("${REPLICAS:=1}", "${REPLICAS:=1}\n  bogusField: true");
    std::fs::write(&dep, text).expect("write");
    std::fs::write(
        root.join("kubernetes/apps/web/app/secret.yaml"),
        "# plain\napiVersion: v1\nkind: Secret\nmetadata: {name: leaked}\nstringData: {password: hunter2}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("talos-secrets.enc.yaml"),
        "cluster: {secret: plain}\n",
    )
    .expect("write");
    let report = run(root, &opts(), &default_checkers(), false).expect("check runs");
    let find = |check: &str, file: &str| {
        report
            .findings
            .iter()
            .find(|f| f.check == check && f.file == file)
    };
    let schema = find("schema", "kubernetes/apps/web/app/deployment.yaml").expect("schema finding");
    // The line of the unknown field itself, not of the object.
    let field_line = std::fs::read_to_string(&dep)
        .expect("read")
        .lines()
        .position(|l| l.trim_start().starts_with("bogusField:"))
        .map(|i| i + 1);
    assert_eq!(Some(schema.line), field_line);
    assert!(schema.message.contains("bogusField"), "{}", schema.message);
    let secret =
        find("secret", "kubernetes/apps/web/app/secret.yaml").expect("plaintext secret finding");
    assert_eq!(secret.line, 2);
    assert!(find("sops", "talos-secrets.enc.yaml").is_some());
    let text = render(&report, Format::Text);
    assert!(
        text.contains("kubernetes/apps/web/app/secret.yaml\n  2: error[secret]"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "secret values never printed");
    let json: serde_json::Value =
        serde_json::from_str(&render(&report, Format::Json)).expect("json");
    assert!(json["errors"].as_u64().unwrap_or(0) >= 3);
    let sarif: serde_json::Value =
        serde_json::from_str(&render(&report, Format::Sarif)).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif["runs"][0]["results"]
            .as_array()
            .is_some_and(|r| r.len() >= 3)
    );
}

#[test]
fn fast_mode_skips_flux_builds_and_schemas() {
    let t = crate::copy_fixture();
    let dep = t.path().join("kubernetes/apps/web/app/deployment.yaml");
    let text = std::fs::read_to_string(&dep)
        .expect("read")
        .replace("  replicas:", "  bogusField: 1\n  replicas:");
    std::fs::write(&dep, text).expect("write");
    let fast = run(t.path(), &opts(), &default_checkers(), true).expect("check runs");
    assert_eq!(fast.errors(), 0, "{:#?}", fast.findings);
    let full = run(t.path(), &opts(), &default_checkers(), false).expect("check runs");
    assert!(full.errors() > 0);
}

#[test]
fn a_broken_kustomization_is_a_finding_for_both_builds() {
    let t = crate::copy_fixture();
    std::fs::write(
        t.path().join("kubernetes/apps/web/app/kustomization.yaml"),
        "resources: [missing.yaml]\n",
    )
    .expect("write");
    let report = run(t.path(), &opts(), &default_checkers(), false).expect("check runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.check == "kustomize"
                && f.file == "kubernetes/apps/web/app/kustomization.yaml")
    );
    assert!(
        report.findings.iter().any(|f| f.check == "flux"
            && f.file == "kubernetes/flux-system/apps.yaml"
            && f.line == 1)
    );
}

#[test]
fn without_a_flux_tree_manifest_checks_are_skipped_with_a_note() {
    let t = tempfile::tempdir().expect("tempdir");
    let report = run(t.path(), &opts(), &default_checkers(), false).expect("check runs");
    assert!(report.findings.is_empty());
    assert!(report.notes.iter().any(|n| n.contains("no Flux tree")));
}

#[test]
fn an_unformatted_homelab_yaml_is_a_finding() {
    let t = crate::copy_fixture();
    let path = t.path().join("homelab.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, format!("{text}\n\n\n")).expect("write");
    let report = run(t.path(), &opts(), &default_checkers(), true).expect("check runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.check == "config" && f.message.contains("canonical layout")),
        "{:#?}",
        report.findings
    );
}
