//! Proxmox as it really behaves around locks, firmware and connections: power and destroy calls on a VM
//! under `lock: create` are tasks that fail ("VM is locked (create)", or a config-flock timeout) and the
//! client waits for the task holding the lock before trying again; destroying a VM takes its ACL entries
//! and pool membership with it; Secure Boot from `efidisk0` decides whether a Talos ISO boots; the client
//! rides out pveproxy closing connections and answering 596/599. Every wait is asserted from the
//! simulator's task list and counters, never from the clock.

use std::collections::BTreeSet;
use std::time::Duration;

use homelab_proxmox::{ClientEvent, ErrorKind};
use homelab_sim::proxmox::{
    AclEntry, Faults, ProxmoxSim, SIDERO_SIGNER, SecureBoot, SimOptions, sign_medium,
};

use crate::support::{recorder, reference_vm, start, wait};

const ISO: &str = "local:iso/talos.iso";

fn put_iso(sim: &ProxmoxSim, signer: Option<&str>) {
    let mut data = vec![0u8; 4096];
    if let Some(s) = signer {
        sign_medium(&mut data, s);
    }
    assert!(sim.put_volume("local", "iso/talos.iso", "iso", data));
}

/// The exit statuses of the tasks of `kind`, oldest first (`None` while running).
fn statuses(sim: &ProxmoxSim, kind: &str) -> Vec<Option<String>> {
    sim.tasks()
        .into_iter()
        .filter(|(k, _, _)| k == kind)
        .map(|(_, _, status)| status)
        .collect()
}

