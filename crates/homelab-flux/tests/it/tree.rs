//! The generated tree builds with the real kustomize and every object validates, with our schemas and
//! with `kubernetes-validate`.

use std::collections::BTreeSet;

use homelab_config::template::InitValues;
use serde_json::{Value, json};

use crate::schemas;
use crate::support::{
    config_for, id, kustomization_dirs, kustomize_build, reference_config, write_tree,
};

fn ids(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().map(id).collect()
}

#[test]
fn tree_has_exactly_the_files_of_the_pattern() {
    let files = homelab_flux::tree(&reference_config()).unwrap();
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    let expected = [
        "kubernetes/kustomization.yaml",
        "kubernetes/flux-system/kustomization.yaml",
        "kubernetes/flux-system/gotk-sync.yaml",
        "kubernetes/flux-system/infrastructure.yaml",
        "kubernetes/flux-system/apps.yaml",
        "kubernetes/infrastructure/kustomization.yaml",
        "kubernetes/infrastructure/nfs-provisioner/namespace.yaml",
        "kubernetes/infrastructure/nfs-provisioner/helmrepository.yaml",
        "kubernetes/infrastructure/nfs-provisioner/helmrelease.yaml",
        "kubernetes/infrastructure/nfs-provisioner/storageclass.yaml",
        "kubernetes/infrastructure/nfs-provisioner/kustomization.yaml",
        "kubernetes/infrastructure/kyverno/namespace.yaml",
        "kubernetes/infrastructure/kyverno/helmrepository.yaml",
        "kubernetes/infrastructure/kyverno/helmrelease.yaml",
        "kubernetes/infrastructure/kyverno/kustomization.yaml",
        "kubernetes/infrastructure/kyverno/policies/clusterpolicy.yaml",
        "kubernetes/infrastructure/kyverno/policies/kustomization.yaml",
        "kubernetes/apps/kustomization.yaml",
    ];
    assert_eq!(paths, expected);
}

#[test]
fn every_directory_builds_with_kubectl_kustomize_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let dirs = kustomization_dirs(&root);
    assert_eq!(dirs.len(), 7, "{dirs:?}");
    let mut seen = 0;
    for dir in &dirs {
        for object in kustomize_build(dir) {
            let errors = schemas::errors(&object);
            assert!(
                errors.is_empty(),
                "{} in {}: {errors:#?}",
                id(&object),
                dir.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "only {seen} objects rendered");
}

#[test]
fn root_build_is_scoped_to_the_flux_system_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let objects = kustomize_build(&root);
    let expected: BTreeSet<String> = [
        "GitRepository/flux-system/flux-system",
        "Kustomization/flux-system/flux-system",
        "Kustomization/flux-system/infrastructure",
        "Kustomization/flux-system/infrastructure-policies",
        "Kustomization/flux-system/apps",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids(&objects), expected);
}

#[test]
fn flux_kustomizations_decrypt_with_sops_age_and_apps_waits_for_infrastructure() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let objects = kustomize_build(&root.join("flux-system"));
    let by_name = |name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == "Kustomization" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let sops = json!({"provider": "sops", "secretRef": {"name": "sops-age"}});
    for name in ["infrastructure", "apps", "infrastructure-policies"] {
        assert_eq!(by_name(name)["spec"]["decryption"], sops, "{name}");
    }
    assert_eq!(
        by_name("apps")["spec"]["dependsOn"],
        json!([{"name": "infrastructure"}])
    );
    assert_eq!(by_name("apps")["spec"]["path"], "./kubernetes/apps");
    assert_eq!(
        by_name("infrastructure")["spec"]["path"],
        "./kubernetes/infrastructure"
    );
    assert_eq!(
        by_name("infrastructure-policies")["spec"]["dependsOn"],
        json!([{"name": "infrastructure"}])
    );
    let root_ks = by_name("flux-system");
    assert_eq!(root_ks["spec"]["path"], "./kubernetes");
    let repo = objects
        .iter()
        .find(|o| o["kind"] == "GitRepository")
        .unwrap();
    assert_eq!(
        repo["spec"]["url"],
        "ssh://git@github.com/OWNER/homelab.git"
    );
    assert_eq!(repo["spec"]["ref"]["branch"], "main");
}

