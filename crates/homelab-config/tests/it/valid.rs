//! The shipped example and `init`'s template validate, and carry the reference deployment's values.

use homelab_config::template::{InitValues, homelab_yaml};
use homelab_config::{Encryption, PatchSource, PatchValue, Platform, Role};

use super::{fixture, workspace_root};

#[test]
fn m710q_example_is_the_reference_deployment_and_valid() {
    let path = workspace_root().join("examples/m710q/homelab.yaml");
    let loaded = homelab_config::load(&path).expect("the example validates");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    let node = &c.nodes[0];
    assert_eq!(node.network.mac.to_string(), "BC:24:11:CA:FE:01");
    assert_eq!(node.network.address.to_string(), "192.168.20.100/24");
    assert_eq!(node.role, Role::Controlplane);
    assert_eq!(node.encryption, Encryption::Tpm);
    assert_eq!(c.image.talos_version.with_v(), "v1.12.4");
    assert!(c.image.secureboot);
    assert_eq!(
        c.image.extensions,
        ["siderolabs/qemu-guest-agent", "siderolabs/nfs-utils"]
    );
    assert_eq!(c.cluster.kubernetes_version.to_string(), "1.35.0");
    let nfs = c.gitops.and_then(|g| g.nfs).expect("nfs");
    assert_eq!(nfs.server, "nas.home");
}

#[test]
fn ha_example_has_three_control_planes_and_a_worker_behind_the_vip_and_is_valid() {
    let path = workspace_root().join("examples/ha/homelab.yaml");
    let loaded = homelab_config::load(&path).expect("the HA example validates");
    // Its only warning: the three control planes share one Proxmox host, so that host is a single point
    // of failure for etcd (the example says so; spreading them needs `proxmox_node`).
    let warnings: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("share the Proxmox host `pve`"),
        "{warnings:?}"
    );
    let c = loaded.config;
    let roles: Vec<Role> = c.nodes.iter().map(|n| n.role).collect();
    assert_eq!(
        roles,
        [
            Role::Controlplane,
            Role::Controlplane,
            Role::Controlplane,
            Role::Worker
        ]
    );
    let vip = c.cluster.vip.expect("a VIP");
    assert_eq!(vip.to_string(), "192.168.20.110");
    assert_eq!(c.cluster.endpoint, "https://192.168.20.110:6443");
    assert!(!c.cluster.allow_scheduling_on_control_planes);
    let mut ids: Vec<u32> = c.nodes.iter().map(|n| n.vm_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "distinct vm ids");
}

