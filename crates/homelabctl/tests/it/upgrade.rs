//! Talos rolling upgrades through the real binary against the in-process lab: the reference single node
//! v1.12.4 → v1.12.11 (an upgrade in place, one `qmcreate` in the lab's life, nothing left to plan), the HA
//! example v1.12.11 → v1.13.9 (snapshot first, control planes one at a time then the worker, never two
//! control planes down, etcd keeps three members), the same roll SIGKILLed at every step boundary, a
//! rollback on the second control plane, a saved plan gone stale or made for another homelab.yaml, and a
//! Kubernetes version change planned as one upgrade step (1.35.0 → 1.36.2 on v1.13.9).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use homelab_sim::lab::{Lab, LabOptions};
use homelab_sim::talos::NodePhase;
use serde_json::Value;

use crate::etcd::{example, homelabctl, octet, ok};

/// A lab and a repository converged on one of the examples at a given Talos version.
pub(crate) struct Site {
    pub(crate) runtime: tokio::runtime::Runtime,
    lab: Option<Lab>,
    tmp: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        self.lab.take();
    }
}

impl Site {
    pub(crate) fn new(name: &str, subnet: u8, talos_version: &str) -> Self {
        let mut options = LabOptions::fast(subnet);
        options.dhcp_first = Ipv4Addr::new(127, octet(), subnet, 200);
        let (runtime, lab) = crate::start_lab(options);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        ok(dir, &["init", "."], None);
        let yaml = example(name, &lab, subnet).replace(
            "talos_version: v1.12.4",
            &format!("talos_version: {talos_version}"),
        );
        std::fs::write(dir.join("homelab.yaml"), yaml).expect("homelab.yaml");
        let secret = format!("{}\n", lab.info().token_secret);
        ok(dir, &["secrets", "set-proxmox-token"], Some(&secret));
        ok(dir, &["apply", "--yes"], None);
        Self {
            runtime,
            lab: Some(lab),
            tmp,
        }
    }

    pub(crate) fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab")
    }

    pub(crate) fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// A Proxmox API client of the lab's (changes made outside homelabctl).
    pub(crate) fn proxmox(&self) -> homelab_proxmox::Client {
        proxmox_client(self.lab())
    }

    fn want_version(&self, from: &str, to: &str) {
        let path = self.dir().join("homelab.yaml");
        let yaml = std::fs::read_to_string(&path).expect("homelab.yaml");
        let changed = yaml.replace(
            &format!("talos_version: {from}"),
            &format!("talos_version: {to}"),
        );
        assert_ne!(yaml, changed, "homelab.yaml names {from}");
        std::fs::write(path, changed).expect("homelab.yaml");
    }

    fn versions(&self, vmids: &[u32]) -> Vec<String> {
        vmids
            .iter()
            .map(|id| self.lab().node(*id).expect("node").talos_version())
            .collect()
    }

    fn upgrades(&self, vmids: &[u32]) -> Vec<u32> {
        vmids
            .iter()
            .map(|id| self.lab().node(*id).expect("node").upgrade_count())
            .collect()
    }

    /// The next plan has nothing to do (`plan --detailed-exitcode` exits 0).
    pub(crate) fn nothing_left_to_plan(&self) {
        let again = homelabctl(self.dir(), &["plan", "--detailed-exitcode"], None);
        assert_eq!(
            again.status.code(),
            Some(0),
            "nothing left: {}",
            text(&again)
        );
    }

    /// Talos API calls served so far per method, summed over the nodes.
    fn apid_calls(&self) -> BTreeMap<String, u64> {
        self.lab()
            .request_counts()
            .into_iter()
            .filter(|(k, _)| k.starts_with("apid "))
            .collect()
    }
}

/// A Proxmox API client of `lab`'s, as the lab's token (changes made outside homelabctl).
pub(crate) fn proxmox_client(lab: &Lab) -> homelab_proxmox::Client {
    let info = lab.info();
    let token =
        homelab_proxmox::ApiToken::new(info.token_id, info.token_secret.into()).expect("token");
    let mut opts = homelab_proxmox::ClientOptions::new(info.proxmox_endpoint, token);
    opts.trust = homelab_proxmox::TlsTrust::Fingerprint(
        homelab_proxmox::Fingerprint::parse(&info.fingerprint).expect("fingerprint"),
    );
    homelab_proxmox::Client::new(opts).expect("client")
}

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const HA: [u32; 4] = [111, 112, 113, 121];
const HA_NAMES: [&str; 4] = [
    "talos-cp-01",
    "talos-cp-02",
    "talos-cp-03",
    "talos-worker-01",
];

