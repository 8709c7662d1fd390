//! The edge scripts rely on: every command that prints ends quietly when its reader has gone (no panic, no
//! message, its own exit status), and the exit codes tell a usage error from `plan --detailed-exitcode`'s
//! "changes present".

use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;

use crate::kill_apply::{Site, wait_with_limit};
use crate::lab_sim::text;

/// Runs homelabctl in the site with standard output a pipe whose reader is already closed, so its first
/// write finds no reader; returns the exit status and standard error.
fn with_closed_stdout(site: &Site, args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = site
        .command(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn homelabctl");
    let out = wait_with_limit(child, args);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A kustomization with one ConfigMap, for `build`.
fn kustomization(site: &Site) -> String {
    let dir = site.path().join("app");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("kustomization.yaml"), "resources:\n  - cm.yaml\n")
        .expect("write kustomization");
    std::fs::write(
        dir.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  a: b\n",
    )
    .expect("write configmap");
    dir.display().to_string()
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let site = Site::new(201);
    let app = kustomization(&site);
    let commands: Vec<Vec<&str>> = vec![
        vec!["schema"],
        vec!["validate"],
        vec!["--format", "json", "validate"],
        vec!["scan", "--no-git", "--format", "json", "."],
        vec!["build", &app],
        vec!["check", "--fast", "--format", "json"],
        vec!["sops", "decrypt", "talos-secrets.enc.yaml"],
        vec!["talos", "config"],
        vec!["output"],
        vec!["output", "vm_id"],
        vec!["plan"],
        vec!["--format", "json", "plan"],
        vec!["status"],
    ];
    for args in &commands {
        let (status, stderr) = with_closed_stdout(&site, args);
        let line = args.join(" ");
        assert_eq!(status.signal(), None, "{line}: killed by a signal");
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "{line}: exit {status} (101 is a panic)\n{stderr}"
        );
        assert_eq!(stderr, "", "{line}: says nothing about the closed pipe");
    }
}

#[test]
fn sim_stops_and_releases_its_state_directory_when_its_reader_has_gone() {
    let site = Site::new(202);
    let state = site.path().join("sim-state");
    let state = state.to_str().expect("utf8");
    // The second run can only start when the first released the state directory's lock.
    for run in ["first", "second"] {
        let (status, stderr) = with_closed_stdout(&site, &["sim", "--state-dir", state]);
        assert_eq!(status.code(), Some(0), "{run} sim: {status}\n{stderr}");
        assert_eq!(stderr, "", "{run} sim: says nothing about the closed pipe");
        assert!(
            !site.path().join("sim-state/sim.json").exists(),
            "{run} sim: no sim.json is left for a simulator that stopped"
        );
    }
}

#[test]
fn a_usage_error_and_changes_present_give_different_exit_codes() {
    let site = Site::new(203);
    let (typo, _, stderr) = site.run(&["plan", "--detailed-exitcode", "--no-such-flag"], None);
    assert_eq!(typo.code(), Some(64), "a usage error is EX_USAGE\n{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    let (changes, stdout, stderr) = site.run(&["plan", "--detailed-exitcode"], None);
    assert_eq!(
        changes.code(),
        Some(2),
        "a lab without VMs: changes present\n{stdout}\n{stderr}"
    );
    let (sarif, _, stderr) = site.run(&["--format", "sarif", "plan"], None);
    assert_eq!(sarif.code(), Some(64), "SARIF is for findings\n{stderr}");
    let (help, stdout, _) = site.run(&["--help"], None);
    assert_eq!(help.code(), Some(0));
    assert!(
        stdout.contains("64     usage error"),
        "--help carries the exit status table:\n{stdout}"
    );
}

#[test]
fn a_talos_version_the_factory_does_not_offer_is_a_permanent_error_that_names_it() {
    let site = Site::new(204);
    let config = site.path().join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("homelab.yaml");
    assert!(yaml.contains("talos_version: v1.12.4"), "{yaml}");
    std::fs::write(
        &config,
        yaml.replace("talos_version: v1.12.4", "talos_version: v1.12.99"),
    )
    .expect("write homelab.yaml");
    let (status, stdout, stderr) = site.run(&["apply", "--yes"], None);
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Talos v1.12.99 does not exist on the Image Factory"),
        "names the version and where it is missing:\n{stderr}"
    );
    assert!(
        !stderr.contains("again"),
        "running again cannot help, so it is not suggested:\n{stderr}"
    );
    assert!(
        site.lab().proxmox.vms().is_empty(),
        "nothing was created for a version that does not exist"
    );
}

#[test]
fn a_demo_whose_addresses_another_lab_holds_runs_on_the_next_free_subnet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept");
    let first = crate::homelabctl()
        .args(["demo", "--subnet", "220", "--keep"])
        .arg(&kept)
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .expect("demo runs");
    assert!(first.status.success(), "{}", text(&first));
    // The kept demo's simulator brings its node back on 127.0.220.100: that lab now holds the address.
    let (_sim, _rest) = crate::lab_sim::start_sim(&kept.join(".homelab/sim"));
    let second = crate::homelabctl()
        .args(["demo", "--subnet", "220"])
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .expect("demo runs");
    let text = text(&second);
    assert!(second.status.success(), "{text}");
    assert!(
        text.contains("127.0.220.100:50000 is taken"),
        "says why it moved:\n{text}"
    );
    assert!(
        text.contains("the demo uses 127.0.221.0/24"),
        "and where to:\n{text}"
    );
}

#[test]
fn a_certificate_that_does_not_verify_is_not_presented_as_worth_another_run() {
    let site = Site::new(205);
    let config = site.path().join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("homelab.yaml");
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("fingerprint:"))
        .expect("the site pins the simulator's certificate");
    let wrong = ["00"; 32].join(":");
    std::fs::write(
        &config,
        yaml.replace(line, &format!("    fingerprint: \"{wrong}\"")),
    )
    .expect("write homelab.yaml");
    let (status, stdout, stderr) = site.run(&["plan"], None);
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("fingerprint mismatch"),
        "says what failed:\n{stderr}"
    );
    assert!(
        stderr.contains("the certificate did not verify"),
        "and what to check:\n{stderr}"
    );
    assert!(
        !stderr.contains("then run again"),
        "running again cannot help:\n{stderr}"
    );
}
