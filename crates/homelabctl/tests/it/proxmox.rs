//! `homelabctl sim` and `homelabctl doctor` against the Proxmox simulator (loopback only).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use homelab_sim::proxmox::{ProxmoxSim, SimOptions};

fn example_config(endpoint: &str, fingerprint: &str) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/m710q/homelab.yaml"
    ))
    .expect("example");
    let endpoint_line = example
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("endpoint: https://192.168.20.10")
        })
        .expect("endpoint line");
    example.replacen(
        endpoint_line,
        &format!("  endpoint: {endpoint}\n  tls:\n    fingerprint: \"{fingerprint}\""),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_missing_privilege() {
    let opts = SimOptions {
        token_id: "homelabctl@pve!provision".into(),
        ..SimOptions::fast()
    }
    .without_privilege("Datastore.AllocateTemplate");
    let sim = ProxmoxSim::start(opts).await.expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("homelab.yaml");
    std::fs::write(&config, example_config(&sim.endpoint(), sim.fingerprint())).expect("write");
    let secret = sim.token_secret().to_string();
    let out = tokio::task::spawn_blocking(move || {
        crate::homelabctl()
            .args(["--config", config.to_str().expect("utf8"), "doctor"])
            .env("HOMELAB_PROXMOX_TOKEN_SECRET", secret)
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("lacks Datastore.AllocateTemplate on /storage/local"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: grant them on /storage/local"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(sim.token_secret()),
        "the secret is never printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_a_secret_says_where_to_put_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("homelab.yaml");
    std::fs::write(
        &config,
        example_config("https://127.0.0.1:9", &["AB"; 32].join(":")),
    )
    .expect("write");
    let out = crate::homelabctl()
        .args(["--config", config.to_str().expect("utf8"), "doctor"])
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOMELAB_PROXMOX_TOKEN_SECRET"));
}

#[test]
fn sim_writes_sim_json_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::cargo_bin("homelabctl")
        .expect("binary")
        .args(["sim", "--state-dir", dir.path().to_str().expect("utf8")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf8");
    assert!(
        first.starts_with("Proxmox VE 9.1.3 simulator on https://127.0.0.1:"),
        "{first}"
    );
    let sim_json = dir.path().join("sim.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sim_json.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = homelab_sim::sim_file::SimFile::read(&sim_json).expect("sim.json");
    let px = file.proxmox.expect("proxmox section");
    assert!(px.endpoint.starts_with("https://127.0.0.1:"));
    assert_eq!(px.token_id, "homelab@pve!homelabctl");
    assert_eq!(px.fingerprint.len(), 95);
    assert!(
        std::fs::read_to_string(&px.ca_file)
            .expect("ca")
            .contains("BEGIN CERTIFICATE")
    );

    // The printed credentials work: a pinned client gets the version.
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let release = rt.block_on(async {
        let token =
            homelab_proxmox::ApiToken::new(px.token_id.clone(), px.token_secret.clone().into())
                .expect("id");
        let mut opts = homelab_proxmox::ClientOptions::new(px.endpoint.clone(), token);
        opts.trust = homelab_proxmox::TlsTrust::Fingerprint(
            homelab_proxmox::Fingerprint::parse(&px.fingerprint).expect("fp"),
        );
        homelab_proxmox::Client::new(opts)
            .expect("client")
            .version()
            .await
            .expect("version")
            .release
    });
    assert_eq!(release, "9.1");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest.last().map(String::as_str), Some("simulator stopped"));
    assert!(
        !sim_json.exists(),
        "sim.json is removed when the simulator stops"
    );
}
