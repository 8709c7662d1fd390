//! Transient faults: retried with a bound, and a create is never sent twice for a VM that landed.

use homelab_proxmox::{ClientEvent, Error, ErrorKind};
use homelab_sim::proxmox::{EndpointFault, FaultKind, Faults, SimOptions};

use crate::support::{MAC, recorder, reference_vm, start, wait};

fn once(endpoint: &str, kind: FaultKind) -> EndpointFault {
    EndpointFault {
        max_failures: Some(1),
        ..EndpointFault::new(endpoint, kind, 1.0)
    }
}

#[tokio::test]
async fn gets_are_retried_through_503s_resets_and_lock_timeouts() {
    for kind in [
        FaultKind::Unavailable,
        FaultKind::DropBefore,
        FaultKind::LockTimeout,
    ] {
        let faults = Faults {
            endpoints: vec![EndpointFault {
                max_failures: Some(2),
                ..EndpointFault::new("GET /version", kind, 1.0)
            }],
            ..Faults::default()
        };
        let (_sim, client) = start(SimOptions {
            faults,
            ..SimOptions::fast()
        })
        .await;
        let (client, events) = recorder(client);
        client
            .version()
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let retries = events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| matches!(e, ClientEvent::Retrying { .. }))
            .count();
        assert_eq!(retries, 2, "{kind:?}");
    }
}

#[tokio::test]
async fn retries_are_bounded() {
    let faults = Faults {
        endpoints: vec![EndpointFault::new(
            "GET /version",
            FaultKind::Unavailable,
            1.0,
        )],
        ..Faults::default()
    };
    let (_sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    let (client, events) = recorder(client);
    let err = client.version().await.expect_err("always 503");
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert_eq!(
        events.lock().expect("lock").len(),
        4,
        "5 attempts = 4 retries"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_sent_again() {
    let faults = Faults {
        endpoints: vec![once("POST /nodes/{node}/qemu", FaultKind::DropAfter)],
        ..Faults::default()
    };
    let (sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    let created = client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect("create converges");
    assert_eq!(
        created.upid, None,
        "the answer was lost; the VM was found by id"
    );
    assert_eq!(
        sim.task_count("qmcreate"),
        1,
        "exactly one create reached the node"
    );
    let vm = sim.vm(9001).expect("vm exists");
    assert_eq!(vm.lock, None, "the client waited for the create to finish");
    assert_eq!(vm.mac.as_deref(), Some("bc:24:11:ca:fe:01"));
}

#[tokio::test]
async fn a_create_refused_by_a_lock_timeout_is_sent_again() {
    let faults = Faults {
        endpoints: vec![once("POST /nodes/{node}/qemu", FaultKind::LockTimeout)],
        ..Faults::default()
    };
    let (sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    let created = client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect("create");
    assert!(created.upid.is_some());
    assert_eq!(sim.task_count("qmcreate"), 1);
}

#[tokio::test]
async fn a_post_dropped_before_it_arrived_is_not_blindly_resent() {
    let faults = Faults {
        endpoints: vec![once(
            "POST /nodes/{node}/qemu/{vmid}/status/start",
            FaultKind::DropBefore,
        )],
        ..Faults::default()
    };
    let (sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect("create");
    // A reset mid-request is ambiguous for a POST: the client reports it instead of resending.
    let err = client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect_err("reset");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(sim.task_count("qmstart"), 0);
    // Running the step again converges.
    client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect("second run");
    assert_eq!(sim.task_count("qmstart"), 1);
}

#[tokio::test]
async fn seeded_faulty_runs_converge_with_one_create() {
    async fn run(seed: u64) -> usize {
        let endpoints = vec![
            EndpointFault::new("*", FaultKind::Unavailable, 0.2),
            EndpointFault::new(
                "GET /nodes/{node}/qemu/{vmid}/status/current",
                FaultKind::DropBefore,
                0.2,
            ),
            EndpointFault::new("POST /nodes/{node}/qemu", FaultKind::DropAfter, 0.5),
        ];
        let faults = Faults {
            seed,
            endpoints,
            ..Faults::default()
        };
        let (sim, client) = start(SimOptions {
            faults,
            ..SimOptions::fast()
        })
        .await;
        let (client, events) = recorder(client);
        client.version().await.expect("version");
        client
            .create_vm("pve", &reference_vm(9001, "none"), &wait())
            .await
            .expect("create converges");
        // An ambiguous POST failure is reported, not resent; re-running the step converges.
        let mut started = false;
        for _ in 0..6 {
            if client.ensure_started("pve", 9001, &wait()).await.is_ok() {
                started = true;
                break;
            }
        }
        assert!(
            started,
            "seed {seed}: start converges when the step is re-run"
        );
        let agent = homelab_proxmox::AgentWait {
            timeout: std::time::Duration::from_secs(10),
            interval: std::time::Duration::from_millis(30),
        };
        client
            .wait_agent_ipv4("pve", 9001, MAC, &agent)
            .await
            .expect("address");
        assert_eq!(
            sim.task_count("qmcreate"),
            1,
            "seed {seed}: never a second create"
        );
        events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| matches!(e, ClientEvent::Retrying { .. }))
            .count()
    }
    for seed in [42, 1, 2, 3] {
        assert!(
            run(seed).await > 0,
            "seed {seed} injected faults that were retried"
        );
    }
}
