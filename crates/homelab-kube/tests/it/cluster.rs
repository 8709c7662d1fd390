//! Version, readiness, nodes, idempotent Secrets, create-or-replace of arbitrary objects and
//! status conditions; TLS and authentication failures.

use std::net::SocketAddr;

use base64::Engine;
use homelab_kube::{Applied, KubeClient, KubeError, SecretData};
use homelab_sim::kube::{KubeNode, KubeOptions, KubeSim};
use homelab_sim::pki::{Ca, KeyAlg, Leaf};
use serde_json::json;
use zeroize::Zeroizing;

pub(crate) fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

pub(crate) struct Env {
    pub(crate) sim: KubeSim,
    ca: Ca,
}

pub(crate) async fn env() -> Env {
    let ca = ok(Ca::generate("kubernetes", KeyAlg::P256), "CA");
    let leaf = Leaf {
        sans: vec!["127.0.0.1".into()],
        server: true,
        days: 1,
        ..Leaf::default()
    };
    let server_cert = ok(ca.issue(&leaf, KeyAlg::P256), "server cert");
    let opts = KubeOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_cert,
        client_ca_pem: ca.cert_pem().to_owned(),
        version: "v1.35.0".into(),
    };
    let sim = ok(KubeSim::start(opts).await, "kube sim");
    Env { sim, ca }
}

impl Env {
    fn kubeconfig(&self, trust: &Ca, user: Option<&Ca>) -> String {
        let user_block = match user {
            Some(ca) => {
                let leaf = Leaf {
                    common_name: Some("admin".into()),
                    organizations: vec!["system:masters".into()],
                    client: true,
                    days: 1,
                    ..Leaf::default()
                };
                let issued = ok(ca.issue(&leaf, KeyAlg::P256), "client cert");
                format!(
                    "      user:\n        client-certificate-data: {}\n        client-key-data: {}\n",
                    b64(&issued.cert_pem),
                    b64(&issued.key_pem)
                )
            }
            None => "      user: {}\n".into(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n    - name: c\n      cluster:\n        server: https://{}\n        certificate-authority-data: {}\nusers:\n    - name: u\n{user_block}contexts:\n    - context:\n        cluster: c\n        user: u\n      name: ctx\ncurrent-context: ctx\n",
            self.sim.addr(),
            b64(trust.cert_pem()),
        )
    }

    pub(crate) fn client(&self) -> KubeClient {
        ok(
            KubeClient::from_kubeconfig_yaml(&self.kubeconfig(&self.ca, Some(&self.ca))),
            "client",
        )
    }
}

#[tokio::test]
async fn version_readiness_and_node_ready_condition() {
    let env = env().await;
    let client = env.client();
    assert_eq!(ok(client.version().await, "version").git_version, "v1.35.0");
    assert!(ok(client.is_ready().await, "readyz"));
    assert!(ok(client.nodes().await, "nodes").is_empty());
    env.sim.upsert_node(KubeNode {
        name: "cp1".into(),
        internal_ip: "127.0.20.100"
            .parse()
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        ready: true,
        control_plane: true,
        no_schedule_taint: true,
        kubelet_version: "v1.35.0".into(),
        os_image: "Talos (v1.12.4)".into(),
    });
    let nodes = ok(client.nodes().await, "nodes");
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].ready);
    assert_eq!(nodes[0].internal_ip.as_deref(), Some("127.0.20.100"));
}

#[tokio::test]
async fn secret_create_and_update_are_idempotent() {
    let env = env().await;
    let client = env.client();
    assert_eq!(
        ok(client.ensure_namespace("flux-system").await, "namespace"),
        Applied::Created
    );
    assert_eq!(
        ok(client.ensure_namespace("flux-system").await, "namespace"),
        Applied::Unchanged
    );
    let mut data = SecretData::new();
    data.insert(
        "age.agekey".into(),
        Zeroizing::new(b"AGE-SECRET-KEY-1".to_vec()),
    );
    let put = |d: SecretData| {
        let c = client.clone();
        async move {
            c.upsert_secret("flux-system", "sops-age", "Opaque", &d)
                .await
        }
    };
    assert_eq!(ok(put(data.clone()).await, "create"), Applied::Created);
    assert_eq!(ok(put(data.clone()).await, "repeat"), Applied::Unchanged);
    let rv = env
        .sim
        .get("", "v1", "secrets", Some("flux-system"), "sops-age")
        .map(|s| s["metadata"]["resourceVersion"].clone());
    data.insert(
        "age.agekey".into(),
        Zeroizing::new(b"AGE-SECRET-KEY-2".to_vec()),
    );
    assert_eq!(ok(put(data.clone()).await, "update"), Applied::Updated);
    assert_eq!(ok(put(data).await, "repeat update"), Applied::Unchanged);
    let live = env
        .sim
        .get("", "v1", "secrets", Some("flux-system"), "sops-age");
    assert_eq!(
        live.as_ref().map(|s| s["data"]["age.agekey"].clone()),
        Some(json!(b64("AGE-SECRET-KEY-2")))
    );
    assert_ne!(live.map(|s| s["metadata"]["resourceVersion"].clone()), rv);
}

