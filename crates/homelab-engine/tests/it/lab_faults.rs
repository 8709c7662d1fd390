//! Interruption and fault tolerance against the simulators over real sockets: an apply cut off at every
//! step boundary converges when run again (one VM, one bootstrap), and injected Proxmox faults are ridden out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_engine::events::{Event, EventSink};
use homelab_sim::proxmox::{EndpointFault, FaultKind, Faults};
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
