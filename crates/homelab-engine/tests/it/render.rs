//! homelab.yaml → Talos machine config through the real renderer.

use std::path::PathBuf;

use homelab_engine::desired::ConfigRenderer;
use homelab_engine::talos_render::TalosRenderer;
use homelab_talos::secrets::SecretsBundle;

fn example() -> (homelab_config::Config, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/m710q");
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
