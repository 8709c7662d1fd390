//! Kill tests: the real binary's `apply` is SIGKILLed at every step boundary of a full run against the
//! in-process lab, then `apply` runs again. Afterwards there is one VM (one `qmcreate` ever), etcd was
//! bootstrapped once, `plan --detailed-exitcode` has nothing to do, the kubeconfig from `config decrypt` lets
//! kubectl see the node Ready, and the lock the killed run left behind was reported stale and taken over.
//!
//! How close the kill is to the boundary: the binary writes each event as one JSON line and flushes it
//! (stdout is line-buffered), then carries on; the test reads the line from the pipe and sends SIGKILL at
//! once. Between the two the binary runs freely for the pipe read and the `kill` system call, well under a
//! millisecond here, so it can at most have sent the request that follows the event (e.g. the create POST
//! after `step_started vm create`); it cannot finish a step that needs a simulator round trip and a task.
//! That is the same place a kill of a real run lands after a printed step line. The test logs what each
//! kill left; on this machine: no VM after `vm create` started, a stopped VM after it finished and after
//! `vm start` started, etcd not bootstrapped after `bootstrap` started, bootstrapped after it finished.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use homelab_config::template::InitValues;
use homelab_sim::lab::{Lab, LabOptions};
use serde_json::Value;

use crate::testdata;

/// Step events of an uninterrupted run from nothing: image download, VM create, VM start, machine-config
/// install, etcd bootstrap, Kubernetes wait — each started and finished.
const FULL_RUN_STEP_EVENTS: usize = 12;

/// How long one homelabctl run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One lab and one repository pointing at it (the other CLI tests use it too).
pub(crate) struct Site {
    runtime: tokio::runtime::Runtime,
    lab: Option<Lab>,
    dir: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        self.lab.take();
    }
}

impl Site {
    /// Starts a lab on `127.0.<subnet>.0/24` and makes a repository for it with `init`, the token
    /// stored with `secrets set-proxmox-token`, and a Talos bundle imported with `talos secrets import`.
    pub(crate) fn new(subnet: u8) -> Self {
        let (runtime, lab) = crate::start_lab(LabOptions::fast(subnet));
        let dir = tempfile::tempdir().expect("tempdir");
        let site = Self {
            runtime,
            lab: Some(lab),
            dir,
        };
        site.run_ok(&["init", "."], None);
        let info = site.lab().info();
        let values = InitValues {
            proxmox_endpoint: info.proxmox_endpoint,
            proxmox_node: info.proxmox_node,
            token_id: info.token_id,
            fingerprint: Some(info.fingerprint),
            factory: info.factory_url,
            mac: format!("BC:24:11:CA:FE:{subnet:02X}"),
            address: format!("127.0.{subnet}.100/24"),
            gateway: format!("127.0.{subnet}.1"),
            nameservers: vec![format!("127.0.{subnet}.1")],
            ..InitValues::reference()
        };
        std::fs::write(
            site.path().join("homelab.yaml"),
            homelab_config::template::homelab_yaml(&values),
        )
        .expect("write homelab.yaml");
        site.run_ok(
            &["secrets", "set-proxmox-token"],
            Some(&format!("{}\n", info.token_secret)),
        );
        let bundle = site.path().join("bundle.yaml");
        std::fs::write(&bundle, fresh_bundle()).expect("write bundle");
        site.run_ok(
            &["talos", "secrets", "import", bundle.to_str().expect("utf8")],
            None,
        );
        std::fs::remove_file(&bundle).expect("remove the plaintext bundle");
        site
    }

