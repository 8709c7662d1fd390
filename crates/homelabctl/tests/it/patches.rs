//! The user's Talos config patches (`cluster.patches`, `cluster.role_patches`, `nodes[].patches`) through the
//! binary: a patch that makes the config invalid fails `validate` with the patch's FILE:LINE, and a node's
//! patch shows in `plan` and reaches the simulated node's applied config.

use std::path::Path;

use crate::lab_sim::{kept_demo, start_sim, text};
use crate::{homelabctl, workspace_root};

fn example(dir: &Path, extra_cluster: &str, extra_node: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace_root().join("examples/m710q/homelab.yaml"))
        .expect("example");
    let text = text
        .replace(
            "  allow_scheduling_on_control_planes: true\n",
            &format!("  allow_scheduling_on_control_planes: true\n{extra_cluster}"),
        )
        .replace(
            "    encryption: tpm\n",
            &format!("    encryption: tpm\n{extra_node}"),
        );
    let path = dir.join("homelab.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

fn validate(config: &Path) -> std::process::Output {
    homelabctl()
        .args(["validate", "--config"])
        .arg(config)
        .output()
        .expect("runs")
}

#[test]
fn a_patch_that_breaks_the_schema_fails_validate_with_its_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("talos")).expect("mkdir");
    std::fs::write(
        dir.path().join("talos/cni.yaml"),
        "machine:\n  install:\n    wipe: true\ncluster:\n  network:\n    cni:\n      name: bogus\n",
    )
    .expect("write");
    let config = example(dir.path(), "  patches: [talos/cni.yaml]\n", "");
    let out = validate(&config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("talos/cni.yaml:7"), "{err}");
    assert!(err.contains("/cluster/network/cni/name"), "{err}");
    assert!(err.contains("Talos v1.12.4 schema"), "{err}");

    // An unknown field is refused when the patch is read, at its line; an inline patch's line is in
    // homelab.yaml and the report points there.
    let config = example(
        dir.path(),
        "",
        "    patches:\n      - machine:\n          network:\n            kubespan:\n              enabled: maybe\n",
    );
    let source = std::fs::read_to_string(&config).expect("read");
    let line = source
        .lines()
        .position(|l| l.contains("enabled: maybe"))
        .expect("line")
        + 1;
    let out = validate(&config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("homelab.yaml:{line}:")), "{err}");
    assert!(err.contains("must be true or false"), "{err}");

    // The same place, written correctly, validates.
    let config = example(
        dir.path(),
        "  role_patches:\n    controlplane:\n      - - op: add\n          path: /machine/certSANs/-\n          value: cp.example\n",
        "    patches:\n      - machine:\n          network:\n            kubespan:\n              enabled: true\n",
    );
    let out = validate(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_node_patch_shows_in_plan_and_reaches_the_node() {
    let (_dir, repo, state, _) = kept_demo("61");
    let (_sim, _rest) = start_sim(&state);
    let config = repo.join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("read");
    let patched = yaml.replacen(
        "    encryption: tpm\n",
        "    encryption: tpm\n    patches:\n      - machine:\n          sysctls:\n            vm.max_map_count: \"262144\"\n",
        1,
    );
    assert_ne!(
        patched, yaml,
        "the demo's homelab.yaml has the node's encryption line"
    );
    std::fs::write(&config, patched).expect("write");
    let run = |args: &[&str]| {
        homelabctl()
            .arg("--config")
            .arg(&config)
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("runs")
    };

    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "changes: {}", text(&plan));
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(shown.contains("machine_config.talos-cp-01"), "{shown}");
    assert!(
        shown.contains("+         vm.max_map_count: \"262144\""),
        "{shown}"
    );
    assert!(!shown.contains("BEGIN"), "secrets stay redacted: {shown}");

    let apply = run(&["apply", "--yes"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let lab: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("lab.json")).expect("lab.json"))
            .expect("json");
    let applied = lab["nodes"]["100"]["disk"]["config"]
        .as_str()
        .expect("the node holds an applied config");
    assert!(
        applied.contains("    sysctls:\n        vm.max_map_count: \"262144\"\n"),
        "{applied}"
    );
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "converged: {}", text(&again));
}
