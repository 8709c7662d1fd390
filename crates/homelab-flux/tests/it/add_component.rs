//! `add_component`: a new directory following the pattern, registered in infrastructure/kustomization.yaml.

use std::fs;

use homelab_flux::{AddError, Component, ComponentError, add_component};
use serde_json::Value;

use crate::schemas;
use crate::support::{id, kustomize_build, reference_config, write_tree};

fn cert_manager() -> Component {
    Component {
        name: "cert-manager".into(),
        chart: "cert-manager".into(),
        repo_url: "https://charts.jetstack.io".into(),
        version: "1.19.1".into(),
        values: Value::Null,
        extra: Vec::new(),
    }
}

#[test]
fn added_component_builds_validates_and_is_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let written = add_component(&root, &cert_manager()).unwrap();
    assert_eq!(written.len(), 5);
    let list = fs::read_to_string(root.join("infrastructure/kustomization.yaml")).unwrap();
    assert_eq!(
        homelab_flux::kustomization::resources(&list).unwrap(),
        ["nfs-provisioner", "kyverno", "cert-manager"]
    );
    let objects = kustomize_build(&root.join("infrastructure"));
    let mine: Vec<&Value> = objects
        .iter()
        .filter(|o| id(o).contains("cert-manager"))
        .collect();
    assert_eq!(mine.len(), 3, "{mine:?}");
    for object in &objects {
        assert_eq!(
            schemas::errors(object),
            Vec::<String>::new(),
            "{}",
            id(object)
        );
    }
}

#[test]
fn adding_an_existing_component_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let list = root.join("infrastructure/kustomization.yaml");
    let before = fs::read_to_string(&list).unwrap();
    let kyverno = Component {
        name: "kyverno".into(),
        ..cert_manager()
    };
    assert!(matches!(
        add_component(&root, &kyverno),
        Err(AddError::Exists { .. })
    ));
    assert_eq!(fs::read_to_string(&list).unwrap(), before);

    // Listed but without a directory: refused too, and nothing is created.
    fs::write(&list, format!("{before}- cert-manager\n")).unwrap();
    assert!(matches!(
        add_component(&root, &cert_manager()),
        Err(AddError::Kustomization { .. })
    ));
    assert!(!root.join("infrastructure/cert-manager").exists());
}

#[test]
fn invalid_components_and_missing_trees_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = Component {
        version: "^1.0.0".into(),
        ..cert_manager()
    };
    assert!(matches!(
        add_component(tmp.path(), &bad),
        Err(AddError::Invalid(ComponentError::Version(_)))
    ));
    assert!(matches!(
        add_component(tmp.path(), &cert_manager()),
        Err(AddError::NoInfrastructure { .. })
    ));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}
