//! Day 2 against the simulated nodes, through the real apid client: an upgrade boots the new version
//! only while etcd is healthy, a rollback leaves the old one, the counters tell how many control planes
//! were down at once; a snapshot brings deleted objects back after etcd is wiped and recovered; members
//! leave or are removed; kubelet and API server versions follow the applied config.

use std::net::SocketAddr;
use std::time::Instant;

use homelab_apid::{ApidClient, ApplyMode, Bootstrapped, ClientCredentials, ResetOptions};
use homelab_sim::talos::{ClusterHealth, NodePhase, NodeSim};
use serde_json::json;
use tonic::Code;
use tonic::codegen::tokio_stream;

use crate::fixture::{Cluster, WAIT, install, ip, node, ok};
use crate::talos_ha::{at, eventually, ha_config, ha_node};

const SCHEMATIC: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

fn installer(version: &str) -> String {
    format!("factory.talos.dev/metal-installer-secureboot/{SCHEMATIC}:{version}")
}

/// Three control planes behind a VIP on `127.<pid>.<net>.0/24`, etcd bootstrapped on the first and
/// every member running with its API server.
async fn three_control_planes(net: u8) -> (Cluster, Vec<NodeSim>, Vec<SocketAddr>) {
    let cluster = Cluster::new();
    let vip = ip(&at(net, 10));
    let mut nodes = Vec::new();
    let mut apid = Vec::new();
    for i in 0..3 {
        let n = ha_node(&cluster, &at(net, 200 + i)).await;
        let cfg = ha_config(
            &cluster,
            &format!("cp{}", i + 1),
            ip(&at(net, 11 + i)),
            vip,
            false,
        );
        apid.push(install(&n, &cfg).await);
        nodes.push(n);
    }
    let mut cp1 = connect(apid[0], &cluster.creds(&["os:admin"])).await;
    assert_eq!(ok(cp1.bootstrap().await, "bootstrap"), Bootstrapped::Now);
    wait_all_up(&nodes).await;
    wait_voters(&mut cp1, 3).await;
    (cluster, nodes, apid)
}

