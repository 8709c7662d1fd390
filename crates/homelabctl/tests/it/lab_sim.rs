//! `demo --keep DIR` leaves a repository whose simulated homelab `sim --state-dir DIR/.homelab/sim` brings
//! back: plan sees no change, status is healthy, destroy and apply work, a SIGKILLed simulator comes back with
//! the converged state, and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::homelabctl;

/// Kills the simulator if the test ends early, so no listener outlives it.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `homelabctl sim` on the state directory; returns it once it printed that it is ready, with a thread
/// that collects the rest of its output.
pub(crate) fn start_sim(state: &Path) -> (Running, std::thread::JoinHandle<Vec<String>>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("homelabctl"))
        .arg("sim")
        .arg("--state-dir")
        .arg(state)
        .env_remove("HOMELAB_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sim");
    let stdout = child.stdout.take().expect("stdout");
    let sim = Running(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let ready = line.starts_with("Ready.");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.starts_with("Ready.")),
        "the simulator never got ready:\n{}",
        seen.join("\n")
    );
    (sim, std::thread::spawn(move || lines.collect()))
}

fn run(config: &Path, args: &[&str]) -> std::process::Output {
    homelabctl()
        .arg("--config")
        .arg(config)
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs")
}

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `demo --subnet SUBNET --keep DIR/homelab`: the temporary directory, the repository, the simulator's state
/// directory and the demo's output.
pub(crate) fn kept_demo(
    subnet: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::process::Output,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("homelab");
    let demo = homelabctl()
        .args(["demo", "--subnet", subnet, "--keep"])
        .arg(&repo)
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .expect("demo runs");
    assert!(demo.status.success(), "{}", text(&demo));
    let state = std::fs::canonicalize(&repo)
        .expect("repo")
        .join(".homelab/sim");
    (dir, repo, state, demo)
}

#[test]
fn a_kept_demo_repository_carries_on_against_the_restarted_simulator() {
    let (_dir, repo, state, demo) = kept_demo("34");
    let restart = format!("homelabctl sim --state-dir {}", state.display());
    assert!(text(&demo).contains(&restart), "{}", text(&demo));

    let (mut sim, rest) = start_sim(&state);
    let config = repo.join("homelab.yaml");
    let plan = run(&config, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "no changes: {}", text(&plan));
    let status = run(&config, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
    let rows = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        rows.contains("kubernetes  talos-cp-01  ok      Ready"),
        "{rows}"
    );
    assert!(
        rows.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(2) == Some("ok")),
        "{rows}"
    );
    let destroy = run(&config, &["destroy", "--yes"]);
    assert!(destroy.status.success(), "{}", text(&destroy));
    let apply = run(&config, &["apply", "--yes"]);
    assert!(apply.status.success(), "{}", text(&apply));

    // A killed simulator loses nothing: it saved on every change.
    sim.0.kill().expect("SIGKILL");
    sim.0.wait().expect("reaped");
    drop(rest);
    let (mut sim, rest) = start_sim(&state);
    let again = run(&config, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "converged: {}", text(&again));

    let pid = sim.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = sim.0.wait().expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let rest = rest.join().expect("output");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("simulator stopped"),
        "{rest:?}"
    );
    let mode = std::fs::metadata(state.join("lab.json"))
        .expect("lab.json")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn demo_keep_refuses_a_directory_that_is_not_empty_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let out = homelabctl()
        .args(["demo", "--keep"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(entries.len(), 1, "nothing was written");
}

#[test]
fn sim_says_which_address_is_taken_and_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let port = rt.block_on(async {
        let mut opts = homelab_sim::lab::LabOptions::fast(47);
        opts.state_dir = Some(dir.path().to_path_buf());
        let lab = homelab_sim::lab::Lab::start(opts).await.expect("lab");
        lab.save().expect("save");
        lab.proxmox.addr().port()
    });
    drop(rt);
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let out = homelabctl()
        .args(["sim", "--state-dir"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
    assert!(said.contains("is another `homelabctl sim`"), "{said}");
}
