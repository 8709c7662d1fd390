//! Interruption and fault tolerance against the simulators over real sockets: an apply cut off at every
//! step boundary converges when run again (one VM, one bootstrap), and injected faults are ridden out:
//! Proxmox errors and latency, an agent that answers late, apid flapping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_engine::events::{Event, EventSink};
use homelab_sim::lab::LabOptions;
use homelab_sim::proxmox::{EndpointFault, FaultKind, Faults};
use homelab_sim::talos::ApidFlapping;
use tokio::sync::Notify;

use super::lab::World;

/// Runs converge and cuts it off (drops the future, as a SIGKILL would stop the process) when the
/// `boundary`-th step event is emitted. Returns whether the cut happened before the run finished.
async fn converge_killed_at(w: &World, boundary: usize) -> bool {
    let seen = Arc::new(Mutex::new(0usize));
    let kill = Arc::new(Notify::new());
    let (counter, trigger) = (seen.clone(), kill.clone());
    let mut engine = w.engine();
    engine.events = EventSink::new(move |e| {
        if matches!(e, Event::StepStarted { .. } | Event::StepFinished { .. }) {
            let mut n = counter.lock().expect("lock");
            *n += 1;
            if *n == boundary {
                trigger.notify_one();
            }
        }
    });
    tokio::select! {
        result = engine.converge(false) => { result.expect("an uninterrupted converge succeeds"); false }
        () = kill.notified() => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_boundary_apply_again_converges_to_one_vm_and_one_bootstrap() {
    // Step events of a full run: image, vm create, vm start, machine_config install, bootstrap,
    // kubernetes, each started and finished: 12 boundaries.
    for boundary in 1..=12 {
        let w = World::start(50 + boundary as u8).await;
        let interrupted = converge_killed_at(&w, boundary).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.engine()
            .converge(false)
            .await
            .unwrap_or_else(|e| panic!("resume after a kill at boundary {boundary}: {e}"));
        assert_eq!(w.lab.proxmox.vms().len(), 1, "boundary {boundary}");
        assert_eq!(
            w.lab.proxmox.task_count("qmcreate"),
            1,
            "boundary {boundary}: never a second VM"
        );
        assert!(
            w.lab.node(100).expect("node").is_bootstrapped(),
            "boundary {boundary}"
        );
        assert!(
            !w.engine().plan().await.expect("plan").has_changes(),
            "boundary {boundary} (interrupted: {interrupted})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_rides_out_lock_timeouts_5xx_dropped_connections_and_latency() {
    let w = World::start(70).await;
    let fault = |endpoint: &str, kind: FaultKind| EndpointFault {
        max_failures: Some(2),
        latency: Duration::from_millis(20),
        ..EndpointFault::new(endpoint, kind, 0.5)
    };
    w.lab.proxmox.set_faults(Faults {
        seed: 7,
        endpoints: vec![
            fault("POST /nodes/{node}/qemu", FaultKind::LockTimeout),
            fault(
                "POST /nodes/{node}/qemu/{vmid}/status/start",
                FaultKind::Unavailable,
            ),
            fault(
                "GET /nodes/{node}/qemu/{vmid}/status/current",
                FaultKind::DropBefore,
            ),
            fault(
                "GET /nodes/{node}/storage/{storage}/content",
                FaultKind::Unavailable,
            ),
        ],
        ..Faults::default()
    });
    w.engine().converge(false).await.unwrap_or_else(|e| {
        panic!(
            "converge under faults: {e}\n{:?}",
            w.events.lock().expect("lock")
        )
    });
    assert_eq!(w.lab.proxmox.vms().len(), 1);
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        1,
        "a failed create was checked, not re-sent blindly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_fault_stops_with_a_clear_error_inside_the_timeout() {
    let w = World::start(71).await;
    w.lab.proxmox.set_faults(Faults {
        failing_tasks: [(
            "qmcreate".to_string(),
            "storage 'local-lvm' is full".to_string(),
        )]
        .into(),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let err = match w.engine().converge(false).await {
        Ok(_) => panic!("a failing create task must fail the apply"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("vm.talos-cp-01") && err.contains("full"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

pub(super) fn infos(w: &World) -> Vec<String> {
    w.events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            Event::Info { message, .. } | Event::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_answers_late_is_waited_for_and_its_address_used() {
    // The agent comes up 2 s after the VM starts (the fast lab's is 150 ms), and every agent call takes
    // 300 ms to answer: the apply must keep polling rather than fall back to the static address.
    let mut options = LabOptions::fast(72);
    options.proxmox.timing.agent_delay = Duration::from_secs(2);
    let w = World::start_with_options(72, options).await;
    let agent = "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces";
    w.lab.proxmox.set_faults(Faults {
        endpoints: vec![EndpointFault {
            latency: Duration::from_millis(300),
            ..EndpointFault::new(agent, FaultKind::Unavailable, 0.0)
        }],
        ..Faults::default()
    });
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge with a late agent: {e}\n{:?}", infos(&w)));
    let messages = infos(&w);
    assert!(
        messages.iter().any(|m| m
            == "config applied in maintenance mode at 127.0.72.200:50000 (from the guest agent)"),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("using 127.0.72.100")),
        "no fallback to the static address: {messages:?}"
    );
    let polls = w.lab.proxmox.requests().get(agent);
    assert!(
        polls >= 3,
        "the agent was asked {polls} times: it answered late"
    );
    assert!(w.lab.node(100).expect("node").is_bootstrapped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_while_apid_flaps() {
    // apid refuses new connections and cuts open ones for 60 ms out of every 120 ms, for the first 3 s
    // after the VM boots: the maintenance apply, the install wait, bootstrap and kubeconfig meet outages.
    let flapping = ApidFlapping {
        duration: Duration::from_secs(3),
        up: Duration::from_millis(60),
        down: Duration::from_millis(60),
    };
    let mut options = LabOptions::fast(73);
    options.apid_flapping = Some(flapping);
    let w = World::start_with_options(73, options).await;
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge while apid flaps: {e}\n{:?}", infos(&w)));
    let node = w.lab.node(100).expect("node");
    assert!(
        node.apid_drops() >= 2,
        "the flapping refused or cut connections during the apply: {}",
        node.apid_drops()
    );
    assert_eq!(w.lab.proxmox.vms().len(), 1);
    assert!(node.is_bootstrapped());
    assert_eq!(node.bootstrap_count(), 1, "etcd bootstrapped once");
    tokio::time::sleep(flapping.duration).await;
    let plan = w.engine().plan().await.expect("plan");
    assert!(
        !plan.has_changes(),
        "once apid is steady the plan is empty: {plan:?}"
    );
}
