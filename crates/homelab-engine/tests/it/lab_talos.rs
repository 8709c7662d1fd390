//! The flow against Talos as it really behaves (the simulator's default model): a worker's apid
//! certificate only through the endpoint (a VIP that answers once etcd runs, discovery off), a
//! guest agent silent in maintenance mode, EtcdMemberList blocking before the bootstrap, learners,
//! and Kubeconfig refused by workers. Assertions use the simulators' counters and the events, never
//! wall time.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use homelab_engine::events::{Event, EventSink};
use homelab_engine::plan::Action;
use homelab_engine::ports::TalosApi;
use homelab_sim::lab::LabOptions;
use homelab_sim::talos::TrustdRoute;
use tokio::sync::Notify;

use super::lab::World;
use super::lab_faults::infos;
use super::lab_ha::{CONTROL_PLANES, WORKER, events_text, ha_world, ha_yaml, net};

/// Index of the first event `matches` accepts.
fn position(w: &World, what: &str, matches: impl Fn(&Event) -> bool) -> usize {
    w.events
        .lock()
        .expect("lock")
        .iter()
        .position(matches)
        .unwrap_or_else(|| panic!("no event for {what}:\n{}", events_text(w)))
}

fn finished(resource: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::StepFinished { resource: r, .. } if r == resource)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_with_the_vip_as_endpoint_and_no_discovery_converges_bootstrapping_before_waiting_for_workers()
 {
    let w = ha_world(196, ha_yaml).await;
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{}", events_text(&w)));
    let worker = w.lab.node(WORKER.1).expect("worker booted");
    // The worker's certificate came from trustd at the VIP: there was no other way.
    assert_eq!(worker.trustd_route(), Some(TrustdRoute::Vip));
    let cp1 = w.lab.node(CONTROL_PLANES[0].1).expect("cp-1 booted");
    assert_eq!(cp1.cluster_etcd_bootstraps(), 1);
    // Order (Talos' own): bootstrap, then every control plane a voting member, then the endpoint, and
    // only then the worker's install ends (its apid needs the endpoint).
    let bootstrap = position(&w, "bootstrap", finished("bootstrap"));
    let etcd = position(&w, "etcd join", finished("etcd"));
    let worker_installed = position(
        &w,
        "the worker's install",
        |e| matches!(e, Event::StepFinished { resource, .. } if resource == &format!("machine_config.{}", WORKER.0)),
    );
    let endpoint = position(
        &w,
        "the endpoint answering",
        |e| matches!(e, Event::Info { message, .. } if message.starts_with("waiting up to") && message.contains("for node")),
    );
    let cp1_installed = position(
        &w,
        "cp-1's install",
        |e| matches!(e, Event::StepFinished { resource, .. } if resource == &format!("machine_config.{}", CONTROL_PLANES[0].0)),
    );
    assert!(
        cp1_installed < bootstrap,
        "bootstrap once cp-1 is installed"
    );
    assert!(
        bootstrap < etcd && etcd < worker_installed,
        "{}",
        events_text(&w)
    );
    assert!(worker_installed < endpoint, "nodes Ready are awaited last");
    // Every wait said what it waits for and why.
    let infos = w.events.lock().expect("lock").clone();
    let waits = infos
        .iter()
        .filter(
            |e| matches!(e, Event::Info { message, .. } if message.starts_with("waiting up to")),
        )
        .count();
    assert!(waits >= 6, "{}", events_text(&w));

    // A worker never hands out a kubeconfig: a clear, permanent error rather than a wait.
    let worker_at = format!("{}.21:50000", net(196)).parse().expect("addr");
    let err = w
        .talos
        .kubeconfig(worker_at)
        .await
        .expect_err("a worker refuses");
    assert!(!err.transient, "{err:?}");
    assert!(
        err.message.contains("worker") && err.message.contains("control plane"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_silent_guest_agent_and_a_dhcp_reservation_the_node_is_reached_at_its_reserved_address()
 {
    let subnet = 96;
    let mut options = LabOptions::fast(subnet);
    options.talos.agent_in_maintenance = false;
    // The reservation: the node's MAC always gets its static address (as in the original deployment).
    options.dhcp_reservations = BTreeMap::from([(
        format!("bc:24:11:ca:fe:{subnet:02x}"),
        Ipv4Addr::new(127, 0, subnet, 100),
    )]);
    let w = World::start_with_options(subnet, options).await;
    let mut engine = w.engine();
    // The real agent budget: a fallback after it would show as a 300 s stall (and a test timeout).
    engine.timeouts.agent = Duration::from_secs(300);
    engine
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{}", events_text(&w)));
    let messages = infos(&w);
    assert!(
        messages.iter().any(|m| m
            == &format!(
                "config applied in maintenance mode at 127.0.{subnet}.100:50000 (from the static address (DHCP reservation))"
            )),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("from the guest agent")),
        "the agent path was not taken: {messages:?}"
    );
    let node = w.lab.node(100).expect("node");
    assert!(node.is_bootstrapped());
    // The agent never answered while the node was in maintenance mode: at most the polls made while
    // the reserved address did not answer yet, none of them successful.
    let agent = "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces";
    let polls = w.lab.proxmox.requests().get(agent);
    assert!(polls <= 3, "agent polled {polls} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_status_and_apply_before_the_bootstrap_do_not_stall_on_etcd_member_list() {
    // Cut an HA apply as the bootstrap starts: three control planes installed, etcd not running.
    let w = ha_world(197, ha_yaml).await;
    let kill = Arc::new(Notify::new());
    let trigger = kill.clone();
    let mut engine = w.engine();
    engine.events = EventSink::new(move |e| {
        if matches!(e, Event::StepStarted { resource, .. } if resource == "bootstrap") {
            trigger.notify_one();
        }
    });
    tokio::select! {
        r = engine.converge(false) => panic!("the run was not cut off: {:?}", r.err()),
        () = kill.notified() => {}
    }
    drop(engine);
    let nodes: Vec<_> = CONTROL_PLANES
        .iter()
        .map(|(_, id)| w.lab.node(*id).expect("control plane booted"))
        .collect();
    let blocked = |nodes: &[homelab_sim::talos::NodeSim]| -> u64 {
        nodes.iter().map(|n| n.etcd_list_blocked()).sum()
    };
    let before = blocked(&nodes);
    assert!(
        before >= 1,
        "the bootstrap check asked etcd and was held to its deadline"
    );

    // Talos holds each EtcdMemberList until its deadline (120 s without one): the adapter's short
    // deadline makes "no cluster yet" of it, so plan and status finish.
    let plan = w.engine().plan().await.expect("plan");
    let action = |address: &str| {
        plan.changes
            .iter()
            .find(|c| c.address == address)
            .map(|c| c.action)
    };
    assert_eq!(action("bootstrap"), Some(Action::Create), "{plan:?}");
    assert_eq!(action("etcd"), Some(Action::Create), "{plan:?}");
    let after_plan = blocked(&nodes);
    assert!(after_plan > before, "plan asked etcd before the bootstrap");
    let rows = w.engine().status().await;
    let etcd: Vec<_> = rows.iter().filter(|r| r.component == "etcd").collect();
    assert_eq!(etcd.len(), 3);
    assert!(
        etcd.iter()
            .all(|r| !r.healthy && r.detail.contains("not running")),
        "{rows:?}"
    );
    assert!(
        blocked(&nodes) >= after_plan + 3,
        "status asked every control plane"
    );

    // And apply carries on from there.
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("apply after the cut: {e}\n{}", events_text(&w)));
    assert_eq!(nodes[0].cluster_etcd_bootstraps(), 1);
}

/// examples/ha/homelab.yaml moved onto this process's loopback /24 and pointed at the lab.
fn example_ha_yaml(lab: &homelab_sim::lab::Lab, subnet: u8) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/ha/homelab.yaml"
    ))
    .expect("examples/ha/homelab.yaml");
    let info = lab.info();
    example
        .replace("https://192.168.20.10:8006", &info.proxmox_endpoint)
        .replace(
            "  node: pve\n",
            &format!(
                "  node: {}\n  tls:\n    fingerprint: \"{}\"\n",
                info.proxmox_node, info.fingerprint
            ),
        )
        .replace("homelabctl@pve!provision", &info.token_id)
        .replace("https://factory.talos.dev", &info.factory_url)
        .replace("192.168.20.", &format!("{}.", net(subnet)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ha_example_converges_with_its_vip_endpoint_reservations_and_a_silent_agent() {
    let subnet = 198;
    let mut options = LabOptions::fast(subnet);
    options.dhcp_first = Ipv4Addr::new(127, super::lab_ha::octet(), subnet, 200);
    // As the example says: each fixed MAC has a DHCP reservation equal to the node's static address.
    options.dhcp_reservations = [("11", 111), ("12", 112), ("13", 113), ("21", 121)]
        .into_iter()
        .map(|(mac, host)| {
            (
                format!("bc:24:11:ca:fe:{mac}"),
                Ipv4Addr::new(127, super::lab_ha::octet(), subnet, host),
            )
        })
        .collect();
    // talos#11651: the guest agent does not run in maintenance mode; discovery is off (sim default).
    options.talos.agent_in_maintenance = false;
    let w = World::start_lab(subnet, options, example_ha_yaml).await;
    assert_eq!(
        w.config.cluster.endpoint,
        format!("https://{}.110:6443", net(subnet)),
        "the endpoint is the VIP"
    );
    let mut engine = w.engine();
    engine.timeouts.agent = Duration::from_secs(300);
    engine
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge the HA example: {e}\n{}", events_text(&w)));
    let worker = w.lab.node(121).expect("worker booted");
    assert_eq!(worker.trustd_route(), Some(TrustdRoute::Vip));
    let cp1 = w.lab.node(111).expect("cp-1 booted");
    assert_eq!(cp1.cluster_etcd_bootstraps(), 1);
    let mut members = cp1.cluster_etcd_members();
    members.sort();
    assert_eq!(members, ["talos-cp-01", "talos-cp-02", "talos-cp-03"]);
    assert!(
        !infos(&w).iter().any(|m| m.contains("from the guest agent")),
        "every node was reached at its reserved address"
    );
    assert!(!w.engine().plan().await.expect("plan").has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ntp_unreachable_the_bootstrap_fails_in_its_budget_saying_what_talos_waits_for() {
    let subnet = 97;
    let mut options = LabOptions::fast(subnet);
    options.talos.time_sync = None;
    let w = World::start_with_options(subnet, options).await;
    let mut engine = w.engine();
    engine.timeouts.bootstrap = Duration::from_secs(1);
    let err = match engine.converge(false).await {
        Ok(_) => panic!("the time never syncs: the bootstrap cannot succeed"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.starts_with("bootstrap:") && text.contains("time") && text.contains("NTP"),
        "{text}"
    );
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("cluster.bootstrap_timeout")),
        "{:?}",
        err.hint()
    );
    let node = w.lab.node(100).expect("node");
    assert!(node.bootstrap_precondition_refusals() >= 1);
    assert!(!node.is_bootstrapped());
}