#[test]
fn init_template_validates_without_warnings() {
    let loaded =
        homelab_config::parse(&homelab_yaml(&InitValues::reference()), None).expect("valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn minimal_config_gets_the_original_defaults() {
    let source = "proxmox: {endpoint: 'https://pve:8006', token_id: 'a@pve!b'}\nnodes:\n  - name: cp\n    vm_id: 100\n    network: {mac: 'BC:24:11:CA:FE:01', address: 10.0.0.5/24, gateway: 10.0.0.1}\n";
    let c = homelab_config::parse(source, None).expect("valid").config;
    assert_eq!(c.image.talos_version.with_v(), "v1.12.4");
    assert_eq!(c.image.platform, Platform::Nocloud);
    assert!(c.image.secureboot);
    assert_eq!(
        c.image.extensions,
        ["siderolabs/qemu-guest-agent", "siderolabs/nfs-utils"]
    );
    assert_eq!(c.cluster.kubernetes_version.to_string(), "1.35.0");
    assert!(
        c.cluster.allow_scheduling_on_control_planes,
        "a single node schedules workloads"
    );
    assert_eq!(c.cluster.endpoint, "https://10.0.0.5:6443");
    assert_eq!(
        c.nodes[0].network.nameservers,
        vec!["10.0.0.1".parse::<std::net::IpAddr>().expect("ip")]
    );
    assert_eq!(c.nodes[0].memory_mib, 8192);
    assert_eq!(c.nodes[0].disk.size_gib, 64);
    assert_eq!(c.proxmox.iso_storage, "local");
}

#[test]
fn the_bootstrap_budget_is_configurable_and_bounded() {
    let source = |t: &str| {
        format!(
            "proxmox: {{endpoint: 'https://pve:8006', token_id: 'a@pve!b'}}\ncluster: {{bootstrap_timeout: {t}}}\nnodes:\n  - {{name: cp, vm_id: 100, network: {{mac: 'BC:24:11:CA:FE:01', address: 10.0.0.5/24, gateway: 10.0.0.1}}}}\n"
        )
    };
    let c = homelab_config::parse(&source("1200"), None)
        .expect("valid")
        .config;
    assert_eq!(c.cluster.bootstrap_timeout_secs, Some(1200));
    assert!(
        homelab_config::parse(&source("5"), None).is_err(),
        "below 30 s"
    );
}

#[test]
fn workers_turn_off_scheduling_on_control_planes_by_default() {
    let source = "proxmox: {endpoint: 'https://pve:8006', token_id: 'a@pve!b'}\nnodes:\n  - {name: cp, vm_id: 100, network: {mac: 'BC:24:11:CA:FE:01', address: 10.0.0.5/24, gateway: 10.0.0.1}}\n  - {name: w1, role: worker, vm_id: 101, network: {mac: 'BC:24:11:CA:FE:02', address: 10.0.0.6/24, gateway: 10.0.0.1}}\n";
    let c = homelab_config::parse(source, None).expect("valid").config;
    assert!(!c.cluster.allow_scheduling_on_control_planes);
}

#[test]
fn committed_schema_file_is_current() {
    let committed =
        std::fs::read_to_string(workspace_root().join("crates/homelab-config/homelab.schema.json"))
            .unwrap_or_default();
    let current =
        serde_json::to_string_pretty(&homelab_config::schema::json_schema()).expect("json");
    assert_eq!(
        committed.trim_end(),
        current,
        "regenerate with `homelabctl schema --write crates/homelab-config/homelab.schema.json`"
    );
}

#[test]
fn example_validates_against_the_json_schema() {
    let schema = homelab_config::schema::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for example in EXAMPLES {
        let text = fixture(example);
        let value = yaml_to_json(&text);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    let bad = serde_json::json!({"proxmox": {"endpoint": "x", "token_id": "y", "nodee": 1}, "nodes": [{}]});
    assert!(!validator.is_valid(&bad));
}

/// The shipped examples.
const EXAMPLES: [&str; 2] = ["examples/m710q/homelab.yaml", "examples/ha/homelab.yaml"];

fn yaml_to_json(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("the example is plain YAML")
}

#[test]
fn example_and_init_template_are_already_formatted() {
    for path in EXAMPLES {
        let example = std::fs::read_to_string(workspace_root().join(path)).expect("read");
        assert_eq!(
            homelab_config::format::format(&example).as_ref(),
            Ok(&example),
            "{path}"
        );
    }
    let template = homelab_yaml(&InitValues::reference());
    assert_eq!(
        homelab_config::format::format(&template).as_ref(),
        Ok(&template)
    );
}

#[test]
fn patches_read_at_cluster_role_and_node_level_from_files_or_inline() {
    let example = std::fs::read_to_string(workspace_root().join("examples/ha/homelab.yaml"))
        .expect("example");
    let text = example
        .replacen(
            "cluster:\n",
            "cluster:\n  patches: [talos/all.yaml]\n  role_patches:\n    worker:\n      - machine:\n          sysctls: {a: \"1\"}\n    controlplane: [talos/cp.yaml]\n",
            1,
        )
        .replacen(
            "    role: worker\n",
            "    role: worker\n    patches:\n      - - op: add\n          path: /machine/certSANs/-\n          value: w.example\n",
            1,
        );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("talos")).expect("mkdir");
    std::fs::write(dir.path().join("talos/all.yaml"), "machine: {}\n").expect("write");
    let loaded = homelab_config::parse(&text, Some(dir.path()));
    // talos/cp.yaml does not exist: named with its place in homelab.yaml.
    let Err(homelab_config::LoadError::Invalid { diagnostics, .. }) = loaded else {
        panic!("a missing patch file is an error")
    };
    // The only error (the HA example's one warning, three control planes on one host, comes with it).
    let errors: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.severity == homelab_config::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{diagnostics:?}");
    assert_eq!(errors[0].path, "cluster.role_patches.controlplane[0]");
    assert!(errors[0].message.contains("talos/cp.yaml"));

    std::fs::write(dir.path().join("talos/cp.yaml"), "machine: {}\n").expect("write");
    let c = homelab_config::parse(&text, Some(dir.path()))
        .expect("valid")
        .config;
    assert_eq!(
        c.cluster.patches,
        [PatchSource::File("talos/all.yaml".into())]
    );
    assert_eq!(
        c.cluster.role_patches.controlplane,
        [PatchSource::File("talos/cp.yaml".into())]
    );
    let [PatchSource::Inline(worker)] = c.cluster.role_patches.worker.as_slice() else {
        panic!("one inline worker patch")
    };
    let line = text
        .lines()
        .position(|l| l.trim() == "- machine:")
        .expect("line")
        + 1;
    assert_eq!(worker.line, line);
    assert!(matches!(worker.value, PatchValue::Map(_)));
    let w = c
        .nodes
        .iter()
        .find(|n| n.role == Role::Worker)
        .expect("worker");
    let [PatchSource::Inline(json)] = w.patches.as_slice() else {
        panic!("one inline node patch")
    };
    assert!(matches!(json.value, PatchValue::Seq(_)));
    assert!(
        c.nodes
            .iter()
            .filter(|n| n.role == Role::Controlplane)
            .all(|n| n.patches.is_empty())
    );

    // A patch entry that is neither a path nor a patch is refused where it is.
    let bad = example.replacen("cluster:\n", "cluster:\n  patches: [\"\"]\n", 1);
    let Err(homelab_config::LoadError::Invalid { diagnostics, .. }) =
        homelab_config::parse(&bad, None)
    else {
        panic!("an empty entry is an error")
    };
    assert!(
        diagnostics.iter().any(|d| d.path == "cluster.patches[0]"),
        "{diagnostics:?}"
    );
}

/// Without its worker, the HA example's control planes (tainted NoSchedule, as it does not allow
/// scheduling on them) would run nothing else: a warning on the setting says so.
#[test]
fn the_ha_example_without_its_worker_warns_that_nothing_takes_workloads() {
    let text = std::fs::read_to_string(workspace_root().join("examples/ha/homelab.yaml"))
        .expect("the HA example");
    let start = text
        .find("  - name: talos-worker-01\n")
        .expect("the worker");
    let end = start
        + text[start..]
            .find("\n\n")
            .map_or(text.len() - start, |e| e + 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("homelab.yaml");
    std::fs::write(&path, format!("{}{}", &text[..start], &text[end..])).expect("write");
    let loaded = homelab_config::load(&path).expect("still valid");
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.message.contains("no worker"))
        .unwrap_or_else(|| panic!("{:?}", loaded.warnings));
    assert!(
        warning
            .message
            .contains("node-role.kubernetes.io/control-plane"),
        "{}",
        warning.message
    );
    assert_eq!(warning.path, "cluster.allow_scheduling_on_control_planes");
}
