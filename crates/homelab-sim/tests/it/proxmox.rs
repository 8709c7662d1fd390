//! The Proxmox simulator at the HTTP level: pveproxy's request rules, error shapes, the embedded schema
//! against the official dumps, boot events and address assignment.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use homelab_sim::proxmox::{ProxmoxSim, PveVersion, SimError, SimOptions};
use serde_json::Value;

fn http(sim: &ProxmoxSim) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(sim.ca_pem().as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("client")
}

fn auth(sim: &ProxmoxSim) -> String {
    format!("PVEAPIToken={}={}", sim.token_id(), sim.token_secret())
}

fn reason(resp: &reqwest::Response) -> String {
    resp.extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn requests_without_a_token_get_a_bare_401() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    let resp = http(&sim)
        .get(format!("{}/api2/json/version", sim.endpoint()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    assert_eq!(reason(&resp), "No ticket");
    assert!(resp.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn pveproxy_request_rules_are_enforced() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    let c = http(&sim);
    let base = format!("{}/api2/json", sim.endpoint());
    let get_with_body = c
        .get(format!("{base}/version"))
        .header("Authorization", auth(&sim))
        .body("x=1")
        .send()
        .await
        .expect("send");
    assert_eq!(get_with_body.status(), 501);
    assert_eq!(
        reason(&get_with_body),
        "Unexpected content for method 'GET'"
    );

    let unknown = c
        .get(format!("{base}/nodes/pve/lxc"))
        .header("Authorization", auth(&sim))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 501);

    let conflict = c
        .post(format!("{base}/nodes/pve/qemu"))
        .header("Authorization", auth(&sim))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("node=other&vmid=100")
        .send()
        .await
        .expect("send");
    assert_eq!(conflict.status(), 400);
    let body: Value = conflict.json().await.expect("json");
    assert_eq!(
        body["errors"]["node"],
        "duplicate parameter (already defined in URI) with conflicting values!"
    );
}

#[tokio::test]
async fn parameter_errors_have_pves_400_shape_and_reason_phrase() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    let resp = http(&sim)
        .post(format!("{}/api2/json/nodes/pve/qemu", sim.endpoint()))
        .header("Authorization", auth(&sim))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("vmid=abc&cores=0&scsihw=fast")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(reason(&resp), "Parameter verification failed.");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["message"], "Parameter verification failed.\n");
    assert_eq!(
        body["errors"]["vmid"],
        "type check ('integer') failed - got 'abc'"
    );
    assert_eq!(
        body["errors"]["cores"],
        "value must have a minimum value of 1"
    );
    assert_eq!(
        body["errors"]["scsihw"],
        "value 'fast' does not have a value in the enumeration 'lsi, lsi53c810, virtio-scsi-pci, virtio-scsi-single, megasas, pvscsi'"
    );
}

#[tokio::test]
async fn json_bodies_with_real_booleans_are_accepted() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    let resp = http(&sim)
        .post(format!("{}/api2/json/nodes/pve/qemu", sim.endpoint()))
        .header("Authorization", auth(&sim))
        .header("Content-Type", "application/json")
        .body(r#"{"vmid": 123, "onboot": true, "name": "json-vm"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["data"]
            .as_str()
            .is_some_and(|u| u.starts_with("UPID:pve:") && u.contains(":qmcreate:123:"))
    );
}

