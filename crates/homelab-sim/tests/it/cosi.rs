//! The simulated COSI state service: the running machine config comes back byte for byte to an
//! `os:admin` client, as `talosctl get machineconfig` reads it; Talos' access rules hold for the rest.

use homelab_apid::{
    ApidClient, ApidError, CONFIG_NAMESPACE, MACHINE_CONFIG_ACTIVE_ID, MACHINE_CONFIG_TYPE,
};
use tonic::Code;

use crate::fixture::{Cluster, install, ip, node, ok};

#[tokio::test]
async fn an_admin_reads_the_running_machine_config_byte_for_byte() {
    let cluster = Cluster::new();
    let node = node("127.0.21.50", |_| {}).await;
    let config = cluster.config("cp50", ip("127.0.22.50"), "");
    let installed = install(&node, &config).await;
    let mut admin = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let running = ok(admin.running_machine_config().await, "get machineconfig");
    assert_eq!(running.as_slice(), config.as_bytes());
    let all = ok(
        admin
            .resource_list(CONFIG_NAMESPACE, MACHINE_CONFIG_TYPE)
            .await,
        "list",
    );
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["v1alpha1", "persistent"]);
    let missing = ok(
        admin
            .resource_get(CONFIG_NAMESPACE, MACHINE_CONFIG_TYPE, "nope")
            .await,
        "get an unknown id",
    );
    assert!(missing.is_none());
}

#[tokio::test]
async fn the_machine_config_is_sensitive_and_unknown_types_are_refused() {
    let cluster = Cluster::new();
    let node = node("127.0.21.51", |_| {}).await;
    let installed = install(&node, &cluster.config("cp51", ip("127.0.22.51"), "")).await;
    let mut reader = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:reader"])).await,
        "connect",
    );
    let err = reader.running_machine_config().await.err();
    assert!(
        matches!(
            &err,
            Some(ApidError::Rpc {
                code: Code::PermissionDenied,
                ..
            })
        ),
        "os:reader may not read a sensitive resource: {err:?}"
    );
    let mut admin = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let err = admin
        .resource_get(
            CONFIG_NAMESPACE,
            "Nonsense.talos.dev",
            MACHINE_CONFIG_ACTIVE_ID,
        )
        .await
        .err();
    assert!(
        matches!(&err, Some(ApidError::Rpc { code: Code::PermissionDenied, message, .. }) if message.contains("is not supported")),
        "{err:?}"
    );
}
