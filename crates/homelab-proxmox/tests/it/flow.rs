//! The provisioning flow end to end against the simulator: every call of the client, in the order the engine
//! will use them.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_proxmox::{AgentWait, DownloadOutcome, DownloadRequest, ErrorKind, ipv4_for_mac};
use homelab_sim::proxmox::{PveVersion, SimOptions};

use crate::support::{MAC, file_server, reference_vm, sha256_hex, start, wait};

#[tokio::test]
async fn the_whole_provisioning_flow_works_on_both_versions() {
    for version in [PveVersion::V8_4, PveVersion::V9_1] {
        let (sim, client) = start(SimOptions {
            version,
            ..SimOptions::fast()
        })
        .await;
        let booted = Arc::new(Mutex::new(Vec::new()));
        let seen = booted.clone();
        sim.on_vm_started(Box::new(move |ev| {
            seen.lock().expect("lock").push(ev.clone())
        }));

        let v = client.version().await.expect("version");
        assert_eq!(v.release, version.release());

        let nodes = client.nodes().await.expect("nodes");
        assert_eq!(nodes[0].node, "pve");
        assert_eq!(
            nodes[0].ssl_fingerprint.as_deref(),
            Some(sim.fingerprint()),
            "GET /nodes reports the pinned fingerprint"
        );

        let bridges = client
            .node_network("pve", Some("any_bridge"))
            .await
            .expect("network");
        assert_eq!(
            bridges.iter().map(|b| b.iface.as_str()).collect::<Vec<_>>(),
            ["vmbr0"]
        );

        let iso_stores = client.storages("pve", Some("iso")).await.expect("storages");
        assert!(
            iso_stores
                .iter()
                .any(|s| s.storage == "local" && s.accepts("iso"))
        );
        let image_stores = client
            .storages("pve", Some("images"))
            .await
            .expect("storages");
        assert_eq!(
            image_stores
                .iter()
                .map(|s| s.storage.as_str())
                .collect::<Vec<_>>(),
            ["local-lvm"]
        );

        // The ISO: downloaded once, skipped the second time.
        let iso = b"not really an ISO, but bytes with a checksum".to_vec();
        let url = format!(
            "{}/image/abc/v1.12.4/metal-amd64-secureboot.iso",
            file_server(iso.clone()).await
        );
        let req = DownloadRequest {
            url,
            content: "iso".into(),
            filename: "talos-v1.12.4-metal-amd64-secureboot.iso".into(),
            checksum: Some(("sha256".into(), sha256_hex(&iso))),
            verify_certificates: true,
        };
        let first = client
            .ensure_downloaded("pve", "local", &req, &wait())
            .await
            .expect("download");
        assert!(
            matches!(first, DownloadOutcome::Downloaded { .. }),
            "{first:?}"
        );
        let again = client
            .ensure_downloaded("pve", "local", &req, &wait())
            .await
            .expect("second run");
        let volid = "local:iso/talos-v1.12.4-metal-amd64-secureboot.iso".to_string();
        assert_eq!(
            again,
            DownloadOutcome::AlreadyPresent {
                volid: volid.clone()
            }
        );
        assert_eq!(
            sim.task_count("download"),
            1,
            "the second run did not download again"
        );
        let content = client
            .storage_content("pve", "local", Some("iso"))
            .await
            .expect("content");
        assert_eq!(content[0].size, Some(iso.len() as i64));

        // The VM.
        let vmid = client.next_vmid().await.expect("nextid");
        assert_eq!(vmid, 100);
        assert!(client.vmid_is_free(9001).await.expect("nextid?vmid"));
        let spec = reference_vm(9001, &volid);
        let created = client
            .create_vm("pve", &spec, &wait())
            .await
            .expect("create");
        assert!(created.upid.is_some());
        assert!(!client.vmid_is_free(9001).await.expect("nextid?vmid"));
        let listed = client.list_vms("pve").await.expect("list");
        assert_eq!(listed[0].vmid, 9001);
        assert_eq!(listed[0].name.as_deref(), Some("talos-cp-01"));

        let config = client.vm_config("pve", 9001).await.expect("config");
        assert_eq!(config.get("bios").as_deref(), Some("ovmf"));
        assert_eq!(
            config.get("net0").as_deref(),
            Some("virtio=BC:24:11:CA:FE:01,bridge=vmbr0")
        );
        let efi = config.get("efidisk0").expect("efidisk0");
        assert!(
            efi.starts_with("local-lvm:vm-9001-disk-")
                && efi.contains("efitype=4m,pre-enrolled-keys=0"),
            "{efi}"
        );
        assert!(
            config
                .get("tpmstate0")
                .expect("tpm")
                .contains("version=v2.0")
        );
        assert_eq!(config.get("cores").as_deref(), Some("4"));
        assert_eq!(
            config.0["cores"],
            serde_json::json!(4),
            "integers come back as numbers"
        );
        assert_eq!(config.get("boot").as_deref(), Some("order=scsi0;ide2"));
        assert_eq!(config.lock(), None);

        // A config change with the digest; a stale digest is refused.
        let digest = config.digest().expect("digest");
        client
            .set_vm_config(
                "pve",
                9001,
                &[("description".into(), "changed".into())],
                Some(&digest),
            )
            .await
            .expect("set");
        let stale = client
            .set_vm_config(
                "pve",
                9001,
                &[("description".into(), "again".into())],
                Some(&digest),
            )
            .await;
        assert!(
            stale
                .expect_err("stale digest")
                .to_string()
                .contains("detected modified configuration")
        );

        let status = client.vm_status("pve", 9001).await.expect("status");
        assert!(!status.is_running());
        assert!(status.agent);

        client
            .ensure_started("pve", 9001, &wait())
            .await
            .expect("start");
        client
            .ensure_started("pve", 9001, &wait())
            .await
            .expect("starting a running VM is a no-op");
        assert!(
            client
                .vm_status("pve", 9001)
                .await
                .expect("status")
                .is_running()
        );

        let ip = client
            .wait_agent_ipv4(
                "pve",
                9001,
                MAC,
                &AgentWait {
                    timeout: Duration::from_secs(10),
                    interval: Duration::from_millis(30),
                },
            )
            .await
            .expect("agent reports the address");
        assert_eq!(ip, Ipv4Addr::new(127, 0, 20, 100));
        let ifs = client
            .agent_network_interfaces("pve", 9001)
            .await
            .expect("interfaces");
        let ens = ifs.iter().find(|i| i.name != "lo").expect("nic");
        assert_eq!(
            ens.hardware_address.as_deref(),
            Some("bc:24:11:ca:fe:01"),
            "the guest reports the MAC in lower case"
        );
        assert_eq!(ipv4_for_mac(&ifs, MAC), Some(ip));

        let events = booted.lock().expect("lock").clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].mac.as_deref(), Some("bc:24:11:ca:fe:01"));
        assert_eq!(events[0].address, Some(ip));
        assert_eq!(events[0].iso.as_deref(), Some(volid.as_str()));

        // Shutdown, then delete with purge.
        let upid = client
            .shutdown_vm("pve", 9001, Some(Duration::from_secs(30)), true)
            .await
            .expect("shutdown");
        client
            .wait_task(&upid, &wait())
            .await
            .expect("shutdown task");
        assert!(
            !client
                .vm_status("pve", 9001)
                .await
                .expect("status")
                .is_running()
        );
        client
            .ensure_started("pve", 9001, &wait())
            .await
            .expect("start again");
        client
            .destroy_vm("pve", 9001, &wait())
            .await
            .expect("destroy stops and deletes");
        let gone = client.vm_status("pve", 9001).await.expect_err("gone");
        assert_eq!(gone.kind(), ErrorKind::NotFound);
        assert!(
            sim.volumes("local-lvm").is_empty(),
            "the VM's volumes were freed"
        );
        client
            .destroy_vm("pve", 9001, &wait())
            .await
            .expect("destroying a missing VM is a no-op");

        // The task log of the create.
        let upid =
            homelab_proxmox::Upid::parse(created.upid.as_deref().expect("upid")).expect("parse");
        let log = client.task_log(&upid, 0, 50).await.expect("log");
        assert_eq!(log.last().map(|l| l.t.as_str()), Some("TASK OK"));
        assert_eq!(log[0].n, 1);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn permissions_report_the_token_privileges_per_version() {
    let (_sim, client) = start(SimOptions {
        version: PveVersion::V8_4,
        ..SimOptions::fast()
    })
    .await;
    let perms = client
        .permissions(Some("/vms/9001"))
        .await
        .expect("permissions");
    let privs = &perms["/vms/9001"];
    assert!(privs.contains_key("VM.Monitor"));
    assert!(!privs.contains_key("VM.GuestAgent.Audit"));
    let (_sim, client) = start(SimOptions::fast()).await;
    let perms = client.permissions(None).await.expect("permissions");
    assert!(perms["/"].contains_key("VM.GuestAgent.Audit"));
}

#[tokio::test]
async fn a_running_task_can_be_stopped() {
    let mut opts = SimOptions::fast();
    opts.timing.task_duration = Duration::from_secs(5);
    let (sim, client) = start(opts).await;
    let upid = client
        .create_vm_raw("pve", &reference_vm(9002, "none").to_create_params())
        .await
        .expect("create");
    let status = client.task_status(&upid).await.expect("status");
    assert_eq!(status.status, "running");
    assert_eq!(sim.vm(9002).and_then(|v| v.lock).as_deref(), Some("create"));
    client.stop_task(&upid).await.expect("stop");
    let status = client.task_status(&upid).await.expect("status");
    assert!(status.is_stopped() && !status.succeeded());
}
