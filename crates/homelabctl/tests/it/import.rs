//! `homelabctl import` against a kept demo's simulated homelab: the imported homelab.yaml validates and plans
//! no change (never a VM replacement); a config change applied by hand through apid comes back as a patch and
//! still plans no change; an existing homelab.yaml is never overwritten; an unreachable node is named with
//! what to do. And the HA example (three control planes behind a VIP, a worker), read partly over apid and
//! partly from a file, with a change applied by hand to every control plane kept as one role patch.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use homelab_apid::{ApidClient, ApplyMode, ClientCredentials};
use homelab_talos::talosconfig::Talosconfig;

use crate::etcd::{example, octet};
use crate::homelabctl;
use crate::lab_sim::{kept_demo, start_sim, text};

/// What the simulator wrote to sim.json: the Proxmox endpoint, token and fingerprint, the factory URL.
struct Sim {
    endpoint: String,
    token_id: String,
    token_secret: String,
    fingerprint: String,
    factory: String,
}

fn sim_json(state: &Path) -> Sim {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("sim.json")).expect("sim.json"))
            .expect("json");
    let s = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("sim.json has {p}"))
            .to_string()
    };
    Sim {
        endpoint: s("/proxmox/endpoint"),
        token_id: s("/proxmox/token_id"),
        token_secret: s("/proxmox/token_secret"),
        fingerprint: s("/proxmox/fingerprint"),
        factory: s("/factory/url"),
    }
}

fn import(sim: &Sim, dir: &Path, talosconfig: &Path, node: &str) -> Output {
    let talosconfig = talosconfig.display().to_string();
    import_with(
        sim,
        dir,
        &["--from-talosconfig", &talosconfig, "--node", node],
    )
}

fn import_with(sim: &Sim, dir: &Path, sources: &[&str]) -> Output {
    homelabctl()
        .arg("import")
        .arg(dir)
        .args(sources)
        .args(["--proxmox-endpoint", &sim.endpoint])
        .args(["--proxmox-token-id", &sim.token_id])
        .args(["--proxmox-fingerprint", &sim.fingerprint])
        .args(["--factory", &sim.factory])
        .env("HOMELAB_PROXMOX_TOKEN_SECRET", &sim.token_secret)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs")
}

fn run(config: &Path, args: &[&str]) -> Output {
    homelabctl()
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs")
}

/// `plan` exits 0 with --detailed-exitcode and its JSON has no replacement in it.
fn assert_plans_no_change(config: &Path) {
    let plan = run(config, &["plan", "--detailed-exitcode"]);
    let report = config.with_file_name("import-report.md");
    assert_eq!(
        plan.status.code(),
        Some(0),
        "no change: {}\nimport-report.md:\n{}",
        text(&plan),
        std::fs::read_to_string(report).unwrap_or_default()
    );
    let json = run(config, &["--format", "json", "plan"]);
    assert!(json.status.success(), "{}", text(&json));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan json");
    let actions: Vec<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["action"].as_str())
        .collect();
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|a| *a == "no_change"), "{actions:?}");
}

/// A mutual-TLS apid client for `at` with the talosconfig's credentials, on a runtime of its own.
fn talos<T>(talosconfig: &Path, at: &str, f: impl AsyncFnOnce(&mut ApidClient) -> T) -> T {
    let config =
        Talosconfig::from_yaml(&std::fs::read_to_string(talosconfig).expect("talosconfig"))
            .expect("parse");
    let ctx = config.current().expect("context");
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64")
    };
    let creds = ClientCredentials::from_pem(&b64(&ctx.ca), &b64(&ctx.crt), &b64(ctx.key.expose()))
        .expect("credentials");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = ApidClient::connect(at.parse().expect("addr"), &creds)
            .await
            .expect("connect");
        f(&mut client).await
    })
}

/// The machine config the node at `at` runs.
fn running(talosconfig: &Path, at: &str) -> String {
    talos(talosconfig, at, async |c| {
        let bytes = c.running_machine_config().await.expect("read");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    })
}

/// Applies `edit` of the node's running config through apid, as an operator with talosctl would.
fn hand_apply(talosconfig: &Path, at: &str, edit: impl Fn(&str) -> String) {
    let before = running(talosconfig, at);
    let edited = edit(&before);
    assert_ne!(edited, before, "the edit changes the config");
    talos(talosconfig, at, async |c| {
        c.apply_configuration(edited.as_bytes(), ApplyMode::NoReboot, false)
            .await
            .expect("apply")
    });
}