/// Joining members are learners first (and unnamed for a while): wait until `n` named voters answer.
async fn wait_voters(client: &mut ApidClient, n: usize) {
    let start = std::time::Instant::now();
    loop {
        let members = ok(client.etcd_member_list().await, "members");
        if members.len() == n
            && members
                .iter()
                .all(|m| !m.is_learner && !m.hostname.is_empty())
        {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "etcd never had {n} named voters: {members:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn connect(at: SocketAddr, creds: &ClientCredentials) -> ApidClient {
    ok(ApidClient::connect(at, creds).await, "connect")
}

/// Where the node's apid listens now (tests bind ephemeral ports: a reboot changes it).
fn apid_of(n: &NodeSim) -> SocketAddr {
    match n.phase() {
        NodePhase::Installed(addr) => addr,
        other => panic!("not installed: {other:?}"),
    }
}

/// Which of `nodes` holds the VIP, once one does.
async fn vip_holder(nodes: &[NodeSim]) -> usize {
    eventually("a node holds the VIP", || {
        nodes.iter().any(NodeSim::holds_vip)
    })
    .await;
    match nodes.iter().position(NodeSim::holds_vip) {
        Some(holder) => holder,
        None => panic!("nobody holds the VIP"),
    }
}

/// Every node installed, in etcd, and serving its API (etcd runs there).
async fn wait_all_up(nodes: &[NodeSim]) {
    eventually("every control plane up in etcd with its API", || {
        nodes.iter().all(|n| {
            matches!(n.phase(), NodePhase::Installed(_)) && n.is_etcd_member() && n.kube().is_some()
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_boots_the_new_version_only_with_healthy_etcd_and_a_rollback_keeps_the_old_one()
{
    let (cluster, nodes, apid) = three_control_planes(190).await;
    let admin = cluster.creds(&["os:admin"]);

    // Talos checks every etcd member before it upgrades a control plane.
    nodes[2].power_off();
    let mut cp1 = connect(apid[0], &admin).await;
    let refused = cp1.upgrade(&installer("v1.12.11")).await;
    let said = format!("{refused:?}");
    assert_eq!(
        refused.err().and_then(|e| e.code()),
        Some(Code::FailedPrecondition)
    );
    assert!(said.contains("cp3 is not healthy"), "{said}");
    ok(nodes[2].power_on().await, "power on cp3");
    wait_all_up(&nodes).await;

    let ack = ok(cp1.upgrade(&installer("v1.12.11")).await, "upgrade cp1");
    assert_eq!(ack.ack, "Upgrade request received");
    // Asked again while the first prepares: acknowledged, but Talos' sequence lock starts nothing.
    let again = ok(
        cp1.upgrade(&installer("v1.12.11")).await,
        "upgrade cp1 again",
    );
    assert_eq!(again.ack, "Upgrade request received");
    eventually("cp1 upgraded", || nodes[0].upgrade_count() == 1).await;
    wait_all_up(&nodes).await;
    assert_eq!(nodes[0].upgrade_count(), 1, "one upgrade, one reboot");
    assert_eq!(nodes[0].locked_sequence_count(), 1);
    assert_eq!(nodes[0].talos_version(), "v1.12.11");
    let mut cp1 = connect(apid_of(&nodes[0]), &admin).await;
    assert_eq!(ok(cp1.version().await, "version").tag, "v1.12.11");

    // A/B rollback: the node comes back, on the old version.
    nodes[1].inject_upgrade_rollback();
    let mut cp2 = connect(apid[1], &admin).await;
    ok(cp2.upgrade(&installer("v1.12.11")).await, "upgrade cp2");
    eventually("cp2 rolled back", || nodes[1].rollback_count() == 1).await;
    wait_all_up(&nodes).await;
    let mut cp2 = connect(apid_of(&nodes[1]), &admin).await;
    assert_eq!(ok(cp2.version().await, "version").tag, "v1.12.4");
    assert_eq!(nodes[1].upgrade_count(), 0);

    // A path Talos' installer refuses, and a reader may not upgrade.
    let mut cp3 = connect(apid_of(&nodes[2]), &admin).await;
    let skipped = cp3.upgrade(&installer("v1.15.0")).await;
    assert_eq!(
        skipped.err().and_then(|e| e.code()),
        Some(Code::FailedPrecondition)
    );
    let mut reader = connect(apid_of(&nodes[2]), &cluster.creds(&["os:reader"])).await;
    assert_eq!(
        reader
            .upgrade(&installer("v1.12.11"))
            .await
            .err()
            .and_then(|e| e.code()),
        Some(Code::PermissionDenied)
    );

    assert_eq!(nodes[2].upgrade_count(), 0);
    assert_eq!(
        nodes[0].cluster_max_control_planes_down(),
        1,
        "one control plane down at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_brings_deleted_objects_back_after_etcd_is_wiped_and_recovered() {
    let (cluster, nodes, apid) = three_control_planes(191).await;
    let Some(kube) = nodes[0].kube() else {
        panic!("no API")
    };
    let cm = ("", "v1", "configmaps");
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep-me", "namespace": "default"}, "data": {"k": "v"}});
    assert!(kube.create(cm, Some("default"), object).is_ok(), "create");

    // An etcd backup role is enough to take a snapshot.
    let mut backup = connect(apid[1], &cluster.creds(&["os:etcd:backup"])).await;
    let mut stream = ok(backup.etcd_snapshot().await, "snapshot");
    let mut chunks = Vec::new();
    while let Some(chunk) = ok(stream.next_chunk().await, "chunk") {
        chunks.push(chunk);
    }
    assert!(!chunks.is_empty());

    assert!(
        kube.delete(cm, Some("default"), "keep-me").is_ok(),
        "delete"
    );
    drop(kube);

    // Talos' recovery: wipe EPHEMERAL on every control plane, upload to one, bootstrap from it.
    let admin = cluster.creds(&["os:admin"]);
    let wipe = ResetOptions {
        graceful: false,
        reboot: true,
        partitions: vec!["EPHEMERAL".into()],
    };
    for at in &apid {
        ok(connect(*at, &admin).await.reset(&wipe).await, "reset");
    }
    eventually("etcd wiped everywhere", || {
        nodes.iter().all(|n| !n.is_etcd_member())
    })
    .await;
    let start = Instant::now();
    let mut cp1 = loop {
        // The node reboots: retry until its apid takes the upload.
        let upload = tokio_stream::iter(chunks.clone());
        let NodePhase::Installed(at) = nodes[0].phase() else {
            assert!(start.elapsed() < WAIT, "cp1 never came back");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        match ApidClient::connect(at, &admin).await {
            Ok(mut c) => match c.etcd_recover(upload).await {
                Ok(()) => break c,
                Err(e) => assert!(start.elapsed() < WAIT, "recover: {e}"),
            },
            Err(e) => assert!(start.elapsed() < WAIT, "connect: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        ok(cp1.bootstrap_recover(false).await, "bootstrap"),
        Bootstrapped::Now
    );
    wait_all_up(&nodes).await;
    let Some(kube) = nodes[2].kube() else {
        panic!("no API")
    };
    let back = kube.get("", "v1", "configmaps", Some("default"), "keep-me");
    assert_eq!(back.map(|o| o["data"]["k"].clone()), Some(json!("v")));

    let mut cp2 = connect(apid_of(&nodes[1]), &admin).await;
    let members = ok(cp2.etcd_member_list().await, "members");
    assert_eq!(members.len(), 3);
    let status = ok(cp2.etcd_status().await, "status");
    assert!(
        members.iter().any(|m| m.id == status.leader),
        "the leader is a member"
    );
    assert_eq!(status.protocol_version, "3.6.7");
}

/// The code and message of a refused call.
fn refusal<T>(r: Result<T, homelab_apid::ApidError>) -> (Option<Code>, String) {
    match r {
        Ok(_) => panic!("the call was not refused"),
        Err(e) => (e.code(), e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leave_or_are_removed_as_etcd_allows_but_the_last_one_stays() {
    let (cluster, nodes, apid) = three_control_planes(192).await;
    let admin = cluster.creds(&["os:admin"]);
    let mut cp1 = connect(apid[0], &admin).await;
    let mut cp2 = connect(apid[1], &admin).await;
    let members = ok(cp1.etcd_member_list().await, "members");
    let id = |name: &str| {
        members
            .iter()
            .find(|m| m.hostname == name)
            .map(|m| m.id)
            .unwrap_or_else(|| panic!("{name} is a member"))
    };
    let (cp1_id, cp3_id) = (id("cp1"), id("cp3"));

    // With cp3 down, a running member may not leave: two of three running, one would be left.
    nodes[2].power_off();
    let (code, text) = refusal(cp2.etcd_leave_cluster().await);
    assert_eq!(code, Some(Code::Unknown), "{text}");
    assert!(
        text.contains("failed to leave cluster: failed to remove member")
            && text.contains("etcdserver: unhealthy cluster"),
        "{text}"
    );
    // The member that is down may go.
    ok(cp1.etcd_remove_member_by_id(cp3_id).await, "remove cp3");
    let (code, text) = refusal(cp1.etcd_remove_member_by_id(cp3_id).await);
    assert_eq!(code, Some(Code::NotFound), "{text}");
    assert!(text.contains("etcdserver: member not found"), "{text}");
    // Two running members: one may leave.
    ok(cp2.etcd_leave_cluster().await, "cp2 leaves");
    assert!(!nodes[1].is_etcd_member());
    let names: Vec<String> = ok(cp1.etcd_member_list().await, "members")
        .into_iter()
        .map(|m| m.hostname)
        .collect();
    assert_eq!(names, ["cp1"]);
    // The last member stays, however it is asked to go.
    let (code, text) = refusal(cp1.etcd_leave_cluster().await);
    assert_eq!(code, Some(Code::Unknown), "{text}");
    assert!(
        text.contains("re-configuration failed due to not enough started members"),
        "{text}"
    );
    let (_, text) = refusal(cp1.etcd_remove_member_by_id(cp1_id).await);
    assert!(text.contains("not enough started members"), "{text}");
    // Quorum held throughout.
    assert_eq!(nodes[0].cluster_health(), ClusterHealth::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_of_three_leaving_keeps_quorum_and_the_vip() {
    let (cluster, nodes, apid) = three_control_planes(196).await;
    let admin = cluster.creds(&["os:admin"]);
    // The VIP holder leaves: another member takes the VIP, etcd keeps its quorum.
    let holder = vip_holder(&nodes).await;
    ok(
        connect(apid[holder], &admin)
            .await
            .etcd_leave_cluster()
            .await,
        "leave",
    );
    let other = &nodes[(holder + 1) % 3];
    assert_eq!(other.cluster_etcd_members().len(), 2);
    assert!(!nodes[holder].holds_vip());
    assert_eq!(other.cluster_health(), ClusterHealth::default());
}

/// etcd removes a running member (`talosctl etcd remove-member` from another node): that member shuts
/// itself down at once, its API server stops with it, the VIP it held moves, and it stays out of
/// etcd when the node boots again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_member_removed_from_elsewhere_stops_at_once_and_stays_out() {
    let (cluster, nodes, apid) = three_control_planes(197).await;
    let admin = cluster.creds(&["os:admin"]);
    let holder = vip_holder(&nodes).await;
    let other = (holder + 1) % 3;
    let mut client = connect(apid[other], &admin).await;
    let name = format!("cp{}", holder + 1);
    let id = ok(client.etcd_member_list().await, "members")
        .into_iter()
        .find(|m| m.hostname == name)
        .map(|m| m.id)
        .unwrap_or_else(|| panic!("{name} is a member"));

    ok(
        client.etcd_remove_member_by_id(id).await,
        "remove the running holder",
    );
    let removed = &nodes[holder];
    assert!(!removed.is_etcd_member(), "its etcd stopped");
    assert!(removed.kube().is_none(), "its API server stopped with etcd");
    assert!(!removed.holds_vip());
    eventually("another member holds the VIP", || {
        nodes.iter().any(NodeSim::holds_vip)
    })
    .await;
    let names: Vec<String> = ok(client.etcd_member_list().await, "members")
        .into_iter()
        .map(|m| m.hostname)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!names.contains(&name), "{names:?}");
    assert_eq!(nodes[other].cluster_health(), ClusterHealth::default());

    // Its data directory still names the removed member: after a reboot etcd does not start.
    removed.power_off();
    ok(removed.power_on().await, "power on");
    match removed.wait_installed(WAIT).await {
        Ok(_) => {}
        Err(phase) => panic!("did not boot again: {phase:?}"),
    }
    assert!(!removed.is_etcd_member());
    assert_eq!(nodes[other].cluster_etcd_members().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_reset_of_a_control_plane_leaves_etcd_and_keeps_quorum() {
    let (cluster, nodes, apid) = three_control_planes(195).await;
    let admin = cluster.creds(&["os:admin"]);
    let mut cp1 = connect(apid[0], &admin).await;
    let members = ok(cp1.etcd_member_list().await, "members");
    let Some(cp2_id) = members.iter().find(|m| m.hostname == "cp2").map(|m| m.id) else {
        panic!("cp2 is a member")
    };
    ok(
        connect(apid[2], &admin)
            .await
            .reset(&ResetOptions::default())
            .await,
        "reset cp3",
    );
    assert!(nodes[2].reset_failures().is_empty());
    let Ok(_) = nodes[2].wait_maintenance(WAIT).await else {
        panic!("cp3 not back in maintenance: {:?}", nodes[2].phase())
    };
    assert_eq!(nodes[0].cluster_etcd_members(), ["cp1", "cp2"]);
    assert_eq!(nodes[0].cluster_health(), ClusterHealth::default());
    // Its Node object stays (NotReady, cordoned): deleting it is the operator's job.
    let Some(kube) = nodes[0].kube() else {
        panic!("no API")
    };
    let cp3 = kube.get("", "v1", "nodes", None, "cp3");
    assert_eq!(
        cp3.map(|n| n["spec"]["unschedulable"].clone()),
        Some(json!(true))
    );

    // A reset that is not graceful leaves its member behind, down.
    let hard = ResetOptions {
        graceful: false,
        ..ResetOptions::default()
    };
    ok(
        connect(apid[1], &admin).await.reset(&hard).await,
        "reset cp2",
    );
    assert!(nodes[1].wait_maintenance(WAIT).await.is_ok());
    assert_eq!(nodes[0].cluster_etcd_members(), ["cp1", "cp2"]);
    // One of two running: quorum is lost until the dead member is removed, which etcd cannot
    // do without a leader.
    assert_eq!(nodes[0].cluster_health().quorum_losses, 1);
    let (code, text) = refusal(cp1.etcd_remove_member_by_id(cp2_id).await);
    assert_eq!(code, Some(Code::Unknown), "{text}");
    assert!(text.contains("etcdserver: no leader"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_two_of_three_control_planes_is_recorded_as_a_moment_without_quorum() {
    let (_cluster, nodes, _apid) = three_control_planes(194).await;
    assert_eq!(nodes[0].cluster_health(), ClusterHealth::default());
    // The VIP holder stops first: another member takes the VIP at once, quorum stays.
    eventually("a node holds the VIP", || {
        nodes.iter().any(NodeSim::holds_vip)
    })
    .await;
    let (Some(first), Some(holder)) = (
        nodes.iter().position(NodeSim::holds_vip),
        nodes[0].cluster_vip_holder(),
    ) else {
        panic!("nobody holds the VIP")
    };
    nodes[first].power_off();
    let survivor = &nodes[(first + 1) % 3];
    assert_eq!(survivor.cluster_health(), ClusterHealth::default());
    assert!(survivor.cluster_vip_holder().is_some_and(|h| h != holder));
    nodes[(first + 2) % 3].power_off();
    let health = survivor.cluster_health();
    assert_eq!(health.quorum_losses, 1, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_and_api_server_versions_follow_the_applied_config_without_a_reboot() {
    let cluster = Cluster::new();
    let n = node(&at(193, 1), |_| {}).await;
    let addr = ip(&at(193, 11));
    // Installed from a v1.13.9 installer: Talos 1.13 runs Kubernetes 1.36 (1.12 would refuse it).
    let config = cluster
        .config("cp1", addr, "")
        .replace(
            "  clusterName: homelab\n",
            "  clusterName: homelab\n  apiServer:\n    image: registry.k8s.io/kube-apiserver:v1.35.0\n",
        )
        .replace(":v1.12.4\n", ":v1.13.9\n");
    let at = install(&n, &config).await;
    let mut c = connect(at, &cluster.creds(&["os:admin"])).await;
    ok(c.bootstrap().await, "bootstrap");
    let version = |n: &NodeSim| {
        n.kube()
            .and_then(|k| k.get("", "v1", "nodes", None, "cp1"))
            .map(|o| o["status"]["nodeInfo"]["kubeletVersion"].clone())
    };
    eventually("cp1 registered", || version(&n).is_some()).await;
    assert_eq!(version(&n), Some(json!("v1.35.0")));
    assert_eq!(n.kube().map(|k| k.version()), Some("v1.35.0".into()));

    let newer = config.replace("v1.35.0", "v1.36.1");
    let applied = ok(
        c.apply_configuration(newer.as_bytes(), ApplyMode::NoReboot, false)
            .await,
        "apply",
    );
    assert_eq!(applied.mode, Some(ApplyMode::NoReboot));
    eventually("the kubelet reports v1.36.1", || {
        version(&n) == Some(json!("v1.36.1"))
    })
    .await;
    // The API server's static pod restarts on its new image before it answers with the new version.
    eventually("the API server reports v1.36.1", || {
        n.kube().map(|k| k.version()) == Some("v1.36.1".into())
    })
    .await;
    assert_eq!(n.talos_version(), "v1.13.9", "the installer's release runs");
    assert_eq!(n.static_pod_restarts(), 1, "only kube-apiserver changed");
}
