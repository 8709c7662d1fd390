//! Failures kustomize reports are failures here too, with the field or file named.

use std::fs;
use std::process::Command;

use homelab_kustomize::{LoadRestrictor, Options, build_dir};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    if let Some(p) = dir.join(name).parent() {
        fs::create_dir_all(p).expect("mkdir");
    }
    fs::write(dir.join(name), text).expect("write");
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {a: b}\n";

#[test]
fn load_restrictor_refuses_files_outside_the_root_unless_disabled() {
    let t = tempfile::tempdir().expect("tempdir");
    write(t.path(), "common/cm.yaml", CM);
    write(
        t.path(),
        "app/kustomization.yaml",
        "resources: [../common/cm.yaml]\n",
    );
    let app = t.path().join("app");
    let err = build_dir(&app, &Options::default()).expect_err("restricted");
    assert!(err.to_string().contains("is not in or below"), "{err}");
    let kubectl = Command::new("kubectl")
        .arg("kustomize")
        .arg(&app)
        .output()
        .expect("kubectl");
    assert!(!kubectl.status.success(), "kubectl also refuses");
    let open = Options {
        load_restrictor: LoadRestrictor::None,
    };
    let ours = build_dir(&app, &open)
        .and_then(|o| o.to_yaml())
        .expect("unrestricted build");
    let theirs = Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(&app)
        .output()
        .expect("kubectl");
    assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout));
}

#[test]
fn unsupported_fields_are_errors_naming_the_field() {
    let t = tempfile::tempdir().expect("tempdir");
    write(
        t.path(),
        "kustomization.yaml",
        "resources: []\nhelmCharts: [{name: x}]\n",
    );
    let err = build_dir(t.path(), &Options::default()).expect_err("unsupported");
    assert!(err.to_string().contains("`helmCharts`"), "{err}");
    write(
        t.path(),
        "kustomization.yaml",
        "resources: []\nbogusField: 1\n",
    );
    let err = build_dir(t.path(), &Options::default()).expect_err("unknown");
    assert!(err.to_string().contains("`bogusField`"), "{err}");
}

#[test]
fn a_patch_without_a_match_is_an_error() {
    let t = tempfile::tempdir().expect("tempdir");
    write(t.path(), "cm.yaml", CM);
    write(
        t.path(),
        "kustomization.yaml",
        "resources: [cm.yaml]\npatches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: nope}\n    data: {x: y}\n",
    );
    let err = build_dir(t.path(), &Options::default()).expect_err("no match");
    assert!(err.to_string().contains("no matches for Id"), "{err}");
}

#[test]
fn a_component_listed_as_a_resource_is_an_error() {
    let t = tempfile::tempdir().expect("tempdir");
    write(
        t.path(),
        "comp/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
    );
    write(t.path(), "kustomization.yaml", "resources: [comp]\n");
    let err = build_dir(t.path(), &Options::default()).expect_err("component as resource");
    assert!(err.to_string().contains("Component"), "{err}");
}

#[test]
fn a_replacement_target_field_that_does_not_exist_is_an_error_without_create() {
    let t = tempfile::tempdir().expect("tempdir");
    write(t.path(), "cm.yaml", CM);
    write(
        t.path(),
        "kustomization.yaml",
        "resources: [cm.yaml]\nreplacements:\n- source: {kind: ConfigMap, name: shared, fieldPath: data.a}\n  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [data.missing]\n",
    );
    let err = build_dir(t.path(), &Options::default()).expect_err("missing target");
    assert!(
        err.to_string()
            .contains("unable to find field \"data.missing\""),
        "{err}"
    );
    let kubectl = Command::new("kubectl")
        .arg("kustomize")
        .arg(t.path())
        .output()
        .expect("kubectl");
    assert!(!kubectl.status.success());
}

#[test]
fn replicas_for_an_unknown_name_is_an_error() {
    let t = tempfile::tempdir().expect("tempdir");
    write(t.path(), "cm.yaml", CM);
    write(
        t.path(),
        "kustomization.yaml",
        "resources: [cm.yaml]\nreplicas: [{name: nope, count: 2}]\n",
    );
    let err = build_dir(t.path(), &Options::default()).expect_err("unknown replicas target");
    assert!(
        err.to_string()
            .contains("resource with name nope does not match"),
        "{err}"
    );
}