/// Polls the simulator until `cond` holds (the simulator's own state, not the clock, ends the wait).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the simulator never reached: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_racing_a_create_lock_waits_for_the_create_task_then_starts() {
    let (sim, client) = start(SimOptions::fast()).await;
    put_iso(&sim, None);
    let (client, events) = recorder(client);
    sim.hold_tasks("qmcreate");
    let spec = reference_vm(100, ISO);
    let create = client
        .create_vm_raw("pve", &spec.to_create_params())
        .await
        .expect("the create is accepted");
    assert_eq!(sim.vm(100).and_then(|v| v.lock).as_deref(), Some("create"));

    let starter = {
        let client = client.clone();
        tokio::spawn(async move { client.ensure_started("pve", 100, &wait()).await })
    };
    // PVE answers the start with a task, which then fails on the lock (not with an immediate 500).
    until("a qmstart task failed on the lock", || {
        statuses(&sim, "qmstart").first() == Some(&Some("VM is locked (create)".into()))
    })
    .await;
    assert_eq!(sim.task_count("qmstart"), 1, "no second start while locked");
    sim.release_tasks("qmcreate");
    starter
        .await
        .expect("join")
        .expect("the start converges once the create ended");

    assert!(sim.vm(100).expect("vm").running);
    assert_eq!(sim.task_count("qmcreate"), 1);
    assert_eq!(
        statuses(&sim, "qmstart"),
        vec![Some("VM is locked (create)".into()), Some("OK".into())]
    );
    let waited_on_create = events.lock().expect("lock").iter().any(|e| {
        matches!(e, ClientEvent::Waiting { last, .. }
            if last.contains(&format!("locked (create) by task {create}")))
    });
    assert!(
        waited_on_create,
        "the wait names the qmcreate task holding the lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_behind_a_slow_create_fails_on_the_config_lock_then_succeeds() {
    let mut opts = SimOptions::fast();
    opts.faults = Faults {
        slow_tasks: [("qmcreate".to_string(), Duration::from_millis(800))].into(),
        ..Faults::default()
    };
    let (sim, client) = start(opts).await;
    put_iso(&sim, None);
    client
        .create_vm_raw("pve", &reference_vm(100, ISO).to_create_params())
        .await
        .expect("create");
    client
        .ensure_started("pve", 100, &wait())
        .await
        .expect("the start waits out the create");
    let starts = statuses(&sim, "qmstart");
    assert_eq!(starts.len(), 2, "{starts:?}");
    let first = starts[0].clone().unwrap_or_default();
    // The create worker holds the config flock while it allocates disks (PVE's `lock_config` waits 10 s,
    // the simulator's fast timing 200 ms); a start that got in before the worker took it sees the lock.
    assert!(
        first == "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
            || first == "VM is locked (create)",
        "{first}"
    );
    assert_eq!(starts[1].as_deref(), Some("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_destroy_of_a_locked_vm_are_tasks_and_destroy_waits_for_the_lock() {
    let (sim, client) = start(SimOptions::fast()).await;
    put_iso(&sim, None);
    sim.hold_tasks("qmcreate");
    client
        .create_vm_raw("pve", &reference_vm(100, ISO).to_create_params())
        .await
        .expect("create");
    // `_do_vm_stop` returns at once for a VM that does not run: no lock check, the task succeeds.
    let stop = client.stop_vm("pve", 100).await.expect("stop is a task");
    client
        .wait_task(&stop, &wait())
        .await
        .expect("stop of a stopped VM is OK");
    // Destroy checks the lock in its worker: a task that fails, not a 500.
    let destroy = client
        .delete_vm("pve", 100, true, true)
        .await
        .expect("destroy is a task");
    let err = client
        .wait_task(&destroy, &wait())
        .await
        .expect_err("the destroy task fails on the lock");
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert!(err.to_string().contains("VM is locked (create)"), "{err}");

    let destroyer = {
        let client = client.clone();
        tokio::spawn(async move { client.destroy_vm("pve", 100, &wait()).await })
    };
    until("a second destroy failed on the lock", || {
        statuses(&sim, "qmdestroy").len() == 2
            && statuses(&sim, "qmdestroy")[1].as_deref() == Some("VM is locked (create)")
    })
    .await;
    sim.release_tasks("qmcreate");
    destroyer.await.expect("join").expect("destroy converges");
    assert!(sim.vm(100).is_none());
    assert_eq!(statuses(&sim, "qmdestroy").last(), Some(&Some("OK".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_no_task_holds_is_reported_stale_with_what_to_do() {
    let (sim, client) = start(SimOptions::fast()).await;
    put_iso(&sim, None);
    sim.hold_tasks("qmcreate");
    let create = client
        .create_vm_raw("pve", &reference_vm(100, ISO).to_create_params())
        .await
        .expect("create");
    // The worker dies (as with a killed pvedaemon): the task ends, `lock: create` stays.
    client.stop_task(&create).await.expect("stop the task");
    let holder = client
        .lock_holder("pve", 100)
        .await
        .expect("read")
        .expect("locked");
    assert_eq!((holder.lock.as_str(), holder.task), ("create", None));
    let err = client
        .wait_unlocked("pve", 100, Duration::from_secs(10))
        .await
        .expect_err("a stale lock never clears by waiting");
    let text = err.to_string();
    assert!(
        text.contains("no running task holds the lock") && text.contains("qm unlock 100"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroying_a_vm_deletes_its_acl_entries_and_pool_membership_as_pve_does() {
    let mut opts = SimOptions::fast();
    opts.pools = vec!["homelab".into()];
    let (sim, client) = start(opts).await;
    put_iso(&sim, None);
    let mut acl = sim.acl();
    acl.entries.push(AclEntry {
        path: "/vms/100".into(),
        privs: homelab_sim::proxmox::all_privileges(sim.version()),
        propagate: true,
    });
    acl.entries.push(AclEntry {
        path: "/vms".into(),
        privs: homelab_sim::proxmox::all_privileges(sim.version()),
        propagate: true,
    });
    sim.set_acl(acl);
    let mut params = reference_vm(100, ISO).to_create_params();
    params.push(("pool".into(), "homelab".into()));
    let upid = client.create_vm_raw("pve", &params).await.expect("create");
    client.wait_task(&upid, &wait()).await.expect("created");
    assert_eq!(sim.pools()["homelab"], BTreeSet::from([100]));

    client
        .destroy_vm("pve", 100, &wait())
        .await
        .expect("destroy");
    let paths: Vec<String> = sim.acl().entries.into_iter().map(|e| e.path).collect();
    assert!(!paths.contains(&"/vms/100".to_string()), "{paths:?}");
    assert!(
        paths.contains(&"/vms".to_string()),
        "a grant on /vms survives"
    );
    assert!(sim.pools()["homelab"].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_boot_comes_from_efidisk0_and_decides_whether_a_talos_iso_boots() {
    // (pre-enrolled keys, signer of the ISO) → boots?
    let cases = [
        (false, None, true),
        (false, Some(SIDERO_SIGNER), true),
        (true, None, false),
        (true, Some(SIDERO_SIGNER), false),
    ];
    for (pre_enrolled, signer, boots) in cases {
        let (sim, client) = start(SimOptions::fast()).await;
        put_iso(&sim, signer);
        let mut booted = sim.subscribe();
        let mut spec = reference_vm(100, ISO);
        if let Some(efi) = spec.efidisk.as_mut() {
            efi.pre_enrolled_keys = pre_enrolled;
        }
        client
            .create_vm("pve", &spec, &wait())
            .await
            .expect("create");
        client
            .ensure_started("pve", 100, &wait())
            .await
            .expect("QEMU starts whatever the firmware then does");
        let vm = sim.vm(100).expect("vm");
        let case = format!("pre-enrolled-keys={pre_enrolled}, signer {signer:?}");
        assert!(vm.running, "{case}");
        assert_eq!(vm.boot_refused.is_none(), boots, "{case}: {vm:?}");
        assert_eq!(booted.try_recv().is_ok(), boots, "{case}: boot event");
        assert_eq!(vm.address.is_some(), boots, "{case}: DHCP lease");
        if !boots {
            let err = client
                .agent_network_interfaces("pve", 100)
                .await
                .expect_err("nothing booted, so no agent");
            assert!(
                err.to_string().contains("guest agent is not running"),
                "{err}"
            );
        }
        if signer.is_some() && boots {
            assert_eq!(
                vm.firmware,
                SecureBoot::Enforcing {
                    db: vec![SIDERO_SIGNER.to_string()]
                },
                "the SecureBoot ISO enrolled Sidero's keys from setup mode"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_rides_out_closed_connections_and_proxy_pseudo_statuses() {
    let mut opts = SimOptions::fast();
    opts.timing.idle_timeout = Duration::from_millis(50);
    opts.faults = Faults {
        proxy_failures: vec![
            ("GET /version".into(), 599),
            ("GET /nodes".into(), 596),
            ("POST /nodes/{node}/qemu/{vmid}/status/start".into(), 596),
        ],
        ..Faults::default()
    };
    let (sim, client) = start(opts).await;
    put_iso(&sim, None);
    client.version().await.expect("599 is transient: retried");
    client.nodes().await.expect("596 is transient: retried");
    // Errors close the connection (pveproxy: keep-alive off for every answer ≥ 400).
    for _ in 0..3 {
        let err = client.vm_status("pve", 4242).await.expect_err("no such VM");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    // Idle connections are closed after the idle timeout; the next request opens a new one.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.version().await.expect("after an idle close");
    }
    client
        .create_vm("pve", &reference_vm(100, ISO), &wait())
        .await
        .expect("create");
    // A 596 is pveproxy failing to reach the node: the start never arrived, so it is sent again.
    client
        .ensure_started("pve", 100, &wait())
        .await
        .expect("start after a 596");
    assert_eq!(sim.task_count("qmstart"), 1);
    let (after_answer, idle) = sim.connection_closes();
    assert!(
        after_answer >= 5,
        "every error answer closed its connection: {after_answer}"
    );
    assert!(idle >= 2, "idle connections were closed: {idle}");
}
