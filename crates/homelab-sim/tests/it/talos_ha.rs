//! Several simulated Talos nodes of one HA cluster: one bootstrap, control planes joining etcd
//! through the VIP endpoint, workers registering through it, and the VIP moving when its holder
//! goes down (and vanishing without etcd quorum).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use homelab_apid::{ApidClient, Bootstrapped};
use homelab_sim::talos::{NodeSim, TrustdRoute};
use tonic::Code;

use crate::fixture::{Cluster, WAIT, apply_in_maintenance, install, ip, ok};

/// `127.<octet>.<net>.<host>`: the second octet differs per test process, so the same test run
/// at the same time by another worktree's gate lands on other loopback addresses.
pub(crate) fn at(net: u8, host: usize) -> String {
    format!("127.{}.{net}.{host}", (std::process::id() % 250) + 1)
}

/// `cluster.config` with the endpoint at the VIP and, on control planes, a Layer2VIPConfig.
pub(crate) fn ha_config(
    cluster: &Cluster,
    name: &str,
    addr: IpAddr,
    vip: IpAddr,
    worker: bool,
) -> String {
    let own = format!("endpoint: https://{addr}:6443");
    let shared = format!("endpoint: https://{vip}:6443");
    if worker {
        return cluster.worker_config(name, addr, vip);
    }
    format!(
        "{}---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: {vip}\nlink: eth0\n",
        cluster.config(name, addr, "").replace(&own, &shared)
    )
}

pub(crate) async fn ha_node(cluster: &Cluster, maintenance: &str) -> NodeSim {
    // The API servers listen on the endpoint's port, as on real nodes.
    cluster.node(maintenance, |o| o.kube_port = None).await
}

pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn answers(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_planes_join_etcd_through_the_vip_which_moves_when_its_holder_goes_down() {
    let cluster = Cluster::new();
    let vip = ip(&at(181, 10));
    let api = SocketAddr::new(vip, 6443);
    let names = ["cp1", "cp2", "cp3", "w1"];
    let addrs = [&at(181, 11), &at(181, 12), &at(181, 13), &at(181, 21)];
    let mut nodes = Vec::new();
    let mut apid = Vec::new();
    for (i, (name, addr)) in names.iter().zip(addrs).enumerate() {
        let n = ha_node(&cluster, &at(182, i + 1)).await;
        let cfg = ha_config(&cluster, name, ip(addr), vip, *name == "w1");
        if *name == "w1" {
            apply_in_maintenance(&n, &cfg).await;
        } else {
            apid.push(install(&n, &cfg).await);
        }
        nodes.push(n);
    }
    let admin = cluster.creds(&["os:admin"]);
    let mut cp2 = ok(ApidClient::connect(apid[1], &admin).await, "cp2");
    let before = cp2
        .etcd_member_list_within(Duration::from_millis(200))
        .await
        .err()
        .and_then(|e| e.code());
    assert!(
        matches!(before, Some(Code::DeadlineExceeded | Code::Cancelled)),
        "no etcd before the bootstrap: the call waits out its deadline ({before:?})"
    );
    assert_eq!(nodes[1].etcd_list_blocked(), 1);
    assert!(!answers(api).await, "no VIP before etcd runs");
    // The worker's endpoint is the VIP: without etcd nobody holds it, so trustd cannot sign the
    // worker's apid certificate and its apid does not listen.
    assert!(
        nodes[3]
            .wait_installed(Duration::from_millis(300))
            .await
            .is_err()
    );
    assert!(nodes[3].trustd_unreachable() > 0);

    let mut cp1 = ok(ApidClient::connect(apid[0], &admin).await, "cp1");
    assert_eq!(ok(cp1.bootstrap().await, "bootstrap"), Bootstrapped::Now);
    eventually("three etcd members", || {
        nodes[..3].iter().all(NodeSim::is_etcd_member)
    })
    .await;
    // Joining members are learners first (unnamed until their etcd starts), then voters.
    let mut learners_seen = false;
    let start = Instant::now();
    let members = loop {
        let members = ok(cp2.etcd_member_list().await, "members");
        if members.iter().any(|m| m.is_learner) {
            learners_seen = true;
        } else {
            break members;
        }
        assert!(start.elapsed() < WAIT, "learners never promoted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut members: Vec<String> = members.into_iter().map(|m| m.hostname).collect();
    members.sort();
    assert_eq!(members, ["cp1", "cp2", "cp3"]);
    assert!(learners_seen, "the joining members were learners first");
    assert_eq!(
        ok(cp2.bootstrap().await, "bootstrap on a joined member"),
        Bootstrapped::Already
    );
    assert_eq!(nodes[0].cluster_etcd_bootstraps(), 1);
    assert!(nodes[0].is_bootstrapped() && !nodes[1].is_bootstrapped());
    assert!(!nodes[3].is_etcd_member(), "workers run no etcd");

    eventually("the VIP to be held", || {
        nodes.iter().any(NodeSim::holds_vip)
    })
    .await;
    assert!(answers(api).await, "the API answers at the VIP");
    match nodes[3].wait_installed(WAIT).await {
        Ok(addr) => apid.push(addr),
        Err(phase) => panic!("the worker's apid never came up: {phase:?}"),
    }
    assert_eq!(nodes[3].trustd_route(), Some(TrustdRoute::Vip));
    let Some(kube) = nodes[0].kube() else {
        panic!("cp1 runs no API server")
    };
    eventually("every node registered Ready", || {
        names.iter().all(|n| {
            kube.get("", "v1", "nodes", None, n)
                .is_some_and(|o| o["status"]["conditions"][0]["status"] == "True")
        })
    })
    .await;
    let worker = kube.get("", "v1", "nodes", None, "w1");
    let cp = kube.get("", "v1", "nodes", None, "cp3");
    let role = |o: &Option<serde_json::Value>| {
        o.as_ref()
            .is_some_and(|o| o["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "")
    };
    assert!(role(&cp) && !role(&worker));

    let Some(first) = nodes.iter().position(NodeSim::holds_vip) else {
        panic!("nobody holds the VIP")
    };
    nodes[first].power_off();
    eventually("the VIP to move", || {
        nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i != first && n.holds_vip())
    })
    .await;
    assert!(
        answers(api).await,
        "the API answers at the VIP after failover"
    );

    let Some(second) = nodes.iter().position(NodeSim::holds_vip) else {
        panic!("nobody holds the VIP")
    };
    nodes[second].power_off();
    eventually("the VIP to go without etcd quorum", || {
        !nodes.iter().any(NodeSim::holds_vip)
    })
    .await;
    let start = Instant::now();
    while answers(api).await {
        assert!(
            start.elapsed() < WAIT,
            "one of three members: no quorum, yet the VIP answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_on_a_control_plane_that_has_not_joined_is_counted_as_a_second_etcd() {
    let cluster = Cluster::new();
    let cp1 = ha_node(&cluster, &at(189, 1)).await;
    let cp2 = ha_node(&cluster, &at(189, 2)).await;
    let a1 = install(&cp1, &cluster.config("cp1", ip(&at(188, 11)), "")).await;
    // cp2's endpoint names an address nobody serves: it can never find etcd to join.
    let lonely = cluster.config("cp2", ip(&at(188, 12)), "").replace(
        &format!("endpoint: https://{}:6443", at(188, 12)),
        &format!("endpoint: https://{}:6443", at(188, 99)),
    );
    let a2 = install(&cp2, &lonely).await;
    let admin = cluster.creds(&["os:admin"]);
    let mut c1 = ok(ApidClient::connect(a1, &admin).await, "cp1");
    assert_eq!(ok(c1.bootstrap().await, "bootstrap"), Bootstrapped::Now);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cp2.is_etcd_member(), "no endpoint, no join");
    let mut c2 = ok(ApidClient::connect(a2, &admin).await, "cp2");
    assert_eq!(
        ok(c2.bootstrap().await, "bootstrap cp2"),
        Bootstrapped::Now,
        "Talos starts a new etcd here, as the real one does"
    );
    assert_eq!(cp1.cluster_etcd_bootstraps(), 2, "a split brain is visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_registers_only_through_an_endpoint_that_answers() {
    let cluster = Cluster::new();
    let cp = ha_node(&cluster, &at(189, 3)).await;
    let good = ha_node(&cluster, &at(189, 4)).await;
    let lost = ha_node(&cluster, &at(189, 5)).await;
    let a = install(&cp, &cluster.config("cp3", ip(&at(188, 13)), "")).await;
    install(
        &good,
        &cluster.worker_config("w4", ip(&at(188, 14)), ip(&at(188, 13))),
    )
    .await;
    apply_in_maintenance(
        &lost,
        &cluster.worker_config("w5", ip(&at(188, 15)), ip(&at(188, 98))),
    )
    .await;
    let mut c = ok(
        ApidClient::connect(a, &cluster.creds(&["os:admin"])).await,
        "cp",
    );
    ok(c.bootstrap().await, "bootstrap");
    let Some(kube) = cp.kube() else {
        panic!("no API after the bootstrap")
    };
    eventually("w4 registered", || {
        kube.get("", "v1", "nodes", None, "w4").is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        kube.get("", "v1", "nodes", None, "w5").is_none(),
        "a kubelet whose endpoint does not answer never registers"
    );
    assert!(
        lost.wait_installed(Duration::from_millis(100))
            .await
            .is_err()
            && lost.trustd_unreachable() > 0,
        "nor does its apid get a certificate"
    );
}
