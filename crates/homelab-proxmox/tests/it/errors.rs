//! Every error shape the simulator produces, as the client types it.

use std::time::Duration;

use homelab_proxmox::{
    ApiToken, Client, ClientOptions, DownloadRequest, Error, ErrorKind, Fingerprint, TlsTrust,
};
use homelab_sim::proxmox::{Faults, SimOptions};

use crate::support::{fast_retry, file_server, reference_vm, sha256_hex, start, wait};

#[tokio::test]
async fn a_wrong_secret_is_a_401_with_pves_reason_phrase() {
    let (sim, _) = start(SimOptions::fast()).await;
    let token = ApiToken::new(sim.token_id(), "wrong-secret".to_string().into()).expect("id");
    let mut opts = ClientOptions::new(sim.endpoint(), token);
    opts.trust = TlsTrust::Fingerprint(Fingerprint::parse(sim.fingerprint()).expect("fp"));
    opts.retry = fast_retry();
    let client = Client::new(opts).expect("client");
    let err = client.version().await.expect_err("401");
    match &err {
        Error::Unauthorized { reason, .. } => assert_eq!(reason, "Authentication failed!"),
        other => panic!("expected 401, got {other:?}"),
    }
    assert!(
        !err.to_string().contains("wrong-secret"),
        "the secret never appears in errors"
    );
    assert_eq!(err.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn a_missing_privilege_is_a_403_naming_it() {
    let (_sim, client) = start(SimOptions::fast().without_privilege("VM.Allocate")).await;
    let err = client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect_err("403");
    match &err {
        // qemu-server's create_vm checks VM.Allocate quietly (on /vms/{vmid}, or the pool) and then
        // raises a bare `raise_perm_exc()`.
        Error::Forbidden { message, .. } => assert_eq!(message, "Permission check failed"),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_and_malformed_parameters_are_400_with_per_parameter_errors() {
    let (_sim, client) = start(SimOptions::fast()).await;
    let mut params = reference_vm(9001, "none").to_create_params();
    params.push(("bogus".into(), "1".into()));
    for p in params.iter_mut() {
        if p.0 == "net0" {
            p.1 = "virtio=BD:24:11:CA:FE:01,bridge=vmbr0".into();
        }
        if p.0 == "vmid" {
            p.1 = "99".into();
        }
    }
    let err = client.create_vm_raw("pve", &params).await.expect_err("400");
    match &err {
        Error::BadRequest {
            message, errors, ..
        } => {
            assert_eq!(message, "Parameter verification failed.");
            assert_eq!(
                errors["bogus"],
                "property is not defined in schema and the schema does not allow additional properties"
            );
            assert_eq!(errors["vmid"], "value must have a minimum value of 100");
            assert_eq!(
                errors["net0"],
                "invalid format - format error\nnet0.macaddr: value does not look like a valid unicast MAC address\n"
            );
        }
        other => panic!("expected 400, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("net0.macaddr: value does not look like a valid unicast MAC address")
    );
}

#[tokio::test]
async fn business_errors_are_500s_classified_by_their_text() {
    let (sim, client) = start(SimOptions::fast()).await;
    let missing = client.vm_config("pve", 9001).await.expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(
        missing
            .to_string()
            .contains("Configuration file 'nodes/pve/qemu-server/9001.conf' does not exist")
    );

    // While the create task runs, the VM is locked (held, so the create cannot end first).
    sim.hold_tasks("qmcreate");
    let upid = client
        .create_vm_raw("pve", &reference_vm(9001, "none").to_create_params())
        .await
        .expect("create");
    // Start checks the lock in its worker: the answer is a task, which fails on the lock.
    let start = client.start_vm("pve", 9001).await.expect("a task");
    let locked = client.wait_task(&start, &wait()).await.expect_err("locked");
    assert_eq!(locked.kind(), ErrorKind::Locked);
    assert!(locked.to_string().contains("VM is locked (create)"));
    let twice = client
        .create_vm_raw("pve", &reference_vm(9001, "none").to_create_params())
        .await
        .expect_err("exists");
    assert_eq!(twice.kind(), ErrorKind::AlreadyExists);
    assert!(
        twice
            .to_string()
            .contains("unable to create VM 9001 - VM 9001 already exists on node 'pve'")
    );
    sim.release_tasks("qmcreate");
    client.wait_task(&upid, &wait()).await.expect("created");

    let refused = client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect_err("exists");
    assert!(
        matches!(refused, Error::VmExists { vmid: 9001, .. }),
        "{refused:?}"
    );

    let not_running = client
        .agent_network_interfaces("pve", 9001)
        .await
        .expect_err("not running");
    assert!(not_running.to_string().contains("VM 9001 is not running"));

    client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect("start");
    let agent = client
        .agent_network_interfaces("pve", 9001)
        .await
        .expect_err("agent still booting");
    assert_eq!(agent.kind(), ErrorKind::AgentNotReady);

    let running = client
        .delete_vm("pve", 9001, true, true)
        .await
        .expect_err("running");
    assert!(
        running
            .to_string()
            .contains("VM 9001 is running - destroy failed")
    );
    assert_eq!(sim.vm(9001).map(|v| v.running), Some(true));

    let other_node = client
        .vm_status("nope", 9001)
        .await
        .expect_err("unknown node");
    assert!(
        other_node
            .to_string()
            .contains("hostname lookup 'nope' failed")
    );
}

#[tokio::test]
async fn a_failed_task_carries_its_log_tail() {
    let mut faults = Faults::default();
    faults.failing_tasks.insert(
        "qmstart".into(),
        "start failed: QEMU exited with code 1".into(),
    );
    let (_sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect("create");
    let err = client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect_err("start fails");
    match &err {
        Error::TaskFailed {
            exitstatus, log, ..
        } => {
            assert_eq!(exitstatus, "start failed: QEMU exited with code 1");
            assert_eq!(
                log.last().map(String::as_str),
                Some("TASK ERROR: start failed: QEMU exited with code 1")
            );
        }
        other => panic!("expected a task failure, got {other:?}"),
    }
    assert!(err.to_string().contains("TASK ERROR"));
}

#[tokio::test]
async fn start_fails_in_the_task_when_the_iso_or_bridge_is_missing() {
    let (_sim, client) = start(SimOptions::fast()).await;
    client
        .create_vm("pve", &reference_vm(9001, "local:iso/missing.iso"), &wait())
        .await
        .expect("create");
    let err = client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect_err("missing iso");
    assert!(
        err.to_string()
            .contains("volume 'local:iso/missing.iso' does not exist"),
        "{err}"
    );
    let mut spec = reference_vm(9002, "none");
    spec.nics[0].bridge = "vmbr9".into();
    client
        .create_vm("pve", &spec, &wait())
        .await
        .expect("create");
    let err = client
        .ensure_started("pve", 9002, &wait())
        .await
        .expect_err("missing bridge");
    assert!(
        err.to_string().contains("bridge 'vmbr9' does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn download_url_refuses_overwrite_without_a_checksum_and_checks_names_and_storages() {
    let (sim, client) = start(SimOptions::fast()).await;
    assert!(sim.put_volume("local", "iso/talos.iso", "iso", b"old".to_vec()));
    let body = b"new bytes".to_vec();
    let base = file_server(body.clone()).await;
    let mut req = DownloadRequest {
        url: format!("{base}/talos.iso"),
        content: "iso".into(),
        filename: "talos.iso".into(),
        checksum: None,
        verify_certificates: true,
    };
    let upid = client
        .download_url("pve", "local", &req)
        .await
        .expect("task starts");
    let err = client.wait_task(&upid, &wait()).await.expect_err("refuses");
    assert!(
        err.to_string()
            .contains("refusing to override existing file '/var/lib/vz/template/iso/talos.iso'"),
        "{err}"
    );

    req.checksum = Some(("sha256".into(), sha256_hex(b"old")));
    let upid = client
        .download_url("pve", "local", &req)
        .await
        .expect("task starts");
    client
        .wait_task(&upid, &wait())
        .await
        .expect("matching checksum: nothing to do");
    let log = client.task_log_tail(&upid, 10).await;
    assert!(
        log.iter()
            .any(|l| l.contains("OK, got correct file already")),
        "{log:?}"
    );

    req.filename = "fresh.iso".into();
    req.checksum = Some(("sha256".into(), sha256_hex(b"something else")));
    let upid = client
        .download_url("pve", "local", &req)
        .await
        .expect("task starts");
    let err = client
        .wait_task(&upid, &wait())
        .await
        .expect_err("checksum mismatch");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");

    req.filename = "talos.qcow2".into();
    let err = client
        .download_url("pve", "local", &req)
        .await
        .expect_err("extension");
    assert!(
        matches!(&err, Error::BadRequest { errors, .. } if errors["filename"] == "wrong file extension"),
        "{err:?}"
    );

    req.filename = "x.iso".into();
    let err = client
        .download_url("pve", "local-lvm", &req)
        .await
        .expect_err("not file based");
    assert!(
        err.to_string().contains("not a file based storage"),
        "{err}"
    );

    req.url = "http://192.0.2.1/x.iso".into();
    req.checksum = None;
    let upid = client
        .download_url("pve", "local", &req)
        .await
        .expect("task starts");
    let err = client
        .wait_task(&upid, &wait())
        .await
        .expect_err("only loopback");
    assert!(
        err.to_string()
            .contains("only downloads over plain http from 127.0.0.0/8"),
        "{err}"
    );
}

#[tokio::test]
async fn a_guest_agent_that_never_answers_times_out_with_a_hint() {
    let faults = Faults {
        agent_never_answers: true,
        ..Faults::default()
    };
    let (_sim, client) = start(SimOptions {
        faults,
        ..SimOptions::fast()
    })
    .await;
    client
        .create_vm("pve", &reference_vm(9001, "none"), &wait())
        .await
        .expect("create");
    client
        .ensure_started("pve", 9001, &wait())
        .await
        .expect("start");
    let wait_agent = homelab_proxmox::AgentWait {
        timeout: Duration::from_millis(400),
        interval: Duration::from_millis(50),
    };
    let err = client
        .wait_agent_ipv4("pve", 9001, crate::support::MAC, &wait_agent)
        .await
        .expect_err("never");
    assert!(matches!(err, Error::AgentTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("qemu-guest-agent extension"));
}

#[tokio::test]
async fn a_task_that_outlives_its_timeout_is_reported() {
    let mut opts = SimOptions::fast();
    opts.timing.task_duration = Duration::from_secs(3);
    let (_sim, client) = start(opts).await;
    let upid = client
        .create_vm_raw("pve", &reference_vm(9001, "none").to_create_params())
        .await
        .expect("create");
    let short = homelab_proxmox::WaitOptions {
        timeout: Duration::from_millis(200),
        ..wait()
    };
    let err = client.wait_task(&upid, &short).await.expect_err("timeout");
    assert!(matches!(err, Error::TaskTimeout { .. }), "{err:?}");
}
