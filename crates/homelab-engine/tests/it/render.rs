//! homelab.yaml → Talos machine config through the real renderer (the HA example also through the
//! simulator's strict reading of Talos configs).

use std::path::PathBuf;

use homelab_config::Role;
use homelab_engine::desired::ConfigRenderer;
use homelab_engine::talos_render::TalosRenderer;
use homelab_sim::talos::{ConfigSchema, MachineType, NodeConfig};
use homelab_talos::secrets::SecretsBundle;

fn example() -> (homelab_config::Config, PathBuf) {
    example_at("m710q")
}

fn example_at(name: &str) -> (homelab_config::Config, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    (
        homelab_config::load(&dir.join("homelab.yaml"))
            .expect("example")
            .config,
        dir,
    )
}

#[test]
fn the_example_renders_with_its_address_installer_and_no_secret_in_the_redacted_copy() {
    let (config, base_dir) = example();
    let bundle = SecretsBundle::generate().expect("bundle");
    let secret = bundle.cluster.secret.expose().to_string();
    let renderer = TalosRenderer { bundle, base_dir };
    let installer = "factory.talos.dev/nocloud-installer-secureboot/abc:v1.12.4";
    let rendered = renderer
        .render(&config, &config.nodes[0], installer)
        .expect("renders");
    let text = String::from_utf8(rendered.config.to_vec()).expect("utf8");
    assert!(text.contains("hostname: talos-cp-01"), "{text}");
    assert!(text.contains("192.168.20.100/24"));
    assert!(text.contains(installer));
    assert!(
        text.contains("kind: VolumeConfig"),
        "TPM encryption documents"
    );
    assert!(text.contains(&secret));
    assert!(
        !rendered.redacted.contains(&secret),
        "redacted copy must not carry the cluster secret"
    );
    let again = renderer
        .render(&config, &config.nodes[0], installer)
        .expect("renders");
    assert_eq!(
        *again.config, *rendered.config,
        "rendering is deterministic"
    );
}

#[test]
fn the_ha_example_renders_schema_valid_configs_with_the_vip_on_control_planes_only() {
    let (config, base_dir) = example_at("ha");
    let renderer = TalosRenderer {
        bundle: SecretsBundle::generate().expect("bundle"),
        base_dir,
    };
    let schema =
        ConfigSchema::builtin(homelab_sim::talos::DEFAULT_TALOS_VERSION).expect("Talos schema");
    let installer = "factory.talos.dev/nocloud-installer-secureboot/abc:v1.12.4";
    let mut vips = Vec::new();
    for node in &config.nodes {
        let rendered = renderer
            .render(&config, node, installer)
            .unwrap_or_else(|e| panic!("{}: {e}", node.name));
        let docs = schema
            .validate(&rendered.config)
            .unwrap_or_else(|e| panic!("{}: the Talos schema refuses it: {e}", node.name));
        let facts = NodeConfig::from_documents(&docs, &rendered.config)
            .unwrap_or_else(|e| panic!("{}: {e}", node.name));
        assert_eq!(
            facts.endpoint, "https://192.168.20.110:6443",
            "{}",
            node.name
        );
        assert_eq!(facts.hostname.as_deref(), Some(node.name.as_str()));
        assert_eq!(facts.static_ip, Some(node.network.address.address));
        let worker = node.role == Role::Worker;
        assert_eq!(
            facts.machine_type,
            if worker {
                MachineType::Worker
            } else {
                MachineType::ControlPlane
            }
        );
        assert_eq!(
            facts.os_ca.is_some(),
            !worker,
            "CA keys only on control planes"
        );
        vips.push((node.name.clone(), facts.vip.map(|v| v.to_string())));
    }
    let vip = Some("192.168.20.110".to_string());
    assert_eq!(
        vips,
        [
            ("talos-cp-01".to_string(), vip.clone()),
            ("talos-cp-02".to_string(), vip.clone()),
            ("talos-cp-03".to_string(), vip),
            ("talos-worker-01".to_string(), None),
        ]
    );
}