#[test]
fn an_imported_demo_plans_no_change_and_keeps_a_hand_applied_change_as_a_patch() {
    let (dir, repo, state, _) = kept_demo("71");
    let (_sim, _rest) = start_sim(&state);
    let sim = sim_json(&state);
    let talosconfig = dir.path().join("talosconfig");
    let out = run(&repo.join("homelab.yaml"), &["output", "talosconfig"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&talosconfig, &out.stdout).expect("write talosconfig");
    let node = "127.0.71.100";

    // 1. The demo as it runs.
    let first: PathBuf = dir.path().join("imported");
    let out = import(&sim, &first, &talosconfig, node);
    assert!(out.status.success(), "{}", text(&out));
    let config = first.join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("homelab.yaml");
    for expected in [
        "vm_id: 100",
        "mac: \"BC:24:11:CA:FE:01\"",
        "address: \"127.0.71.100/24\"",
        "talos_version: v1.12.4",
        "secureboot: true",
        "encryption: tpm",
    ] {
        assert!(yaml.contains(expected), "{expected} in:\n{yaml}");
    }
    let validate = run(&config, &["validate"]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    assert_plans_no_change(&config);
    let report = std::fs::read_to_string(first.join("import-report.md")).expect("report");
    assert!(
        report.contains("Nothing: `homelabctl plan` should show no change"),
        "{report}"
    );
    // The bundle is written encrypted.
    let bundle = std::fs::read_to_string(first.join("talos-secrets.enc.yaml")).expect("bundle");
    assert!(bundle.contains("ENC[AES256_GCM"), "encrypted");
    assert!(
        !bundle.contains("BEGIN CERTIFICATE") && !bundle.contains("PRIVATE KEY"),
        "no plain PEM"
    );

    // 2. Never over an existing homelab.yaml.
    let again = import(&sim, &first, &talosconfig, node);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("never overwrites"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read_to_string(&config).expect("kept"), yaml);

    // 3. A change applied by hand through apid is kept as the node's patch.
    hand_apply(&talosconfig, &format!("{node}:50000"), |running| {
        running.replacen(
            "machine:\n",
            "machine:\n    sysctls:\n        vm.max_map_count: \"262144\"\n",
            1,
        )
    });
    let second = dir.path().join("after-hand-change");
    let out = import(&sim, &second, &talosconfig, node);
    assert!(out.status.success(), "{}", text(&out));
    let patch = std::fs::read_to_string(second.join("patches/talos-cp-01.yaml")).expect("patch");
    assert!(patch.contains("vm.max_map_count: \"262144\""), "{patch}");
    let config = second.join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("homelab.yaml");
    assert!(
        yaml.contains("patches: [\"patches/talos-cp-01.yaml\"]"),
        "{yaml}"
    );
    let report = std::fs::read_to_string(second.join("import-report.md")).expect("report");
    assert!(report.contains("/machine/sysctls"), "{report}");
    assert_plans_no_change(&config);
    // An import stopped before homelab.yaml was written runs again over its own bundle and patches.
    std::fs::remove_file(&config).expect("remove");
    let out = import(&sim, &second, &talosconfig, node);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&config).expect("again"), yaml);

    // 4. A node that does not answer is named, with what to do.
    let third = dir.path().join("unreachable");
    let out = import(&sim, &third, &talosconfig, "127.0.71.250");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("cannot read the machine config of node 127.0.71.250"),
        "{err}"
    );
    assert!(err.contains("--from-config"), "{err}");
    assert!(!third.join("homelab.yaml").exists());
}

#[test]
fn the_ha_example_imports_with_its_vip_worker_and_a_control_plane_role_patch() {
    let subnet = 197;
    let (_runtime, lab) = crate::etcd::fast_lab(subnet);
    let tmp = tempfile::tempdir().expect("tempdir");
    let made = tmp.path().join("made");
    std::fs::create_dir_all(&made).expect("dir");
    crate::etcd::ok(&made, &["init", "."], None);
    std::fs::write(made.join("homelab.yaml"), example("ha", &lab, subnet)).expect("homelab.yaml");
    let info = lab.info();
    let secret = format!("{}\n", info.token_secret);
    crate::etcd::ok(&made, &["secrets", "set-proxmox-token"], Some(&secret));
    crate::etcd::ok(&made, &["apply", "--yes"], None);
    let talosconfig = tmp.path().join("talosconfig");
    let tc = crate::etcd::ok(&made, &["output", "talosconfig"], None);
    std::fs::write(&talosconfig, tc).expect("talosconfig");

    let net = format!("127.{}.{subnet}", octet());
    let cps: Vec<String> = [111, 112, 113]
        .iter()
        .map(|h| format!("{net}.{h}"))
        .collect();
    for cp in &cps {
        hand_apply(&talosconfig, &format!("{cp}:50000"), |c| {
            c.replacen(
                "machine:\n",
                "machine:\n    sysctls:\n        net.core.somaxconn: \"4096\"\n",
                1,
            )
        });
    }
    // The worker is given as a file (what `talosctl get mc -o yaml` or worker.yaml holds).
    let worker = tmp.path().join("worker.yaml");
    std::fs::write(&worker, running(&talosconfig, &format!("{net}.121:50000"))).expect("worker");

    let sim = Sim {
        endpoint: info.proxmox_endpoint.clone(),
        token_id: info.token_id.clone(),
        token_secret: info.token_secret.clone(),
        fingerprint: info.fingerprint.clone(),
        factory: info.factory_url.clone(),
    };
    let dir = tmp.path().join("imported");
    let talosconfig = talosconfig.display().to_string();
    let worker = worker.display().to_string();
    let mut sources = vec!["--from-talosconfig", talosconfig.as_str()];
    for cp in &cps {
        sources.extend(["--node", cp.as_str()]);
    }
    sources.extend(["--from-config", worker.as_str()]);
    let out = import_with(&sim, &dir, &sources);
    assert!(out.status.success(), "{}", text(&out));
    let config = dir.join("homelab.yaml");
    let yaml = std::fs::read_to_string(&config).expect("homelab.yaml");
    for expected in [
        format!("vip: \"{net}.110\""),
        "name: \"homelab-ha\"".to_string(),
        "allow_scheduling_on_control_planes: false".to_string(),
        "controlplane: [\"patches/controlplane.yaml\"]".to_string(),
        "role: worker\n    vm_id: 121\n    cores: 4\n    memory: 16GiB".to_string(),
    ] {
        assert!(yaml.contains(&expected), "{expected} in:\n{yaml}");
    }
    let patch = std::fs::read_to_string(dir.join("patches/controlplane.yaml")).expect("patch");
    assert!(patch.contains("net.core.somaxconn: \"4096\""), "{patch}");
    assert!(!dir.join("patches/talos-worker-01.yaml").exists());
    // The cluster must not need the original repository: its token and bundle are in the new one.
    let validate = run(&config, &["validate"]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    assert_plans_no_change(&config);
}