#[tokio::test]
async fn secret_in_a_missing_namespace_is_a_not_found_error() {
    let env = env().await;
    let client = env.client();
    let err = client
        .upsert_secret("nope", "s", "Opaque", &SecretData::new())
        .await
        .err();
    assert!(
        matches!(&err, Some(KubeError::Api { code: 404, message, .. }) if message == "namespaces \"nope\" not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn custom_objects_apply_after_their_crd_and_expose_conditions() {
    let env = env().await;
    let client = env.client();
    let repo = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "default"},
        "spec": {"interval": "1m", "url": "ssh://git@example.invalid/homelab"},
    });
    let err = client.apply(&repo).await.err();
    assert!(
        matches!(err, Some(KubeError::UnknownKind { .. })),
        "{err:?}"
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
        "spec": {"group": "source.toolkit.fluxcd.io", "scope": "Namespaced",
                 "names": {"plural": "gitrepositories", "singular": "gitrepository", "kind": "GitRepository"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]},
    });
    assert_eq!(ok(client.apply(&crd).await, "crd"), Applied::Created);
    let established = ok(
        client
            .conditions(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "gitrepositories.source.toolkit.fluxcd.io",
            )
            .await,
        "crd conditions",
    );
    assert!(
        established
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    // A fresh client discovers the new group.
    let client = env.client();
    assert_eq!(ok(client.apply(&repo).await, "repo"), Applied::Created);
    assert_eq!(
        ok(client.apply(&repo).await, "repo again"),
        Applied::Unchanged
    );
    let mut changed = repo.clone();
    changed["spec"]["interval"] = json!("5m");
    assert_eq!(
        ok(client.apply(&changed).await, "repo changed"),
        Applied::Updated
    );
    let live = ok(
        client
            .get(
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                Some("default"),
                "flux-system",
            )
            .await,
        "get",
    );
    assert_eq!(
        live.map(|o| o["spec"]["interval"].clone()),
        Some(json!("5m"))
    );
    assert!(
        ok(
            client
                .conditions(
                    "source.toolkit.fluxcd.io/v1",
                    "GitRepository",
                    Some("default"),
                    "flux-system"
                )
                .await,
            "conds"
        )
        .is_empty()
    );
}

#[tokio::test]
async fn a_client_without_certificate_is_unauthorized() {
    let env = env().await;
    let client = ok(
        KubeClient::from_kubeconfig_yaml(&env.kubeconfig(&env.ca, None)),
        "client",
    );
    let err = client.version().await.err();
    assert!(
        matches!(&err, Some(KubeError::Api { code: 401, reason, .. }) if reason == "Unauthorized"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_from_another_ca_is_not_trusted() {
    let env = env().await;
    let other = ok(Ca::generate("kubernetes", KeyAlg::P256), "other CA");
    let client = ok(
        KubeClient::from_kubeconfig_yaml(&env.kubeconfig(&other, Some(&env.ca))),
        "client",
    );
    let err = client.version().await.err();
    assert!(
        matches!(&err, Some(KubeError::Unreachable { message, .. }) if message.contains("invalid peer certificate")),
        "{err:?}"
    );
    // And a client certificate from another CA is refused during the handshake.
    let client = ok(
        KubeClient::from_kubeconfig_yaml(&env.kubeconfig(&env.ca, Some(&other))),
        "client",
    );
    assert!(matches!(
        client.version().await,
        Err(KubeError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn pods_by_label_selector_and_a_daemonsets_images() {
    let env = env().await;
    let client = env.client();
    let pod = |name: &str, app: &str, node: &str, ready: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": app, "tier": "control-plane"}},
            "spec": {"nodeName": node, "containers": [{"name": app, "image": format!("registry.k8s.io/{app}:v1.36.0")}]},
            "status": {"hostIP": "127.0.0.11", "conditions": [{"type": "Ready", "status": ready}]},
        })
    };
    for (name, app, node, ready) in [
        ("kube-apiserver-cp1", "kube-apiserver", "cp1", "True"),
        ("kube-apiserver-cp2", "kube-apiserver", "cp2", "False"),
        ("kube-scheduler-cp1", "kube-scheduler", "cp1", "True"),
    ] {
        env.sim
            .put(
                ("", "v1", "pods"),
                Some("kube-system"),
                pod(name, app, node, ready),
            )
            .unwrap_or_else(|e| panic!("pod: {e:?}"));
    }
    let mut pods = ok(
        client
            .pods("kube-system", "k8s-app=kube-apiserver,tier=control-plane")
            .await,
        "pods",
    );
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert_eq!(pods[0].node_name, "cp1");
    assert!(pods[0].ready && !pods[1].ready);
    assert_eq!(pods[0].images, ["registry.k8s.io/kube-apiserver:v1.36.0"]);
    assert_eq!(pods[0].host_ip.as_deref(), Some("127.0.0.11"));

    assert_eq!(
        ok(
            client.daemonset_images("kube-system", "kube-proxy").await,
            "ds"
        ),
        None
    );
    env.sim
        .put(
            ("apps", "v1", "daemonsets"),
            Some("kube-system"),
            serde_json::json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                         "template": {"spec": {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.36.0"}]}}},
            }),
        )
        .unwrap_or_else(|e| panic!("daemonset: {e:?}"));
    assert_eq!(
        ok(
            client.daemonset_images("kube-system", "kube-proxy").await,
            "ds"
        ),
        Some(vec!["registry.k8s.io/kube-proxy:v1.36.0".to_owned()])
    );
}
