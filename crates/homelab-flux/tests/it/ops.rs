//! The Flux operations against an in-memory API: sops-key, bootstrap (manifests from a local HTTP
//! server, pinned by SHA-256), reconcile and readiness. Each runs twice and must leave exactly the
//! expected objects; the age key never appears in anything printable.

use std::collections::BTreeSet;

use base64::Engine as _;
use homelab_flux::bootstrap::{self, BootstrapError, InstallSource};
use homelab_flux::cluster::{Action, ObjectRef};
use homelab_flux::identity::AgeIdentity;
use serde_json::{Value, json};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::fake_cluster::MemCluster;
use crate::support::reference_config;

const KEY: &str = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

fn identity() -> AgeIdentity {
    AgeIdentity::from_text(Zeroizing::new(format!("# test identity\n{KEY}\n")), "test").unwrap()
}

fn refs(cluster: &MemCluster) -> BTreeSet<String> {
    cluster.objects().keys().map(ToString::to_string).collect()
}

#[tokio::test]
async fn sops_key_twice_creates_the_secret_once() {
    let cluster = MemCluster::default();
    let first = homelab_flux::sops_key(&cluster, &identity()).await.unwrap();
    assert_eq!(first, Action::Created);
    let writes = cluster.writes();
    let second = homelab_flux::sops_key(&cluster, &identity()).await.unwrap();
    assert_eq!(second, Action::Unchanged);
    assert_eq!(cluster.writes(), writes, "the second run wrote something");
    assert_eq!(
        refs(&cluster),
        ["Namespace flux-system", "Secret flux-system/sops-age"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let secret =
        &cluster.objects()[&ObjectRef::new("v1", "Secret", Some("flux-system"), "sops-age")];
    let data = secret["data"].as_object().unwrap();
    assert_eq!(data.len(), 1);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data["age.agekey"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        format!("# test identity\n{KEY}\n")
    );
    assert!(!format!("{first:?}{second:?}{:?}", identity()).contains(KEY));
}

#[tokio::test]
async fn sops_key_replaces_a_stale_secret_with_exactly_the_identity() {
    let cluster = MemCluster::default();
    cluster.seed(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    );
    cluster.seed(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "sops-age", "namespace": "flux-system"},
        "data": {"age.agekey": "b2xk", "extra": "eA=="}}),
    );
    let action = homelab_flux::sops_key(&cluster, &identity()).await.unwrap();
    assert_eq!(action, Action::Updated);
    let secret =
        &cluster.objects()[&ObjectRef::new("v1", "Secret", Some("flux-system"), "sops-age")];
    assert_eq!(
        secret["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["age.agekey"]
    );
    assert_eq!(
        homelab_flux::sops_key(&cluster, &identity()).await.unwrap(),
        Action::Unchanged
    );
}

/// A small stand-in for Flux's install.yaml: namespace, CRDs for the sync kinds, a controller.
pub fn install_yaml() -> String {
    let crd = |plural: &str, kind: &str, group: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\n\
             spec:\n  group: {group}\n  names:\n    kind: {kind}\n    plural: {plural}\n  scope: Namespaced\n  \
             versions:\n  - name: v1\n    served: true\n    storage: true\n"
        )
    };
    [
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n  labels:\n    app.kubernetes.io/instance: flux-system\n".to_string(),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kustomize-controller\n  namespace: flux-system\nspec:\n  replicas: 1\n".to_string(),
        crd("gitrepositories", "GitRepository", "source.toolkit.fluxcd.io"),
        crd("kustomizations", "Kustomization", "kustomize.toolkit.fluxcd.io"),
    ]
    .join("---\n")
}

/// Serves `body` over HTTP on 127.0.0.1 (ephemeral port) for as long as the test runs.
async fn serve(body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/v2.9.5/install.yaml")
}

