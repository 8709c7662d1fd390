//! The Talos apid simulator driven by the homelab-apid client: maintenance apply, strict config
//! validation, mutual TLS and role checks, bootstrap idempotency, kubeconfig, reset.

use std::time::Duration;

use homelab_apid::{
    ApidClient, ApidError, ApplyMode, BootstrapRetry, Bootstrapped, Fingerprint, ResetOptions,
};
use homelab_sim::pki::{Ca, KeyAlg};
use homelab_sim::talos::{NodePhase, TrustdRoute};
use tonic::Code;

use crate::fixture::{Cluster, WAIT, apply_in_maintenance, creds_from, install, ip, node, ok};

#[tokio::test]
async fn maintenance_apply_moves_the_node_to_its_static_address() {
    let cluster = Cluster::new();
    let node = node("127.0.21.1", |_| {}).await;
    let installed = install(&node, &cluster.config("cp1", ip("127.0.22.1"), "")).await;
    assert_eq!(installed.ip(), ip("127.0.22.1"));
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "mTLS connect",
    );
    let version = ok(client.version().await, "version");
    assert_eq!(version.tag, "v1.12.4");
    assert!(node.applied_config().is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn maintenance_apply_reports_the_reboot_mode() {
    let cluster = Cluster::new();
    let node = node("127.0.21.2", |_| {}).await;
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!()
    };
    let mut client = ok(
        ApidClient::connect_maintenance(maint, None).await,
        "connect",
    );
    let cfg = cluster.config("cp2", ip("127.0.22.2"), "");
    let dry = ok(
        client
            .apply_configuration(cfg.as_bytes(), ApplyMode::Auto, true)
            .await,
        "dry run",
    );
    assert!(dry.mode_details.starts_with("Dry run"));
    assert!(
        matches!(node.phase(), NodePhase::Maintenance(_)),
        "dry run must not install"
    );
    let outcome = ok(
        client
            .apply_configuration(cfg.as_bytes(), ApplyMode::Auto, false)
            .await,
        "apply",
    );
    assert_eq!(outcome.mode, Some(ApplyMode::Reboot));
    assert!(node.wait_installed(WAIT).await.is_ok());
}

#[tokio::test]
async fn unknown_config_key_is_rejected_with_invalid_argument() {
    let cluster = Cluster::new();
    let node = node("127.0.21.3", |_| {}).await;
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!()
    };
    let mut client = ok(
        ApidClient::connect_maintenance(maint, None).await,
        "connect",
    );
    let cfg = cluster.config("cp3", ip("127.0.22.3"), "  frobnicate: true\n");
    let err = client
        .apply_configuration(cfg.as_bytes(), ApplyMode::Auto, false)
        .await
        .err();
    let Some(ApidError::Rpc { code, message, .. }) = err else {
        panic!("expected an RPC error, got {err:?}")
    };
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(
        message,
        "failed to parse config: unknown keys found during decoding:\nmachine:\n    frobnicate: true\n"
    );
    assert!(matches!(node.phase(), NodePhase::Maintenance(_)));
}

#[tokio::test]
async fn maintenance_mode_serves_only_apply_configuration() {
    let node = node("127.0.21.4", |_| {}).await;
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!()
    };
    let mut client = ok(
        ApidClient::connect_maintenance(maint, None).await,
        "connect",
    );
    // Talos v1.12.4's maintenance server serves Version to os:admin only (`assertAdminRole`): SideroLink
    // peers. An insecure client is os:reader and gets Unimplemented.
    let version = client.version().await.err();
    assert_eq!(
        version.as_ref().and_then(ApidError::code),
        Some(Code::Unimplemented),
        "{version:?}"
    );
    let bootstrap = client.bootstrap().await.err();
    assert!(
        matches!(&bootstrap, Some(ApidError::Rpc { code: Code::Unimplemented, message, .. }) if message == "method Bootstrap not implemented"),
        "{bootstrap:?}"
    );
    let mode = client
        .apply_configuration(b"version: v1alpha1\n", ApplyMode::NoReboot, false)
        .await
        .err();
    assert_eq!(mode.and_then(|e| e.code()), Some(Code::Unimplemented));
}

#[tokio::test]
async fn a_wrong_maintenance_fingerprint_is_refused() {
    let node = node("127.0.21.5", |_| {}).await;
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!()
    };
    let wrong = ok(Fingerprint::parse(&"00".repeat(32)), "fingerprint");
    let err = ApidClient::connect_maintenance(maint, Some(wrong))
        .await
        .err();
    assert!(
        matches!(&err, Some(ApidError::ServerCertificateUntrusted { reason, .. }) if reason.contains("does not match the pinned")),
        "{err:?}"
    );
}