#[test]
fn a_talos_version_change_upgrades_the_node_in_place_and_leaves_nothing_to_plan() {
    let site = Site::new("m710q", 41, "v1.12.4");
    let dir = site.dir();
    assert_eq!(site.versions(&[100]), ["v1.12.4"]);
    site.want_version("v1.12.4", "v1.12.11");
    let plan = homelabctl(dir, &["plan"], None);
    let said = text(&plan);
    assert!(plan.status.success(), "{said}");
    assert!(
        said.contains(
            "talos_upgrade.talos-cp-01 — upgrade in place (v1.12.4 → v1.12.11, reboots one node at a time)"
        ),
        "{said}"
    );
    assert!(
        !said.contains("replace") || said.contains("0 to replace"),
        "{said}"
    );
    assert!(
        said.contains("machine_config.talos-cp-01 — no change"),
        "the installer image line is the upgrade's business, not an in-place config update: {said}"
    );
    let calls = site.apid_calls();
    let started = Instant::now();
    let apply = homelabctl(dir, &["apply", "--yes"], None);
    let took = started.elapsed();
    let said = text(&apply);
    assert!(apply.status.success(), "{said}");
    assert!(said.contains("etcd snapshot written to backups/"), "{said}");
    eprintln!(
        "single-node upgrade: {} Talos API calls (plan and apply), {took:?}",
        calls_since(&calls, &site.apid_calls())
    );
    assert_eq!(site.versions(&[100]), ["v1.12.11"]);
    assert_eq!(site.upgrades(&[100]), [1]);
    let status = ok(dir, &["status"], None);
    assert!(status.contains("v1.12.11 on"), "{status}");
    assert!(!status.contains("v1.12.4"), "{status}");
    assert_eq!(
        site.lab().proxmox.task_count("qmcreate"),
        1,
        "one VM in the lab's whole life"
    );
    site.nothing_left_to_plan();
}

#[test]
fn the_ha_example_rolls_to_1_13_control_planes_first_one_at_a_time_after_a_snapshot() {
    let site = Site::new("ha", 42, "v1.12.11");
    let dir = site.dir();
    assert_eq!(site.versions(&HA), ["v1.12.11"; 4]);
    site.want_version("v1.12.11", "v1.13.9");
    let plan = ok(dir, &["plan"], None);
    for name in HA_NAMES {
        assert!(
            plan.contains(&format!(
                "talos_upgrade.{name} — upgrade in place (v1.12.11 → v1.13.9, reboots one node at a time)"
            )),
            "{plan}"
        );
    }
    let calls = site.apid_calls();
    let started = Instant::now();
    let apply = homelabctl(dir, &["apply", "--yes"], None);
    let took = started.elapsed();
    let said = text(&apply);
    assert!(apply.status.success(), "{said}");
    eprintln!(
        "HA roll of 4 nodes: {} Talos API calls (plan and apply), wall time {took:?}",
        calls_since(&calls, &site.apid_calls())
    );
    assert_eq!(site.versions(&HA), ["v1.13.9"; 4]);
    assert_eq!(site.upgrades(&HA), [1; 4]);
    let lab = site.lab();
    let cp = lab.node(111).expect("cp-01");
    assert!(
        cp.cluster_max_control_planes_down() <= 1,
        "never more than one control plane down: {}",
        cp.cluster_max_control_planes_down()
    );
    let mut members = cp.cluster_etcd_members();
    members.sort();
    assert_eq!(members, ["talos-cp-01", "talos-cp-02", "talos-cp-03"]);
    let snapshot = said
        .find("etcd snapshot written to backups/")
        .expect("a snapshot is named");
    let mut last = snapshot;
    for name in HA_NAMES {
        let at = said
            .find(&format!("{name} accepted the upgrade to v1.13.9"))
            .unwrap_or_else(|| panic!("{name} upgraded: {said}"));
        assert!(
            at > last,
            "{name} after the snapshot and the nodes before it: {said}"
        );
        last = at;
    }
    let backups = std::fs::read_dir(dir.join("backups")).expect("backups/");
    assert!(
        backups
            .map(|e| e.expect("entry").path())
            .any(|p| p.to_string_lossy().ends_with(".snapshot.age"))
    );
    let status = ok(dir, &["status"], None);
    assert_eq!(status.matches("v1.13.9 on").count(), 4, "{status}");
    site.nothing_left_to_plan();
}

/// The step events of an HA roll, in order: the Kubernetes check, then each node's upgrade.
fn roll_boundaries() -> Vec<(String, &'static str)> {
    let mut all = vec![
        ("kubernetes".to_string(), "step_started"),
        ("kubernetes".to_string(), "step_finished"),
    ];
    for name in HA_NAMES {
        all.push((format!("talos_upgrade.{name}"), "step_started"));
        all.push((format!("talos_upgrade.{name}"), "step_finished"));
    }
    all
}

