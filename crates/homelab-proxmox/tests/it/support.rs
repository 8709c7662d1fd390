//! Shared helpers: a simulator plus a pinned client, a loopback file server, the reference VM.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_proxmox::{
    ApiToken, Bios, Cdrom, Client, ClientEvent, ClientOptions, Disk, EfiDisk, Fingerprint, Nic,
    RetryPolicy, TlsTrust, TpmState, VmSpec, WaitOptions,
};
use homelab_sim::proxmox::{ProxmoxSim, SimOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    }
}

pub fn wait() -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_secs(20),
        initial_interval: Duration::from_millis(20),
        max_interval: Duration::from_millis(100),
        log_lines: 20,
    }
}

pub fn client_for(sim: &ProxmoxSim, trust: TlsTrust) -> Client {
    let token =
        ApiToken::new(sim.token_id(), sim.token_secret().to_string().into()).expect("token id");
    let mut opts = ClientOptions::new(sim.endpoint(), token);
    opts.trust = trust;
    opts.retry = fast_retry();
    opts.request_timeout = Duration::from_secs(15);
    Client::new(opts).expect("client builds")
}

pub fn pinned(sim: &ProxmoxSim) -> Client {
    client_for(
        sim,
        TlsTrust::Fingerprint(Fingerprint::parse(sim.fingerprint()).expect("fingerprint")),
    )
}

pub async fn start(opts: SimOptions) -> (ProxmoxSim, Client) {
    let sim = ProxmoxSim::start(opts).await.expect("simulator starts");
    let client = pinned(&sim);
    (sim, client)
}

/// Records client events.
pub fn recorder(client: Client) -> (Client, Arc<Mutex<Vec<ClientEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let client = client.with_events(move |e| sink.lock().expect("lock").push(e.clone()));
    (client, events)
}

pub const MAC: &str = "BC:24:11:CA:FE:01";

/// The reference VM of the original deployment.
pub fn reference_vm(vmid: u32, iso: &str) -> VmSpec {
    VmSpec {
        vmid,
        name: "talos-cp-01".into(),
        cores: 4,
        sockets: 1,
        memory_mib: 8192,
        balloon_mib: Some(0),
        cpu: "host".into(),
        machine: "q35".into(),
        bios: Bios::Ovmf,
        ostype: "l26".into(),
        scsihw: "virtio-scsi-single".into(),
        disks: vec![Disk {
            slot: "scsi0".into(),
            storage: "local-lvm".into(),
            size_gib: 64,
            options: vec![
                ("discard".into(), "on".into()),
                ("ssd".into(), "1".into()),
                ("iothread".into(), "1".into()),
            ],
        }],
        efidisk: Some(EfiDisk {
            storage: "local-lvm".into(),
            efitype: "4m".into(),
            pre_enrolled_keys: false,
        }),
        tpmstate: Some(TpmState {
            storage: "local-lvm".into(),
            version: "v2.0".into(),
        }),
        nics: vec![Nic {
            index: 0,
            model: "virtio".into(),
            mac: Some(MAC.into()),
            bridge: "vmbr0".into(),
            vlan: None,
            firewall: false,
        }],
        cdrom: Some(Cdrom {
            slot: "ide2".into(),
            volid: iso.into(),
        }),
        cloudinit: None,
        boot_order: vec!["scsi0".into(), "ide2".into()],
        agent: true,
        onboot: Some(true),
        tags: vec!["talos".into(), "k8s".into()],
        description: Some("Managed by homelabctl".into()),
    }
}

/// A plain-HTTP file server on 127.0.0.1 answering every GET with `body`. Returns its base URL.
pub async fn file_server(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