    pub(crate) fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab")
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// homelabctl in the repository, with only the repository's own age identity.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        crate::isolated(self.path(), args)
    }

    /// Runs a short command to completion; panics with its output unless it succeeds.
    fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (status, stdout, stderr) = self.run(args, stdin);
        assert!(
            status.success(),
            "homelabctl {}: {status}\n{stdout}\n{stderr}",
            args.join(" ")
        );
        stdout
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn homelabctl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write as _;
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        let out = wait_with_limit(child, args);
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `apply --yes --output json`, SIGKILLed when the `boundary`-th step event has been read. Returns
    /// the killed process's id, or `None` with the number of step events when the run finished first.
    fn apply_killed_at(&self, boundary: usize) -> Result<u32, usize> {
        let stderr = std::fs::File::create(self.path().join(format!("killed-{boundary}.log")))
            .expect("stderr file");
        let mut child = self
            .command(&["--output", "json", "apply", "--yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn apply");
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout");
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read the event stream");
            if is_step_event(&line) {
                seen += 1;
                if seen == boundary {
                    child.kill().expect("SIGKILL");
                    let status = child.wait().expect("wait");
                    assert_eq!(
                        status.signal(),
                        Some(9),
                        "boundary {boundary}: the run was killed, not finished ({status})"
                    );
                    return Ok(pid);
                }
            }
        }
        let status = child.wait().expect("wait");
        let log = std::fs::read_to_string(self.path().join(format!("killed-{boundary}.log")));
        assert!(
            status.success(),
            "an uninterrupted apply succeeds: {status}\n{}",
            log.unwrap_or_default()
        );
        Err(seen)
    }

    /// What the lab looks like (for the test's log): VMs, the node's phase, etcd.
    fn state(&self) -> String {
        let lab = self.lab();
        let vms: Vec<String> = lab
            .proxmox
            .vms()
            .iter()
            .map(|v| {
                format!(
                    "VM {} {}",
                    v.vmid,
                    if v.running { "running" } else { "stopped" }
                )
            })
            .collect();
        let node = lab.node(100).map_or("no node".to_string(), |n| {
            format!("node {:?}, bootstrapped {}", n.phase(), n.is_bootstrapped())
        });
        let vms = if vms.is_empty() {
            "no VM".to_string()
        } else {
            vms.join(", ")
        };
        format!("[{vms}; {node}]")
    }

    /// `apply --yes --output json` to completion; returns its events.
    fn apply(&self) -> Vec<Value> {
        let stdout = self.run_ok(&["--output", "json", "apply", "--yes"], None);
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

fn is_step_event(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .is_ok_and(|v| matches!(v["event"].as_str(), Some("step_started" | "step_finished")))
}

/// Waits for a child, killing it and failing the test if it outlives [`RUN_LIMIT`].
pub(crate) fn wait_with_limit(child: Child, args: &[&str]) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_LIMIT) {
        Ok(out) => out.expect("wait for homelabctl"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            // What the run was waiting for when it was killed: the tail of its events.
            let said = match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(out)) => {
                    let all = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let lines: Vec<&str> = all.lines().collect();
                    lines[lines.len().saturating_sub(40)..].join("\n")
                }
                _ => "(no output)".into(),
            };
            panic!(
                "homelabctl {} did not finish within {RUN_LIMIT:?}; its last words:\n{said}",
                args.join(" ")
            );
        }
    }
}

/// Upstream Talos's test bundle with a freshly generated OS CA: every site is its own cluster to the
/// simulator (which tells clusters apart by their OS CA), without generating an RSA key per test.
fn fresh_bundle() -> String {
    let path = testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml");
    let text = std::fs::read_to_string(&path).expect("the Talos test bundle");
    let mut bundle =
        homelab_talos::secrets::SecretsBundle::from_yaml(&text).expect("bundle parses");
    bundle.certs.os =
        homelab_talos::pki::generate_ca(homelab_talos::pki::CaKind::Os).expect("OS CA");
    bundle.to_yaml().expect("bundle serialises").to_string()
}

/// After a (possibly interrupted) history of applies: one VM, one create, etcd bootstrapped once, nothing
/// left to plan, and a kubeconfig with which kubectl sees the node Ready.
fn assert_converged(site: &Site, boundary: usize) {
    let lab = site.lab();
    assert_eq!(lab.proxmox.vms().len(), 1, "boundary {boundary}: one VM");
    assert_eq!(
        lab.proxmox.task_count("qmcreate"),
        1,
        "boundary {boundary}: never a second create"
    );
    let node = lab.node(100).expect("the VM's node booted");
    assert!(node.is_bootstrapped(), "boundary {boundary}");
    assert_eq!(
        node.bootstrap_count(),
        1,
        "boundary {boundary}: etcd bootstrapped once"
    );
    let (status, stdout, stderr) = site.run(&["plan", "--detailed-exitcode"], None);
    assert_eq!(
        status.code(),
        Some(0),
        "boundary {boundary}: plan after the resumed apply has nothing to do\n{stdout}\n{stderr}"
    );
    site.run_ok(&["config", "decrypt"], None);
    let kubeconfig: PathBuf = site.path().join("kubeconfig");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "nodes", "--no-headers", "--request-timeout=20s"])
        .env("HOME", site.path())
        .output()
        .expect("kubectl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boundary {boundary}: kubectl get nodes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        row.get(..2),
        Some(&["talos-cp-01", "Ready"][..]),
        "boundary {boundary}: {text}"
    );
}