#[test]
fn the_ha_roll_sigkilled_at_every_step_boundary_finishes_on_the_next_run_upgrading_each_node_once()
{
    let site = Site::new("ha", 43, "v1.12.11");
    let dir = site.dir();
    site.want_version("v1.12.11", "v1.13.9");
    for (resource, event) in roll_boundaries() {
        let _ = kill_at(dir, &["apply", "--yes"], |v| {
            v["event"] == event && v["resource"] == resource.as_str()
        });
        eprintln!(
            "killed at {event} {resource}: versions {:?}",
            site.versions(&HA)
        );
    }
    ok(dir, &["apply", "--yes"], None);
    assert_eq!(site.versions(&HA), ["v1.13.9"; 4]);
    assert_eq!(site.upgrades(&HA), [1; 4], "no node upgraded twice");
    let lab = site.lab();
    assert_eq!(lab.proxmox.task_count("qmcreate"), 4, "no second VM");
    let cp = lab.node(111).expect("cp-01");
    assert!(cp.cluster_max_control_planes_down() <= 1);
    site.nothing_left_to_plan();
}

#[test]
fn a_rollback_on_the_second_control_plane_stops_the_roll_naming_it_and_a_saved_plan_goes_stale() {
    let site = Site::new("ha", 44, "v1.12.11");
    let dir = site.dir();
    site.want_version("v1.12.11", "v1.13.9");

    site.lab()
        .node(112)
        .expect("cp-02")
        .inject_upgrade_rollback();
    apply_stops_at_the_rollback_of_cp_02(dir);
    assert_eq!(
        site.versions(&HA),
        ["v1.13.9", "v1.12.11", "v1.12.11", "v1.12.11"]
    );
    assert_eq!(
        site.upgrades(&HA),
        [1, 0, 0, 0],
        "the third and the worker untouched"
    );
    assert_eq!(site.lab().node(112).expect("cp-02").rollback_count(), 1);

    // A plan saved now, then a change behind homelabctl's back: applying the saved plan is refused.
    let plan_file = dir.join("upgrade.plan.json");
    let plan_path = plan_file.to_str().expect("utf8");
    ok(dir, &["plan", "--out", plan_path], None);
    let saved = std::fs::read_to_string(&plan_file).expect("saved plan");
    assert!(saved.contains("\"talos_version\""), "{saved}");
    assert!(saved.contains("homelab_yaml_sha256"), "{saved}");
    let secret = site.lab().info().token_secret;
    assert!(!saved.contains(&secret), "no secret in the saved plan");
    assert!(!saved.contains("PRIVATE KEY"), "no key in the saved plan");
    let bundle = std::fs::read_to_string(dir.join("talos-secrets.enc.yaml")).expect("bundle");
    assert!(!bundle.is_empty());
    // The worker's VM gets less memory behind homelabctl's back.
    site.runtime.block_on(async {
        let info = site.lab().info();
        let client = site.proxmox();
        let change = [("memory".to_string(), "2048".to_string())];
        client
            .set_vm_config(&info.proxmox_node, 121, &change, None)
            .await
            .expect("a change made outside homelabctl");
    });
    let stale = homelabctl(dir, &["apply", plan_path], None);
    let said = text(&stale);
    assert_eq!(stale.status.code(), Some(1), "{said}");
    assert!(
        said.contains("vm.talos-worker-01") && said.contains("changed since the plan"),
        "{said}"
    );
    assert_eq!(
        site.upgrades(&HA),
        [1, 0, 0, 0],
        "nothing done from a stale plan"
    );
    // A plan made for another homelab.yaml is refused as well.
    site.want_version("v1.13.9", "v1.12.11");
    let other = homelabctl(dir, &["apply", plan_path], None);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        text(&other).contains("another homelab.yaml"),
        "{}",
        text(&other)
    );
}

/// A run killed just as it asks a node to upgrade (the request may or may not have reached the node) is
/// continued by the next: every node ends on the new version having upgraded exactly once, whether the
/// rerun waited for the request it found journaled or asked again.
#[test]
fn a_run_killed_as_it_asks_for_an_upgrade_upgrades_that_node_once_on_the_next_run() {
    let site = Site::new("ha", 48, "v1.12.11");
    let dir = site.dir();
    site.want_version("v1.12.11", "v1.13.9");
    for name in ["talos-cp-01", "talos-cp-02"] {
        kill_at(dir, &["apply", "--yes"], |v| {
            v["event"] == "info"
                && v["resource"] == format!("talos_upgrade.{name}").as_str()
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("to accept the upgrade"))
        });
    }
    ok(dir, &["apply", "--yes"], None);
    assert_eq!(site.versions(&HA), ["v1.13.9"; 4]);
    assert_eq!(site.upgrades(&HA), [1; 4], "no node upgraded twice");
    site.nothing_left_to_plan();
}

