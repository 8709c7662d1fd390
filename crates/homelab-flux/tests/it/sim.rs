//! sops-key and bootstrap through `homelab-kube` against the Kubernetes simulator (loopback HTTPS, client
//! certificates), each run twice: exactly the expected objects afterwards, no write on the second run.

use std::net::SocketAddr;

use base64::Engine as _;
use homelab_flux::bootstrap;
use homelab_flux::cluster::Action;
use homelab_flux::identity::AgeIdentity;
use homelab_kube::KubeClient;
use homelab_sim::kube::{KubeOptions, KubeSim};
use homelab_sim::pki::{Ca, KeyAlg, Leaf};
use zeroize::Zeroizing;

use crate::support::reference_config;

const KEY: &str = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A simulator and an admin client for it.
async fn cluster() -> (KubeSim, KubeClient) {
    let ca = Ca::generate("kubernetes", KeyAlg::P256).unwrap();
    let server = Leaf {
        sans: vec!["127.0.0.1".into()],
        server: true,
        days: 1,
        ..Leaf::default()
    };
    let sim = KubeSim::start(KubeOptions {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_cert: ca.issue(&server, KeyAlg::P256).unwrap(),
        client_ca_pem: ca.cert_pem().to_owned(),
        version: "v1.35.0".into(),
    })
    .await
    .unwrap();
    let admin = ca
        .issue(
            &Leaf {
                common_name: Some("admin".into()),
                organizations: vec!["system:masters".into()],
                client: true,
                days: 1,
                ..Leaf::default()
            },
            KeyAlg::P256,
        )
        .unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{}\n    \
         certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    \
         client-key-data: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
        sim.addr(),
        b64(ca.cert_pem()),
        b64(&admin.cert_pem),
        b64(&admin.key_pem)
    );
    let client = KubeClient::from_kubeconfig_yaml(&kubeconfig).unwrap();
    (sim, client)
}

fn names(items: &[serde_json::Value]) -> Vec<String> {
    let mut n: Vec<String> = items
        .iter()
        .map(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn sops_key_against_the_simulator_twice_leaves_one_secret_with_one_key() {
    let (sim, client) = cluster().await;
    let identity = AgeIdentity::from_text(Zeroizing::new(format!("{KEY}\n")), "test").unwrap();
    let first = homelab_flux::sops_key(&client, &identity).await.unwrap();
    let second = homelab_flux::sops_key(&client, &identity).await.unwrap();
    assert_eq!((first, second), (Action::Created, Action::Unchanged));
    let secrets = client
        .list("v1", "Secret", Some("flux-system"))
        .await
        .unwrap();
    assert_eq!(names(&secrets), ["sops-age"]);
    let secret = sim
        .get("", "v1", "secrets", Some("flux-system"), "sops-age")
        .unwrap();
    assert_eq!(secret["data"].as_object().unwrap().len(), 1);
    assert_eq!(secret["data"]["age.agekey"], b64(&format!("{KEY}\n")));
    assert!(!format!("{first:?} {second:?} {identity:?} {client:?}").contains(KEY));
}

#[tokio::test]
async fn bootstrap_against_the_simulator_twice_changes_nothing_the_second_time() {
    let (_sim, client) = cluster().await;
    let install = crate::ops::install_yaml();
    let manifests = bootstrap::parse_manifests(&install).unwrap();
    let gitops = reference_config().gitops.unwrap();
    let first = bootstrap::bootstrap(&client, &manifests, &gitops)
        .await
        .unwrap();
    assert_eq!(first.changed(), first.applied.len());
    let second = bootstrap::bootstrap(&client, &manifests, &gitops)
        .await
        .unwrap();
    assert_eq!(second.changed(), 0, "{:?}", second.applied);
    let repos = client
        .list(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            Some("flux-system"),
        )
        .await
        .unwrap();
    assert_eq!(names(&repos), ["flux-system"]);
    let ks = client
        .list(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("flux-system"),
        )
        .await
        .unwrap();
    assert_eq!(names(&ks), ["flux-system"]);
    assert_eq!(ks[0]["spec"]["path"], "./kubernetes");

    let touched = homelab_flux::reconcile(&client, "flux-system", true)
        .await
        .unwrap();
    assert_eq!(touched.len(), 2);
    let annotated = client
        .get(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("flux-system"),
            "flux-system",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(annotated["metadata"]["annotations"][homelab_flux::REQUESTED_AT].is_string());
    let status = homelab_flux::kustomization_status(&client).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].ready, None);
}
