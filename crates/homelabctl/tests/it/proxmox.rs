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

/// A git checkout made by `init`, whose homelab.yaml points at `sim` and whose secrets.enc.yaml holds the
/// simulator's token secret (stored with `secrets set-proxmox-token`, as an operator would).
fn checkout_for(sim: &ProxmoxSim) -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("home");
    let git = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(dir.path())
        .status()
        .expect("git");
    assert!(git.success());
    crate::homelabctl()
        .arg("init")
        .arg(dir.path())
        .env("HOME", home.path())
        .assert()
        .success();
    let config = dir.path().join("homelab.yaml");
    std::fs::write(&config, example_config(&sim.endpoint(), sim.fingerprint())).expect("write");
    crate::homelabctl()
        .args(["--config", config.to_str().expect("utf8")])
        .args(["secrets", "set-proxmox-token"])
        .env("HOME", home.path())
        .write_stdin(format!("{}\n", sim.token_secret()))
        .assert()
        .success();
    (dir, home)
}

fn setup(dir: &std::path::Path, home: &std::path::Path) -> std::process::Output {
    crate::homelabctl()
        .arg("setup")
        .arg(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET")
        .output()
        .expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_doctor_with_the_token_from_secrets_enc_yaml() {
    let sim = ProxmoxSim::start(SimOptions {
        token_id: "homelabctl@pve!provision".into(),
        ..SimOptions::fast()
    })
    .await
    .expect("sim");
    let (dir, home) = checkout_for(&sim);
    let out = tokio::task::spawn_blocking(move || (setup(dir.path(), home.path()), dir, home))
        .await
        .expect("join")
        .0;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("doctor: all checks passed"), "{stderr}");
    assert!(
        stdout.trim().starts_with("age1") && stdout.lines().count() == 1,
        "stdout stays the public key: {stdout}"
    );
    assert!(!stdout.contains(sim.token_secret()) && !stderr.contains(sim.token_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_fails_when_doctor_finds_a_missing_privilege() {
    let opts = SimOptions {
        token_id: "homelabctl@pve!provision".into(),
        ..SimOptions::fast()
    }
    .without_privilege("VM.Allocate");
    let sim = ProxmoxSim::start(opts).await.expect("sim");
    let (dir, home) = checkout_for(&sim);
    let out = tokio::task::spawn_blocking(move || (setup(dir.path(), home.path()), dir, home))
        .await
        .expect("join")
        .0;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lacks VM.Allocate"), "{stderr}");
    assert!(stderr.contains("doctor: 1 check(s) failed"), "{stderr}");
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