/// Runs apply, which fails naming cp-02's rollback; returns what it said.
fn apply_stops_at_the_rollback_of_cp_02(dir: &Path) -> String {
    let apply = homelabctl(dir, &["apply", "--yes"], None);
    let said = text(&apply);
    assert_eq!(apply.status.code(), Some(1), "{said}");
    assert!(
        said.contains("talos-cp-02 came back on v1.12.11, not v1.13.9"),
        "{said}"
    );
    said
}

/// A run killed while the node reboots, rerun after it came back on the old version: the rerun tells the
/// rollback from "not rebooted yet" by the node's boot ID, without ever having seen it go away.
#[test]
fn a_rollback_during_a_killed_run_is_recognised_by_the_next_run_from_the_boot_id() {
    let site = Site::new("ha", 46, "v1.12.11");
    let dir = site.dir();
    site.want_version("v1.12.11", "v1.13.9");
    let cp2 = site.lab().node(112).expect("cp-02");
    cp2.inject_upgrade_rollback();
    kill_at(dir, &["apply", "--yes"], |v| {
        v["event"] == "info"
            && v["resource"] == "talos_upgrade.talos-cp-02"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("talos-cp-02 to reboot into v1.13.9"))
    });
    let start = Instant::now();
    while !(cp2.rollback_count() == 1 && matches!(cp2.phase(), NodePhase::Installed(_))) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "cp-02 never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let said = apply_stops_at_the_rollback_of_cp_02(dir);
    assert!(!said.contains("did not happen within"), "{said}");
    assert_eq!(
        site.upgrades(&HA),
        [1, 0, 0, 0],
        "cp-02 was not asked again, the others untouched"
    );
    assert_eq!(cp2.rollback_count(), 1);
}

/// Runs homelabctl with `args` (JSON events on stdout) in `dir` and SIGKILLs it at the first event `at`
/// matches, returning that event; fails unless the run got there and died of the signal.
pub(crate) fn kill_at(dir: &Path, args: &[&str], at: impl Fn(&Value) -> bool) -> Value {
    let mut child = crate::isolated(dir, &[&["--format", "json"], args].concat())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn homelabctl");
    let stdout = child.stdout.take().expect("stdout");
    let mut killed = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("events");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if at(&v) {
            child.kill().expect("SIGKILL");
            killed = Some(v);
            break;
        }
    }
    let status = child.wait().expect("wait");
    match killed {
        Some(event) if status.signal() == Some(9) => event,
        _ => panic!(
            "homelabctl {} reached the event and was killed there ({status}; event {killed:?})",
            args.join(" ")
        ),
    }
}

/// The calls made since `before`, per method, and their sum (for the closing note's figures).
fn calls_since(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    let mut total = 0;
    let mut per: Vec<String> = Vec::new();
    for (method, n) in after {
        let d = n - before.get(method).copied().unwrap_or(0);
        if d > 0 {
            total += d;
            per.push(format!(
                "{}={d}",
                method.trim_start_matches("apid /machine.MachineService/")
            ));
        }
    }
    format!("{total} ({})", per.join(", "))
}

#[test]
fn a_kubernetes_version_change_plans_one_upgrade_step_applies_it_and_going_back_is_refused() {
    let site = Site::new("ha", 45, "v1.13.9");
    let dir = site.dir();
    let path = dir.join("homelab.yaml");
    let set = |from: &str, to: &str| {
        let yaml = std::fs::read_to_string(&path).expect("homelab.yaml");
        let changed = yaml.replace(
            &format!("kubernetes_version: {from}"),
            &format!("kubernetes_version: {to}"),
        );
        assert_ne!(yaml, changed, "homelab.yaml names {from}");
        std::fs::write(&path, changed).expect("homelab.yaml");
    };
    set("1.35.0", "1.36.2");
    let plan = ok(dir, &["plan"], None);
    assert!(
        plan.contains("kubernetes_upgrade — upgrade in place (1.35.0 → 1.36.2"),
        "{plan}"
    );
    assert!(
        !plan.contains("machine_config.talos-cp-01 — update"),
        "the images are the upgrade step's business: {plan}"
    );
    let apply = homelabctl(dir, &["apply", "--yes"], None);
    assert!(apply.status.success(), "{}", text(&apply));
    site.nothing_left_to_plan();
    // 1.37 is outside Talos 1.13's range (homelab.yaml's validation says so); going back is refused by
    // the plan's version rules, before anything is touched.
    set("1.36.2", "1.37.0");
    let outside = homelabctl(dir, &["plan"], None);
    assert_eq!(outside.status.code(), Some(1), "{}", text(&outside));
    set("1.37.0", "1.35.0");
    let refused = homelabctl(dir, &["plan"], None);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("kubernetes_upgrade") && said.contains("downgrade"),
        "{said}"
    );
}