fn sha256(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn bootstrap_twice_is_a_no_op() {
    let body = install_yaml();
    let source = InstallSource {
        url: serve(body.clone()).await,
        sha256: sha256(&body),
    };
    let http = bootstrap::http_client().unwrap();
    let gitops = reference_config().gitops.unwrap();
    let cluster = MemCluster::default();

    let manifests = bootstrap::fetch(&http, &source).await.unwrap();
    let first = bootstrap::bootstrap(&cluster, &manifests, &gitops)
        .await
        .unwrap();
    assert_eq!(first.changed(), 6);
    assert!(
        first.notes.iter().any(|n| n.contains("deploy key")),
        "{:?}",
        first.notes
    );
    let expected: BTreeSet<String> = [
        "Namespace flux-system",
        "Deployment flux-system/kustomize-controller",
        "CustomResourceDefinition gitrepositories.source.toolkit.fluxcd.io",
        "CustomResourceDefinition kustomizations.kustomize.toolkit.fluxcd.io",
        "GitRepository flux-system/flux-system",
        "Kustomization flux-system/flux-system",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(refs(&cluster), expected);
    let writes = cluster.writes();

    let manifests = bootstrap::fetch(&http, &source).await.unwrap();
    let second = bootstrap::bootstrap(&cluster, &manifests, &gitops)
        .await
        .unwrap();
    assert_eq!(second.changed(), 0, "{:?}", second.applied);
    assert_eq!(cluster.writes(), writes);
    assert_eq!(refs(&cluster), expected);
    let repo = &cluster.objects()[&ObjectRef::new(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        Some("flux-system"),
        "flux-system",
    )];
    assert_eq!(
        repo["spec"]["url"],
        "ssh://git@github.com/OWNER/homelab.git"
    );
}

#[tokio::test]
async fn bootstrap_refuses_manifests_with_another_checksum() {
    let body = install_yaml();
    let source = InstallSource {
        url: serve(body.clone()).await,
        sha256: sha256("something else"),
    };
    let err = bootstrap::fetch(&bootstrap::http_client().unwrap(), &source)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BootstrapError::Checksum { ref actual, .. } if *actual == sha256(&body)),
        "{err}"
    );
    let bad = InstallSource {
        sha256: "abc".into(),
        ..source
    };
    assert!(matches!(
        bootstrap::fetch(&bootstrap::http_client().unwrap(), &bad).await,
        Err(BootstrapError::BadChecksum(_))
    ));
}

#[tokio::test]
async fn reconcile_annotates_the_kustomization_and_its_source() {
    let body = install_yaml();
    let cluster = MemCluster::default();
    let manifests = bootstrap::parse_manifests(&body).unwrap();
    bootstrap::bootstrap(&cluster, &manifests, &reference_config().gitops.unwrap())
        .await
        .unwrap();
    let touched = homelab_flux::reconcile(&cluster, "flux-system", true)
        .await
        .unwrap();
    assert_eq!(touched.len(), 2);
    for r in &touched {
        let o = &cluster.objects()[r];
        let at = o["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
            .as_str()
            .unwrap();
        assert!(at.contains('T') && at.ends_with('Z'), "{at}");
    }
    assert!(matches!(
        homelab_flux::reconcile(&cluster, "apps", false).await,
        Err(homelab_flux::ReconcileError::Missing(_))
    ));
}

#[tokio::test]
async fn readiness_comes_from_each_kustomizations_ready_condition() {
    let cluster = MemCluster::default();
    let manifests = bootstrap::parse_manifests(&install_yaml()).unwrap();
    bootstrap::bootstrap(&cluster, &manifests, &reference_config().gitops.unwrap())
        .await
        .unwrap();
    let ks = |name: &str, status: Value| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": name, "namespace": "flux-system"}, "spec": {}, "status": status})
    };
    cluster.seed(ks("apps", json!({"conditions": [{"type": "Ready", "status": "False", "reason": "DependencyNotReady", "message": "dependency 'flux-system/infrastructure' is not ready"}]})));
    cluster.seed(ks("infrastructure", json!({"lastAppliedRevision": "main@sha1:abc", "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]})));
    let status = homelab_flux::kustomization_status(&cluster).await.unwrap();
    let summary: Vec<(&str, Option<bool>)> =
        status.iter().map(|s| (s.name.as_str(), s.ready)).collect();
    assert_eq!(
        summary,
        [
            ("apps", Some(false)),
            ("flux-system", None),
            ("infrastructure", Some(true))
        ]
    );
    assert_eq!(status[2].revision.as_deref(), Some("main@sha1:abc"));
    assert_eq!(status[0].reason.as_deref(), Some("DependencyNotReady"));
}