#[test]
fn nfs_provisioner_points_at_the_configured_export_with_a_default_storage_class() {
    let values = InitValues {
        nfs_server: "192.168.20.20".into(),
        nfs_export: "/volume2/k8s".into(),
        ..InitValues::reference()
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&config_for(&values), tmp.path());
    let objects = kustomize_build(&root.join("infrastructure/nfs-provisioner"));
    assert_eq!(
        ids(&objects),
        [
            "Namespace//nfs-provisioner",
            "HelmRepository/nfs-provisioner/nfs-provisioner",
            "HelmRelease/nfs-provisioner/nfs-provisioner",
            "StorageClass//nfs-client",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let release = objects.iter().find(|o| o["kind"] == "HelmRelease").unwrap();
    assert_eq!(release["spec"]["values"]["nfs"]["server"], "192.168.20.20");
    assert_eq!(release["spec"]["values"]["nfs"]["path"], "/volume2/k8s");
    assert_eq!(release["spec"]["chart"]["spec"]["version"], "4.0.18");
    let class = objects
        .iter()
        .find(|o| o["kind"] == "StorageClass")
        .unwrap();
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(
        class["provisioner"],
        release["spec"]["values"]["storageClass"]["provisionerName"]
    );
}

#[test]
fn kyverno_policy_audits_flux_and_kyverno_images_outside_system_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let objects = kustomize_build(&root.join("infrastructure/kyverno/policies"));
    assert_eq!(objects.len(), 1);
    let rule = &objects[0]["spec"]["rules"][0];
    assert_eq!(
        rule["exclude"]["any"][0]["resources"]["namespaces"],
        json!(["kube-system", "kyverno"])
    );
    let images: Vec<&Value> = rule["verifyImages"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|v| assert_eq!(v["failureAction"], "Audit"))
        .flat_map(|v| v["imageReferences"].as_array().unwrap())
        .collect();
    assert_eq!(
        images,
        [&json!("ghcr.io/fluxcd/*"), &json!("ghcr.io/kyverno/*")]
    );
    let release = kustomize_build(&root.join("infrastructure/kyverno"))
        .into_iter()
        .find(|o| o["kind"] == "HelmRelease")
        .unwrap();
    assert_eq!(release["spec"]["chart"]["spec"]["chart"], "kyverno");
}

#[test]
fn without_nfs_the_tree_has_only_kyverno() {
    let mut config = reference_config();
    config.gitops.as_mut().unwrap().nfs = None;
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&config, tmp.path());
    let objects = kustomize_build(&root.join("infrastructure"));
    assert!(
        objects
            .iter()
            .all(|o| o["metadata"]["namespace"] != "nfs-provisioner")
    );
    assert!(!root.join("infrastructure/nfs-provisioner").exists());
}

#[test]
fn apps_builds_to_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    assert!(kustomize_build(&root.join("apps")).is_empty());
}

#[test]
fn built_in_kinds_get_the_same_verdict_from_kubernetes_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    let mut builtin = Vec::new();
    for dir in kustomization_dirs(&root) {
        builtin.extend(
            kustomize_build(&dir)
                .into_iter()
                .filter(schemas::is_builtin),
        );
    }
    assert!(builtin.len() >= 3, "{builtin:?}");
    // A negative control per kind: an unknown field must be rejected by both validators.
    let mut cases: Vec<(Value, bool)> = builtin.iter().map(|o| (o.clone(), true)).collect();
    for o in &builtin {
        let mut bad = o.clone();
        bad["metadata"]["bogusField"] = json!(1);
        cases.push((bad, false));
    }
    let scratch = tempfile::tempdir().unwrap();
    for (i, (object, valid)) in cases.iter().enumerate() {
        let ours = schemas::errors(object).is_empty();
        let theirs = schemas::kubernetes_validate(object, scratch.path(), &format!("{i}.json"));
        assert_eq!(ours, theirs, "verdicts differ for {}", id(object));
        assert_eq!(
            ours,
            *valid,
            "{}: {:?}",
            id(object),
            schemas::errors(object)
        );
    }
}

#[test]
fn crd_schemas_reject_a_misspelt_field() {
    let tmp = tempfile::tempdir().unwrap();
    let root = write_tree(&reference_config(), tmp.path());
    for object in kustomize_build(&root.join("flux-system")) {
        let mut bad = object.clone();
        bad["spec"]["intervall"] = json!("1m");
        assert!(
            !schemas::errors(&bad).is_empty(),
            "{} accepted a typo",
            id(&object)
        );
    }
}