/// Calls Version, tolerating that TLS 1.3 reports a client-certificate rejection only after
/// the client finished its side of the handshake (at connect or at the first call).
async fn version_with(
    addr: std::net::SocketAddr,
    creds: Option<&homelab_apid::ClientCredentials>,
) -> Result<(), ApidError> {
    let mut client = match creds {
        Some(c) => ApidClient::connect(addr, c).await?,
        None => ApidClient::connect_maintenance(addr, None).await?,
    };
    client.version().await.map(|_| ())
}

#[tokio::test]
async fn installed_node_requires_a_client_certificate() {
    let cluster = Cluster::new();
    let node = node("127.0.21.6", |_| {}).await;
    let installed = install(&node, &cluster.config("cp6", ip("127.0.22.6"), "")).await;
    let err = version_with(installed, None).await.err();
    assert!(
        matches!(err, Some(ApidError::ClientCertificateRequired { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_rejected() {
    let cluster = Cluster::new();
    let node = node("127.0.21.7", |_| {}).await;
    let installed = install(&node, &cluster.config("cp7", ip("127.0.22.7"), "")).await;
    let other = ok(Ca::generate("talos", KeyAlg::Ed25519), "other CA");
    // The client trusts the right OS CA but presents a certificate from another one.
    let mixed = {
        let leaf = homelab_sim::pki::Leaf {
            organizations: vec!["os:admin".into()],
            client: true,
            days: 1,
            ..Default::default()
        };
        let issued = ok(other.issue(&leaf, KeyAlg::Ed25519), "foreign cert");
        ok(
            homelab_apid::ClientCredentials::from_pem(
                cluster.os_ca.cert_pem().as_bytes(),
                issued.cert_pem.as_bytes(),
                issued.key_pem.as_bytes(),
            ),
            "mixed creds",
        )
    };
    let err = version_with(installed, Some(&mixed)).await.err();
    assert!(
        matches!(err, Some(ApidError::ClientCertificateRejected { .. })),
        "{err:?}"
    );
    // And a client that trusts only the other CA refuses the node's certificate.
    let err = version_with(installed, Some(&creds_from(&other, &["os:admin"])))
        .await
        .err();
    assert!(
        matches!(err, Some(ApidError::ServerCertificateUntrusted { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn reader_certificate_may_read_but_not_bootstrap() {
    let cluster = Cluster::new();
    let node = node("127.0.21.8", |_| {}).await;
    let installed = install(&node, &cluster.config("cp8", ip("127.0.22.8"), "")).await;
    let mut reader = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:reader"])).await,
        "connect",
    );
    assert!(reader.version().await.is_ok());
    let err = reader.bootstrap().await.err();
    assert!(
        matches!(&err, Some(ApidError::Rpc { code: Code::PermissionDenied, message, .. }) if message == "not authorized"),
        "{err:?}"
    );
    let mut nobody = ok(
        ApidClient::connect(installed, &cluster.creds(&[])).await,
        "connect",
    );
    assert_eq!(
        nobody.version().await.err().and_then(|e| e.code()),
        Some(Code::PermissionDenied)
    );
    assert!(!node.is_bootstrapped());
}

#[tokio::test]
async fn bootstrap_twice_is_a_no_op() {
    let cluster = Cluster::new();
    let node = node("127.0.21.9", |_| {}).await;
    let installed = install(&node, &cluster.config("cp9", ip("127.0.22.9"), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    assert_eq!(
        ok(client.bootstrap().await, "first bootstrap"),
        Bootstrapped::Now
    );
    assert_eq!(
        ok(client.bootstrap().await, "second bootstrap"),
        Bootstrapped::Already
    );
    assert!(node.is_bootstrapped());
    let members = ok(client.etcd_member_list().await, "etcd members");
    assert_eq!(
        members
            .iter()
            .map(|m| m.hostname.as_str())
            .collect::<Vec<_>>(),
        vec!["cp9"]
    );
    let services = ok(client.service_list().await, "services");
    assert!(
        services
            .iter()
            .any(|s| s.id == "etcd" && s.state == "Running" && s.healthy == Some(true))
    );
}

#[tokio::test]
async fn bootstrap_is_retried_while_the_node_is_not_ready() {
    let cluster = Cluster::new();
    let node = node("127.0.21.10", |o| o.bootstrap_not_ready = 3).await;
    let installed = install(&node, &cluster.config("cp10", ip("127.0.22.10"), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let short = BootstrapRetry {
        attempts: 2,
        delay: Duration::from_millis(5),
    };
    let err = client.bootstrap_with_retry(short).await.err();
    assert!(
        matches!(&err, Some(ApidError::BootstrapGaveUp { attempts: 2, .. })),
        "{err:?}"
    );
    assert_eq!(err.and_then(|e| e.code()), Some(Code::FailedPrecondition));
    let enough = BootstrapRetry {
        attempts: 5,
        delay: Duration::from_millis(5),
    };
    assert_eq!(
        ok(client.bootstrap_with_retry(enough).await, "bootstrap"),
        Bootstrapped::Now
    );
}

#[tokio::test]
async fn node_metadata_targets_the_node_and_reports_its_hostname() {
    let cluster = Cluster::new();
    let node = node("127.0.21.11", |_| {}).await;
    let installed = install(&node, &cluster.config("cp11", ip("127.0.22.11"), "")).await;
    let client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let mut targeted = ok(client.clone().with_node("cp11"), "node");
    assert_eq!(ok(targeted.version().await, "version").node, "cp11");
    let mut elsewhere = ok(client.with_node("127.0.99.99"), "node");
    assert_eq!(
        elsewhere.version().await.err().and_then(|e| e.code()),
        Some(Code::Unavailable)
    );
}

#[tokio::test]
async fn reset_returns_the_node_to_maintenance_mode() {
    let cluster = Cluster::new();
    let node = node("127.0.21.12", |_| {}).await;
    let cfg = cluster.config("cp12", ip("127.0.22.12"), "");
    let installed = install(&node, &cfg).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    ok(client.bootstrap().await, "bootstrap");
    // Talos refuses a volume that does not exist before anything happens.
    let bogus = ResetOptions {
        partitions: vec!["DATA".into()],
        ..ResetOptions::default()
    };
    let refused = client.reset(&bogus).await.err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("failed to get volume status with label \"DATA\"")),
        "{refused:?}"
    );
    // A graceful reset of the only etcd member is answered, then fails as Talos' does: etcd
    // refuses to remove its last member, and the node runs on.
    ok(
        client.reset(&ResetOptions::default()).await,
        "graceful reset",
    );
    let failures = node.reset_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("failed to leave cluster: failed to remove member",)
            && failures[0].contains("not enough started members"),
        "{failures:?}"
    );
    assert!(node.is_etcd_member());
    // A single-node cluster is reset without leaving etcd (`talosctl reset --graceful=false`).
    let hard = ResetOptions {
        graceful: false,
        ..ResetOptions::default()
    };
    ok(client.reset(&hard).await, "reset");
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!("not back in maintenance: {:?}", node.phase())
    };
    assert_eq!(maint.ip(), ip("127.0.21.12"));
    assert!(!node.is_bootstrapped());
    // The node can be installed again, and etcd bootstrapped anew.
    let installed = install(&node, &cfg).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    assert_eq!(ok(client.bootstrap().await, "bootstrap"), Bootstrapped::Now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_lets_kubectl_see_the_node_ready() {
    let cluster = Cluster::new();
    let node = node("127.0.21.13", |_| {}).await;
    let installed = install(&node, &cluster.config("cp13", ip("127.0.22.13"), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    ok(client.bootstrap().await, "bootstrap");
    let kubeconfig = ok(client.kubeconfig().await, "kubeconfig");
    let dir = ok(tempfile::tempdir(), "tempdir");
    let path = dir.path().join("kubeconfig");
    ok(std::fs::write(&path, &kubeconfig[..]), "write kubeconfig");
    let out = ok(
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&path)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(["get", "nodes", "--no-headers"])
            .output()
            .await,
        "run kubectl",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"cp13"), "{stdout}");
    assert_eq!(fields.get(1), Some(&"Ready"), "{stdout}");
    assert_eq!(fields.get(2), Some(&"control-plane"), "{stdout}");
}

#[tokio::test]
async fn a_worker_gets_its_certificate_from_the_control_plane_and_joins_ready() {
    let cluster = Cluster::new();
    let worker_cfg = cluster.worker_config("w14", ip("127.0.22.114"), ip("127.0.22.14"));
    assert!(
        !worker_cfg.contains("    key: "),
        "worker config must carry no CA keys"
    );
    let cp = cluster.node("127.0.21.14", |_| {}).await;
    let cp_addr = install(&cp, &cluster.config("cp14", ip("127.0.22.14"), "")).await;
    let worker = cluster.node("127.0.21.114", |_| {}).await;
    let worker_addr = install(&worker, &worker_cfg).await;
    let mut w = ok(
        ApidClient::connect(worker_addr, &cluster.creds(&["os:admin"])).await,
        "worker mTLS",
    );
    assert_eq!(
        w.bootstrap().await.err().and_then(|e| e.code()),
        Some(Code::FailedPrecondition)
    );
    let not_here = w.kubeconfig().await.err();
    assert!(
        matches!(
            &not_here,
            Some(ApidError::NotControlPlane {
                method: "Kubeconfig",
                ..
            })
        ),
        "{not_here:?}"
    );
    assert!(
        not_here.is_some_and(|e| e.to_string().contains("only on control plane nodes")),
        "the error says why"
    );
    assert_eq!(worker.trustd_route(), Some(TrustdRoute::StaticEndpoint));
    let mut c = ok(
        ApidClient::connect(cp_addr, &cluster.creds(&["os:admin"])).await,
        "cp mTLS",
    );
    ok(c.bootstrap().await, "bootstrap");
    let Some(kube) = cp.kube() else {
        panic!("no Kubernetes API after bootstrap")
    };
    for name in ["cp14", "w14"] {
        let node = kube.get("", "v1", "nodes", None, name);
        let ready = node
            .as_ref()
            .map(|n| n["status"]["conditions"][0]["status"].clone());
        assert_eq!(ready, Some(serde_json::json!("True")), "{name}: {node:?}");
    }
    // Only control planes answer etcd membership calls.
    let leave = w.etcd_leave_cluster().await.err();
    assert_eq!(
        leave.as_ref().and_then(|e| e.code()),
        Some(Code::Unimplemented)
    );
    assert!(
        leave.is_some_and(|e| e
            .to_string()
            .contains("etcd leave is only available on control plane nodes")),
        "the error says why"
    );
    ok(w.reset(&ResetOptions::default()).await, "reset worker");
    assert!(worker.wait_maintenance(WAIT).await.is_ok());
    // Talos cordons its own Node on a graceful reset and never deletes it: it stays, NotReady.
    let node = kube.get("", "v1", "nodes", None, "w14");
    let Some(node) = node else {
        panic!("the Node object of a reset worker stays")
    };
    assert_eq!(node["spec"]["unschedulable"], serde_json::json!(true));
    assert_eq!(
        node["status"]["conditions"][0]["status"],
        serde_json::json!("False")
    );
}

#[tokio::test]
async fn a_worker_comes_up_only_once_trustd_answers_through_its_endpoint() {
    let cluster = Cluster::new();
    let worker = cluster.node("127.0.21.115", |_| {}).await;
    let cfg = cluster.worker_config("w15", ip("127.0.22.115"), ip("127.0.22.15"));
    apply_in_maintenance(&worker, &cfg).await;
    let early = worker.wait_installed(Duration::from_millis(300)).await;
    assert!(
        early.is_err(),
        "no control plane, no certificate: {early:?}"
    );
    assert!(worker.trustd_unreachable() > 0);
    let cp = cluster.node("127.0.21.15", |_| {}).await;
    install(&cp, &cluster.config("cp15", ip("127.0.22.15"), "")).await;
    assert!(
        worker.wait_installed(WAIT).await.is_ok(),
        "the worker's apid comes up once trustd answers at its endpoint"
    );
    assert_eq!(worker.trustd_route(), Some(TrustdRoute::StaticEndpoint));
}

#[tokio::test]
async fn bootstrap_waits_for_cri_and_for_the_time_to_sync_saying_which() {
    let cluster = Cluster::new();
    // NTP unreachable: the time never syncs, whatever the retry budget.
    let node = node("127.0.21.16", |o| {
        o.cri_delay = Duration::from_millis(200);
        o.time_sync = None;
    })
    .await;
    let installed = install(&node, &cluster.config("cp16", ip("127.0.22.16"), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let early = client.bootstrap().await.err().map(|e| e.to_string());
    assert!(
        early
            .as_deref()
            .is_some_and(|m| m.contains("bootstrap is not available yet")),
        "CRI is not up yet: {early:?}"
    );
    let later = client
        .bootstrap_with_retry(BootstrapRetry {
            attempts: 20,
            delay: Duration::from_millis(50),
        })
        .await
        .err();
    assert!(
        later
            .as_ref()
            .is_some_and(|e| e.to_string().contains("time is not in sync yet")),
        "{later:?}"
    );
    assert!(node.bootstrap_precondition_refusals() >= 2);
    assert!(!node.is_bootstrapped());
}

#[tokio::test]
async fn an_installed_node_reports_nocloud_and_the_services_a_real_node_runs() {
    let cluster = Cluster::new();
    let node = node("127.0.21.17", |_| {}).await;
    let installed = install(&node, &cluster.config("cp17", ip("127.0.22.17"), "")).await;
    let mut client = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
        "connect",
    );
    let version = ok(client.version().await, "version");
    assert_eq!(version.platform, "nocloud");
    let ids: Vec<String> = ok(client.service_list().await, "services")
        .into_iter()
        .map(|s| s.id)
        .collect();
    for id in [
        "apid",
        "auditd",
        "containerd",
        "cri",
        "dashboard",
        "etcd",
        "ext-qemu-guest-agent",
        "kubelet",
        "machined",
        "syslogd",
        "trustd",
        "udevd",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
}

#[tokio::test]
async fn a_link_alias_that_matches_no_nic_leaves_the_installed_node_without_network() {
    let cluster = Cluster::new();
    let alias = |mac: &str| {
        cluster
            .config("cp18", ip("127.0.22.18"), "")
            .replace("name: eth0", "name: net0")
            + &format!(
                "---\napiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n  match: mac(link.permanent_addr) == \"{mac}\"\n"
            )
    };
    let good = cluster
        .node("127.0.21.18", |o| o.macs = vec!["bc:24:11:ca:fe:18".into()])
        .await;
    install(&good, &alias("bc:24:11:ca:fe:18")).await;
    let bad = cluster
        .node("127.0.21.19", |o| o.macs = vec!["bc:24:11:ca:fe:19".into()])
        .await;
    apply_in_maintenance(&bad, &alias("bc:24:11:00:00:00")).await;
    let phase = bad.wait_installed(WAIT).await;
    assert!(
        matches!(&phase, Err(NodePhase::Failed(m)) if m.contains("no network") && m.contains("matched 0 link")),
        "{phase:?}"
    );
}

#[tokio::test]
async fn with_discovery_a_worker_finds_trustd_without_its_endpoint() {
    let cluster = Cluster::new();
    let discovery = "  clusterName: homelab\n  discovery:\n    enabled: true\n";
    let cp = cluster.node("127.0.21.20", |_| {}).await;
    install(
        &cp,
        &cluster
            .config("cp20", ip("127.0.22.20"), "")
            .replace("  clusterName: homelab\n", discovery),
    )
    .await;
    // The endpoint names an address nobody serves; the discovery service lists the control plane.
    let cfg = cluster
        .worker_config("w20", ip("127.0.22.120"), ip("127.0.22.99"))
        .replace("  clusterName: homelab\n", discovery);
    let worker = cluster.node("127.0.21.120", |o| o.discovery = true).await;
    apply_in_maintenance(&worker, &cfg).await;
    assert!(worker.wait_installed(WAIT).await.is_ok());
    assert_eq!(worker.trustd_route(), Some(TrustdRoute::Discovery));
    // Without the service (blocked, or the simulator's default) the same worker waits.
    let blocked = cluster.node("127.0.21.121", |_| {}).await;
    apply_in_maintenance(&blocked, &cfg.replace("w20", "w21")).await;
    assert!(
        blocked
            .wait_installed(Duration::from_millis(300))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_maintenance_listener_is_gone_while_talos_installs() {
    let cluster = Cluster::new();
    let node = node("127.0.21.22", |o| o.install_delay = Duration::from_secs(2)).await;
    let Ok(maint) = node.wait_maintenance(WAIT).await else {
        panic!("not in maintenance: {:?}", node.phase())
    };
    apply_in_maintenance(&node, &cluster.config("cp22", ip("127.0.22.22"), "")).await;
    let start = std::time::Instant::now();
    while node.phase() != NodePhase::Off {
        assert!(
            start.elapsed() < WAIT,
            "never left maintenance: {:?}",
            node.phase()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        ApidClient::connect_maintenance(maint, None).await.is_err(),
        "nothing listens at the maintenance address during the install"
    );
    assert!(node.wait_installed(WAIT).await.is_ok());
}

/// Talos answers Reset before its reset sequence runs: until the node booted again, the recovery upload
/// and the bootstrap are refused (EPHEMERAL unmounted, CRI stopped), and only the boot ID tells the new
/// boot from the old one.
#[tokio::test]
async fn a_reset_is_over_only_when_the_boot_id_changed() {
    let cluster = Cluster::new();
    let node = node("127.0.21.23", |o| o.reboot_delay = Duration::from_secs(2)).await;
    let installed = install(&node, &cluster.config("cp23", ip("127.0.22.23"), "")).await;
    let admin = cluster.creds(&["os:admin"]);
    let mut client = ok(ApidClient::connect(installed, &admin).await, "connect");
    ok(client.bootstrap().await, "bootstrap");
    let before = ok(client.boot_id().await, "boot id");
    assert_eq!(before.len(), 36, "{before}");
    assert_eq!(ok(client.boot_id().await, "boot id again"), before);

    // Read is os:admin only, and only regular files exist.
    let mut reader = ok(
        ApidClient::connect(installed, &cluster.creds(&["os:reader"])).await,
        "connect as reader",
    );
    let denied = reader.boot_id().await.err();
    assert_eq!(denied.and_then(|e| e.code()), Some(Code::PermissionDenied));

    let wipe = ResetOptions {
        graceful: false,
        reboot: true,
        partitions: vec!["EPHEMERAL".into()],
    };
    ok(client.reset(&wipe).await, "reset");
    let upload = tonic::codegen::tokio_stream::iter([zeroize::Zeroizing::new(b"db".to_vec())]);
    let refused = client.etcd_recover(upload).await.err();
    assert_eq!(
        refused.as_ref().and_then(|e| e.code()),
        Some(Code::FailedPrecondition),
        "{refused:?}"
    );
    let refused = client.bootstrap_recover(false).await.err();
    assert_eq!(
        refused.as_ref().and_then(|e| e.code()),
        Some(Code::FailedPrecondition),
        "{refused:?}"
    );
    assert_eq!(
        ok(client.boot_id().await, "boot id while resetting"),
        before
    );

    let start = std::time::Instant::now();
    let after = loop {
        assert!(start.elapsed() < WAIT, "the node never booted again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let NodePhase::Installed(at) = node.phase() else {
            continue;
        };
        let Ok(mut c) = ApidClient::connect(at, &admin).await else {
            continue;
        };
        if let Ok(id) = c.boot_id().await
            && id != before
        {
            break id;
        }
    };
    assert_ne!(after, before);
    assert!(!node.is_etcd_member());
}

/// Talos taints a control plane's Node `node-role.kubernetes.io/control-plane:NoSchedule` unless
/// `cluster.allowSchedulingOnControlPlanes` is true, and follows a change of it without a reboot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_node_is_tainted_unless_it_allows_scheduling() {
    for (last, allow) in [(24u8, false), (25, true)] {
        let cluster = Cluster::new();
        let node = node(&format!("127.0.21.{last}"), |_| {}).await;
        let tainted = cluster.config(&format!("cp{last}"), ip(&format!("127.0.22.{last}")), "");
        let allowing = tainted.replace(
            "  clusterName: homelab\n",
            "  clusterName: homelab\n  allowSchedulingOnControlPlanes: true\n",
        );
        let cfg = if allow { &allowing } else { &tainted };
        let installed = install(&node, cfg).await;
        let mut client = ok(
            ApidClient::connect(installed, &cluster.creds(&["os:admin"])).await,
            "connect",
        );
        ok(client.bootstrap().await, "bootstrap");
        let taints = || {
            node.kube()
                .and_then(|k| k.get("", "v1", "nodes", None, &format!("cp{last}")))
                .map(|n| n["spec"]["taints"].clone())
        };
        let start = std::time::Instant::now();
        let want = if allow {
            serde_json::Value::Null
        } else {
            serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
        };
        while taints().as_ref() != Some(&want) {
            assert!(start.elapsed() < WAIT, "cp{last}: {:?}", taints());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !allow {
            ok(
                client
                    .apply_configuration(allowing.as_bytes(), ApplyMode::NoReboot, false)
                    .await,
                "allow scheduling without a reboot",
            );
            while taints() != Some(serde_json::Value::Null) {
                assert!(start.elapsed() < WAIT, "the taint stayed: {:?}", taints());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
