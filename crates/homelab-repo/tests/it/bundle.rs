//! The Talos bundle: generated exactly once, reused, never regenerated when a cluster may exist.

use homelab_repo::{BundleSource, RepoError, TALOS_SECRETS_FILE};

use crate::support::TestRepo;

#[test]
fn bundle_is_created_once_then_reused_unchanged() {
    let t = TestRepo::new();
    let repo = t.repo();
    let (first, source) = repo.talos_bundle_or_create(false).expect("create");
    assert_eq!(source, BundleSource::Created);
    let path = t.root().join(TALOS_SECRETS_FILE);
    let bytes = std::fs::read(&path).expect("bundle written");
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    assert!(text.contains("sops:") && text.contains(&t.recipient));
    assert!(
        !text.contains(first.cluster.id.expose()),
        "the cluster id is stored encrypted"
    );

    for may_exist in [false, true] {
        let (again, source) = repo.talos_bundle_or_create(may_exist).expect("reuse");
        assert_eq!(source, BundleSource::Existing);
        assert_eq!(again.cluster.id.expose(), first.cluster.id.expose());
        assert_eq!(again, first);
    }
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "file untouched");

    let out = t.sops(&["-d", TALOS_SECRETS_FILE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = String::from_utf8(out.stdout).expect("utf8");
    let parsed = homelab_talos::secrets::SecretsBundle::from_yaml(&plain).expect("valid bundle");
    assert_eq!(parsed, first, "real sops decrypts the bundle");
}

#[test]
fn missing_bundle_when_a_cluster_may_exist_is_a_recovery_error_and_writes_nothing() {
    let t = TestRepo::new();
    let err = t
        .repo()
        .talos_bundle_or_create(true)
        .expect_err("must refuse");
    assert!(matches!(err, RepoError::BundleMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("homelabctl talos secrets import FILE"),
        "{msg}"
    );
    assert!(msg.contains(TALOS_SECRETS_FILE), "{msg}");
    assert!(!t.root().join(TALOS_SECRETS_FILE).exists());
}

#[test]
fn import_refuses_to_replace_a_bundle_unless_forced() {
    let (_t, repo, original) = TestRepo::with_bundle();
    let other = homelab_talos::secrets::SecretsBundle::generate().expect("generate");
    let yaml = other.to_yaml().expect("yaml");
    let err = repo.import_talos_bundle(&yaml, false).expect_err("exists");
    assert!(matches!(err, RepoError::BundleExists { .. }), "{err:?}");
    assert_eq!(repo.talos_bundle_required().expect("read"), original);
    repo.import_talos_bundle(&yaml, true).expect("forced");
    assert_eq!(repo.talos_bundle_required().expect("read"), other);
}

#[test]
fn import_rejects_a_file_that_is_not_a_bundle() {
    let t = TestRepo::new();
    let err = t
        .repo()
        .import_talos_bundle("cluster: {id: x}\n", false)
        .expect_err("invalid");
    assert!(matches!(err, RepoError::BundleInvalid { .. }), "{err:?}");
    assert!(!t.root().join(TALOS_SECRETS_FILE).exists());
}
