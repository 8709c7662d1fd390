//! Image Factory client against a tiny factory stub on 127.0.0.1 that answers like the real one.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use homelab_talos::factory::{FactoryClient, FactoryError, Schematic};
use sha2::{Digest as _, Sha256};

#[derive(Clone, Default)]
struct Stub {
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn create(State(stub): State<Stub>, body: String) -> (StatusCode, String) {
    if !body.starts_with("customization:") {
        return (StatusCode::BAD_REQUEST, "invalid schematic".into());
    }
    stub.bodies.lock().unwrap().push(body.clone());
    let id = hex::encode(Sha256::digest(body.as_bytes()));
    (
        StatusCode::CREATED,
        format!(
            r#"{{"id":"{id}","schematic":{}}}"#,
            serde_json::to_string(&body).unwrap()
        ),
    )
}

async fn extensions(Path(version): Path<String>) -> (StatusCode, String) {
    if version != "v1.12.4" {
        return (StatusCode::NOT_FOUND, "version not found".into());
    }
    (
        StatusCode::OK,
        r#"[{"name":"siderolabs/nfs-utils","ref":"ghcr.io/siderolabs/nfs-utils:2.8.3","digest":"sha256:1","author":"Sidero Labs","description":"nfs"},
           {"name":"siderolabs/qemu-guest-agent","ref":"ghcr.io/siderolabs/qemu-guest-agent:10.0.2","digest":"sha256:2","author":"Sidero Labs","description":"qemu"}]"#
            .into(),
    )
}

async fn start() -> (FactoryClient, Stub) {
    let stub = Stub::default();
    let app = Router::new()
        .route("/schematics", post(create))
        .route(
            "/versions",
            get(|| async { r#"["v1.11.5","v1.12.3","v1.12.4"]"# }),
        )
        .route("/version/{version}/extensions/official", get(extensions))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = FactoryClient::new(&format!("http://{addr}")).unwrap();
    (client, stub)
}

#[tokio::test]
async fn schematic_is_posted_sorted_and_the_id_matches_the_local_computation() {
    let (client, stub) = start().await;
    let schematic =
        Schematic::with_extensions(["siderolabs/qemu-guest-agent", "siderolabs/nfs-utils"]);
    let id = client.create_schematic(&schematic).await.unwrap();
    assert_eq!(id, schematic.id().unwrap());
    let bodies = stub.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies,
        [
            "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/nfs-utils\n            - siderolabs/qemu-guest-agent\n"
        ]
    );
    let again = client
        .create_schematic(&Schematic::with_extensions([
            "siderolabs/nfs-utils",
            "siderolabs/qemu-guest-agent",
        ]))
        .await
        .unwrap();
    assert_eq!(again, id);
}

#[tokio::test]
async fn versions_and_extensions_are_read_from_the_factory() {
    let (client, _) = start().await;
    assert_eq!(
        client.versions().await.unwrap(),
        ["v1.11.5", "v1.12.3", "v1.12.4"]
    );
    let ext = client.official_extensions("1.12.4").await.unwrap();
    assert_eq!(ext.len(), 2);
    assert_eq!(ext[1].name, "siderolabs/qemu-guest-agent");
    assert_eq!(
        ext[1].reference,
        "ghcr.io/siderolabs/qemu-guest-agent:10.0.2"
    );

    let ok = Schematic::with_extensions(["siderolabs/qemu-guest-agent"]);
    client.check_available("v1.12.4", &ok).await.unwrap();
    let err = client.check_available("v1.13.0", &ok).await.unwrap_err();
    assert!(matches!(err, FactoryError::UnknownVersion { .. }), "{err}");
    assert!(err.to_string().contains("v1.12.4"), "{err}");
    let bad = Schematic::with_extensions(["siderolabs/qemu-guest-agent", "siderolabs/nope"]);
    let err = client.check_available("v1.12.4", &bad).await.unwrap_err();
    assert!(err.to_string().contains("siderolabs/nope"), "{err}");
    assert!(!err.to_string().contains("qemu"), "{err}");
}

#[tokio::test]
async fn factory_errors_carry_status_and_body() {
    let (client, _) = start().await;
    let err = client.official_extensions("v9.9.9").await.unwrap_err();
    match err {
        FactoryError::Status { status, body, .. } => {
            assert_eq!(status, 404);
            assert_eq!(body, "version not found");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn an_unreachable_factory_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = FactoryClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client.versions().await.unwrap_err();
    assert!(matches!(err, FactoryError::Network { .. }), "{err}");
}

#[tokio::test]
async fn urls_for_the_stub_use_its_host() {
    let (client, _) = start().await;
    let id = Schematic::default().id().unwrap();
    let host = client.registry_host();
    assert!(host.starts_with("127.0.0.1:"));
    assert_eq!(
        client.installer_image(&id, "v1.12.4", "nocloud", true),
        format!("{host}/nocloud-installer-secureboot/{id}:v1.12.4")
    );
    assert_eq!(
        client.iso_url(&id, "v1.12.4", "nocloud", true),
        format!("http://{host}/image/{id}/v1.12.4/nocloud-amd64-secureboot.iso")
    );
}