/// Kills an apply at each boundary from `first` on (a fresh lab and repository each, on subnets from
/// `subnet`), resumes it and checks convergence; stops after `last`, or when a run finishes before its
/// boundary, which is the uninterrupted run. Returns that run's number of step events, if reached.
fn sweep(first: usize, last: Option<usize>, subnet: u8) -> Option<usize> {
    for boundary in first.. {
        if last.is_some_and(|l| boundary > l) {
            return None;
        }
        let offset = u8::try_from(boundary - first).expect("few boundaries");
        let started = Instant::now();
        let site = Site::new(subnet + offset);
        let lock = site.path().join(".homelab/apply.lock");
        match site.apply_killed_at(boundary) {
            Ok(pid) => {
                let left = site.state();
                let holder: Value = serde_json::from_slice(
                    &std::fs::read(&lock).expect("the killed run left its lock file"),
                )
                .expect("the lock file names its holder");
                assert_eq!(holder["pid"], pid, "boundary {boundary}: {holder}");
                let events = site.apply();
                let stale = events.iter().find(|e| e["resource"] == "lock");
                let message = stale.and_then(|e| e["message"].as_str()).unwrap_or("");
                assert!(
                    stale.is_some_and(|e| e["event"] == "warning")
                        && message.contains(&format!("pid {pid}")),
                    "boundary {boundary}: the next apply reports the stale lock of pid {pid}: {events:?}"
                );
                assert_converged(&site, boundary);
                eprintln!(
                    "boundary {boundary}: killed with {left}; resumed and checked in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(total) => {
                // The uninterrupted run: a second apply finds nothing to do and no stale lock.
                let events = site.apply();
                assert!(
                    !events.iter().any(|e| e["resource"] == "lock"),
                    "a released lock is not stale: {events:?}"
                );
                assert!(
                    !events.iter().any(|e| e["event"] == "step_started"),
                    "a second apply has no step to run: {events:?}"
                );
                assert_converged(&site, boundary);
                return Some(total);
            }
        }
    }
    None
}

#[test]
fn apply_sigkilled_at_each_of_the_first_six_step_boundaries_converges_when_run_again() {
    assert_eq!(sweep(1, Some(6), 130), None);
}

#[test]
fn apply_sigkilled_at_each_later_step_boundary_converges_when_run_again() {
    let total = sweep(7, None, 140);
    assert_eq!(
        total,
        Some(FULL_RUN_STEP_EVENTS),
        "an uninterrupted run from nothing has {FULL_RUN_STEP_EVENTS} step events, so boundaries 1..={FULL_RUN_STEP_EVENTS} were each killed"
    );
}

/// The issue-13 case: `apply` SIGKILLed while Proxmox is still creating the VM (`lock: create`, the
/// `qmcreate` worker not done), then run again at once. The plan in between says the VM is locked by that
/// task and plans no replacement; the rerun waits for the task (saying so), then converges without
/// `--allow-replace`, and the simulator saw exactly one `qmcreate` in its life. The create is held in the
/// simulator until the rerun reports its wait, so the test does not depend on timing.
#[test]
fn apply_sigkilled_while_the_vm_is_being_created_waits_for_the_create_when_run_again() {
    let site = Site::new(160);
    let proxmox = site.lab().proxmox.clone();
    proxmox.hold_tasks("qmcreate");
    let mut child = site
        .command(&["--output", "json", "apply", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn apply");
    let started = Instant::now();
    while proxmox.vm(100).and_then(|v| v.lock).as_deref() != Some("create") {
        assert!(
            started.elapsed() < RUN_LIMIT,
            "apply never got the VM under lock: create"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "killed mid-create ({status})");

    let (status, plan, stderr) = site.run(&["plan", "--detailed-exitcode"], None);
    assert_eq!(
        status.code(),
        Some(2),
        "a locked VM is work to do\n{plan}\n{stderr}"
    );
    assert!(
        plan.contains("vm.talos-cp-01") && plan.contains("locked (create) by task UPID:"),
        "{plan}"
    );
    assert!(
        plan.contains("0 to replace")
            && plan.contains("1 locked by a running task")
            && !plan.contains("--allow-replace"),
        "{plan}"
    );

    let mut rerun = site
        .command(&["--output", "json", "apply", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second apply");
    let stdout = rerun.stdout.take().expect("stdout");
    let mut events = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("read the event stream");
        let waits = line.contains("is locked (create) by task") && line.contains("waiting");
        events.push(line);
        if waits {
            break;
        }
    }
    assert!(
        events.last().is_some_and(|l| l.contains("waiting")),
        "the rerun says it waits for the create task: {events:?}"
    );
    proxmox.release_tasks("qmcreate");
    events.extend(lines.map(|l| l.expect("read the event stream")));
    let out = wait_with_limit(rerun, &["apply"]);
    assert!(
        out.status.success(),
        "the rerun converges without --allow-replace: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !events.iter().any(|e| e.contains("\"replace\"")),
        "{events:?}"
    );
    assert_eq!(proxmox.task_count("qmdestroy"), 0, "nothing was replaced");
    assert_converged(&site, 0);
}
