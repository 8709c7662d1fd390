//! `init` writes the Flux tree; `flux add-component` (formerly `gitops add-component`, still accepted)
//! extends it.

use predicates::prelude::*;

use super::homelabctl;

/// The output of the real `kubectl kustomize DIR`, which must succeed.
fn kustomize(dir: &std::path::Path) -> String {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn init_writes_the_flux_tree_that_kustomize_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    for file in [
        "kubernetes/kustomization.yaml",
        "kubernetes/flux-system/gotk-sync.yaml",
        "kubernetes/flux-system/infrastructure.yaml",
        "kubernetes/flux-system/apps.yaml",
        "kubernetes/infrastructure/nfs-provisioner/helmrelease.yaml",
        "kubernetes/infrastructure/kyverno/policies/clusterpolicy.yaml",
        "kubernetes/apps/kustomization.yaml",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let release = std::fs::read_to_string(
        dir.path()
            .join("kubernetes/infrastructure/nfs-provisioner/helmrelease.yaml"),
    )
    .expect("read");
    assert!(release.contains("server: nas.home") && release.contains("path: /volume1/kubernetes"));
    kustomize(&dir.path().join("kubernetes"));
}

#[test]
fn init_refuses_everything_when_a_flux_file_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("kubernetes/apps")).expect("mkdir");
    std::fs::write(
        dir.path().join("kubernetes/apps/kustomization.yaml"),
        "mine\n",
    )
    .expect("write");
    homelabctl()
        .arg("init")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"))
        .stderr(predicate::str::contains("kustomization.yaml"));
    assert!(!dir.path().join("homelab.yaml").exists());
    assert!(!dir.path().join("kubernetes/kustomization.yaml").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kubernetes/apps/kustomization.yaml"))
            .expect("read"),
        "mine\n"
    );
}

#[test]
fn add_component_registers_a_new_directory_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    let config = dir.path().join("homelab.yaml");
    let add = || {
        let mut cmd = homelabctl();
        cmd.args(["flux", "add-component", "cert-manager", "--repo-url"])
            .arg("https://charts.jetstack.io")
            .args(["--version", "1.19.1", "--config"])
            .arg(&config);
        cmd
    };
    add()
        .assert()
        .success()
        .stdout(predicate::str::contains("cert-manager/helmrelease.yaml"));
    let list = dir
        .path()
        .join("kubernetes/infrastructure/kustomization.yaml");
    let text = std::fs::read_to_string(&list).expect("read");
    assert!(text.contains("- cert-manager"), "{text}");
    add()
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read_to_string(&list).expect("read"), text);
    assert!(
        kustomize(&dir.path().join("kubernetes/infrastructure")).contains("chart: cert-manager")
    );
}

#[test]
fn the_old_gitops_command_still_adds_a_component_but_is_not_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    homelabctl()
        .args(["gitops", "add-component", "cert-manager", "--repo-url"])
        .arg("https://charts.jetstack.io")
        .args(["--version", "1.19.1", "--config"])
        .arg(dir.path().join("homelab.yaml"))
        .assert()
        .success();
    assert!(
        dir.path()
            .join("kubernetes/infrastructure/cert-manager/helmrelease.yaml")
            .is_file()
    );
    let help = homelabctl().arg("--help").output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(!help.contains("gitops"), "{help}");
    assert!(help.contains("add-component"), "{help}");
}

#[test]
fn add_component_rejects_a_version_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    homelabctl()
        .args([
            "gitops",
            "add-component",
            "x",
            "--repo-url",
            "https://e.example",
            "--version",
            "^1",
            "--config",
        ])
        .arg(dir.path().join("homelab.yaml"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not an exact SemVer"));
    assert!(!dir.path().join("kubernetes/infrastructure/x").exists());
}