#[tokio::test]
async fn the_embedded_schemas_match_the_official_dumps() {
    for (version, file) in [
        (PveVersion::V8_4, "pve8.4-api-selected-endpoints.json"),
        (PveVersion::V9_1, "pve9.1.3-api-selected-endpoints.json"),
    ] {
        let path = crate::testdata().join("schemas/proxmox").join(file);
        let official: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let embedded = homelab_sim::proxmox::Schema::load(version).expect("embedded");
        for (key, info) in official["endpoints"].as_object().expect("endpoints") {
            let props = info["parameters"]["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (name, prop) in props {
                let param = name.replace("[n]", "0");
                let mine = embedded
                    .param_schema(key, &param)
                    .unwrap_or_else(|| panic!("{file}: {key} {name} missing"));
                assert_eq!(mine.get("type"), prop.get("type"), "{file}: {key} {name}");
                assert_eq!(mine.get("enum"), prop.get("enum"), "{file}: {key} {name}");
                assert_eq!(
                    mine.get("pattern"),
                    prop.get("pattern"),
                    "{file}: {key} {name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_simulator_refuses_to_listen_off_loopback() {
    let opts = SimOptions {
        bind: Ipv4Addr::new(192, 168, 20, 2),
        ..SimOptions::fast()
    };
    assert!(matches!(
        ProxmoxSim::start(opts).await,
        Err(SimError::NotLoopback(_))
    ));
}

#[tokio::test]
async fn boot_events_carry_the_mac_and_the_hooked_address() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    sim.set_dhcp(Arc::new(|vmid, mac| {
        assert_eq!(mac, "bc:24:11:ca:fe:01");
        Ipv4Addr::new(127, 0, 20, (vmid % 200) as u8)
    }));
    let mut rx = sim.subscribe();
    let c = http(&sim);
    let base = format!("{}/api2/json/nodes/pve/qemu", sim.endpoint());
    let create = c
        .post(&base)
        .header("Authorization", auth(&sim))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("vmid=150&net0=virtio%3DBC%3A24%3A11%3ACA%3AFE%3A01%2Cbridge%3Dvmbr0&agent=1&start=1")
        .send()
        .await
        .expect("send");
    assert_eq!(create.status(), 200);
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(ev.vmid, 150);
    assert_eq!(ev.mac.as_deref(), Some("bc:24:11:ca:fe:01"));
    assert_eq!(ev.address, Some(Ipv4Addr::new(127, 0, 20, 150)));
    let vm = sim.vm(150).expect("vm");
    assert!(vm.running);
    assert_eq!(vm.address, ev.address);
}

#[tokio::test]
async fn pveproxy_closes_the_connection_after_errors_and_passes_on_proxy_pseudo_statuses() {
    let mut opts = SimOptions::fast();
    opts.faults.proxy_failures = vec![("GET /version".into(), 599), ("GET /nodes".into(), 596)];
    let sim = ProxmoxSim::start(opts).await.expect("start");
    let c = http(&sim);
    let base = format!("{}/api2/json", sim.endpoint());
    let get = |path: &str| {
        c.get(format!("{base}{path}"))
            .header("Authorization", auth(&sim))
            .send()
    };
    let timeout = get("/version").await.expect("send");
    assert_eq!(timeout.status().as_u16(), 599);
    assert_eq!(timeout.headers()["connection"], "close");
    let tls = get("/nodes").await.expect("send");
    assert_eq!(tls.status().as_u16(), 596);
    assert_eq!(reason(&tls), "certificate verify failed");
    // Each fault fires once; then the answers are normal and keep the connection open.
    let ok = get("/version").await.expect("send");
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("connection").is_none_or(|v| v != "close"));
    let missing = get("/nodes/pve/qemu/4242/config").await.expect("send");
    assert_eq!(missing.status(), 500);
    assert_eq!(missing.headers()["connection"], "close");
    assert_eq!(sim.connection_closes().0, 3);
}

/// `POST /nodes/{node}/qemu` with `body`, waiting for the boot of VM `vmid` when `start=1`.
async fn create(sim: &ProxmoxSim, node: &str, body: &str) -> reqwest::Response {
    http(sim)
        .post(format!("{}/api2/json/nodes/{node}/qemu", sim.endpoint()))
        .header("Authorization", auth(sim))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn ipconfig_and_nameserver_are_checked_as_pve_checks_them() {
    let sim = ProxmoxSim::start(SimOptions::fast()).await.expect("start");
    // A prefix below 8, a gateway that is no IPv4 address, a gateway without an address, a bad nameserver.
    let resp = create(
        &sim,
        "pve",
        "vmid=160&ipconfig0=ip%3D10.0.0.5%2F7&ipconfig1=ip%3D10.0.0.5%2F24%2Cgw%3Drouter\
         &ipconfig2=gw%3D10.0.0.1&nameserver=1.1.1.1%20dns.home",
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    let errors = &body["errors"];
    assert_eq!(
        errors["ipconfig0"],
        "invalid format - format error\nipconfig.ip: value does not look like a valid ipv4 network configuration\n"
    );
    assert_eq!(
        errors["ipconfig1"],
        "invalid format - format error\nipconfig.gw: value does not look like a valid IPv4 address\n"
    );
    assert_eq!(
        errors["ipconfig2"],
        "invalid format - format error\nipconfig.ip: missing property - 'ipconfig.gw' requires this property\n"
    );
    assert_eq!(
        errors["nameserver"],
        "invalid format - value does not look like a valid address: dns.home"
    );
}

#[tokio::test]
async fn without_dhcp_only_a_cloudinit_drive_gives_an_address() {
    let sim = ProxmoxSim::start(SimOptions {
        dhcp_server: false,
        ..SimOptions::fast()
    })
    .await
    .expect("start");
    let mut rx = sim.subscribe();
    let net = "net0=virtio%3DBC%3A24%3A11%3ACA%3AFE%3A0{n}%2Cbridge%3Dvmbr0";
    let plain = create(
        &sim,
        "pve",
        &format!("vmid=161&{}&start=1", net.replace("{n}", "1")),
    )
    .await;
    assert_eq!(plain.status(), 200);
    let static_vm = create(
        &sim,
        "pve",
        &format!(
            "vmid=162&{}&ide0=local-lvm%3Acloudinit&ipconfig0=ip%3D127.0.31.5%2F24%2Cgw%3D127.0.31.1&start=1",
            net.replace("{n}", "2")
        ),
    )
    .await;
    assert_eq!(static_vm.status(), 200);
    // A metal ISO never reads the cloud-init drive (only Talos' nocloud platform does).
    let mut metal = vec![0u8; 64 * 1024];
    homelab_sim::proxmox::mark_platform(&mut metal, "metal");
    assert!(sim.put_volume("local", "iso/metal-amd64.iso", "iso", metal));
    let metal_vm = create(
        &sim,
        "pve",
        &format!(
            "vmid=163&{}&ide2=local%3Aiso%2Fmetal-amd64.iso%2Cmedia%3Dcdrom&ide0=local-lvm%3Acloudinit\
             &ipconfig0=ip%3D127.0.31.6%2F24%2Cgw%3D127.0.31.1&start=1",
            net.replace("{n}", "3")
        ),
    )
    .await;
    assert_eq!(metal_vm.status(), 200);
    let mut addresses = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("in time")
            .expect("event");
        addresses.insert(ev.vmid, ev.address);
    }
    assert_eq!(
        addresses[&161], None,
        "no DHCP server, no cloud-init: no address"
    );
    assert_eq!(addresses[&162], Some(Ipv4Addr::new(127, 0, 31, 5)));
    assert_eq!(
        addresses[&163], None,
        "a metal ISO ignores the cloud-init drive"
    );
    let vm = sim.vm(162).expect("vm");
    assert_eq!(
        vm.config.get("ide0").map(String::as_str),
        Some("local-lvm:vm-162-cloudinit,media=cdrom")
    );
    assert!(sim.volumes("local-lvm").contains_key("vm-162-cloudinit"));
}

#[tokio::test]
async fn a_cluster_of_three_nodes_keeps_vms_and_local_storage_per_node() {
    let mut opts = SimOptions::fast();
    opts.other_nodes = vec!["pve2".into(), "pve3".into()];
    opts.storages
        .push(homelab_sim::proxmox::Storage::nfs("isos", &["iso"]));
    let sim = ProxmoxSim::start(opts).await.expect("start");
    let c = http(&sim);
    let get = |path: String| {
        let c = c.clone();
        let auth = auth(&sim);
        let url = format!("{}/api2/json{path}", sim.endpoint());
        async move {
            c.get(url)
                .header("Authorization", auth)
                .send()
                .await
                .expect("send")
        }
    };
    let nodes: Value = get("/nodes".into()).await.json().await.expect("json");
    let names: Vec<&str> = nodes["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(names, ["pve", "pve2", "pve3"]);
    let storages: Value = get("/nodes/pve2/storage".into())
        .await
        .json()
        .await
        .expect("json");
    let shared: Vec<(String, i64)> = storages["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| {
            (
                s["storage"].as_str().unwrap_or_default().to_string(),
                s["shared"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(shared.contains(&("isos".into(), 1)), "{shared:?}");
    assert!(shared.contains(&("local".into(), 0)), "{shared:?}");
    // `GET /storage` lists each definition once, the NFS one shared by its type.
    let config: Value = get("/storage".into()).await.json().await.expect("json");
    let ids: Vec<&str> = config["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["storage"].as_str())
        .collect();
    assert_eq!(ids, ["isos", "local", "local-lvm"]);
    // A VM made on pve2 lives there: pve does not know it, and pve2's local-lvm holds its disk.
    let made = create(
        &sim,
        "pve2",
        "vmid=170&scsi0=local-lvm%3A4&net0=virtio%2Cbridge%3Dvmbr0",
    )
    .await;
    assert_eq!(made.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.vm(170).expect("vm").node, "pve2");
    let elsewhere = get("/nodes/pve/qemu/170/config".into()).await;
    assert_eq!(elsewhere.status(), 500);
    assert_eq!(
        get("/nodes/pve2/qemu/170/config".into()).await.status(),
        200
    );
    assert!(
        sim.volumes_on("pve2", "local-lvm")
            .contains_key("vm-170-disk-0")
    );
    assert!(sim.volumes_on("pve", "local-lvm").is_empty());
    // An unknown node is a failed host name lookup, as on PVE.
    assert_eq!(get("/nodes/pve9/qemu".into()).await.status(), 500);
}
