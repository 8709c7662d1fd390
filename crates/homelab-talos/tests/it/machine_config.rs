//! Machine config rendering: schema validity of every document, determinism, patches, Talos rules, redaction.

use std::net::IpAddr;

use homelab_talos::machine_config::schema::TalosSchema;
use homelab_talos::machine_config::{
    ApplyCheckError, ClusterInput, ConfigError, Encryption, MachineConfigInput, NodeInput, Patch,
    RenderedConfig, Role, RuleError, check_for_apply, redact, render,
};
use serde_json::{Value, json};

use crate::{generated_bundle, talos_fixture};

fn schema() -> &'static TalosSchema {
    static SCHEMA: std::sync::OnceLock<TalosSchema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| TalosSchema::builtin("v1.12.4").expect("the built-in Talos 1.12 schema"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const INSTALLER: &str = "factory.talos.dev/nocloud-installer-secureboot/\
    ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.12.4";

pub fn input(role: Role, encryption: Encryption) -> MachineConfigInput {
    let mut cluster = ClusterInput::new("homelab", "https://192.168.20.100:6443", "1.35.0");
    cluster.allow_scheduling_on_control_planes = role == Role::ControlPlane;
    MachineConfigInput {
        cluster,
        node: NodeInput {
            name: "talos-cp-1".into(),
            role,
            address: ip("192.168.20.100"),
            prefix: 24,
            gateway: ip("192.168.20.1"),
            nameservers: vec![ip("192.168.20.1"), ip("1.1.1.1")],
            mac: "BC:24:11:CA:FE:01".into(),
            install_disk: "/dev/sda".into(),
            encryption,
        },
        installer_image: INSTALLER.into(),
        patches: vec![],
    }
}

fn kinds(config: &RenderedConfig) -> Vec<String> {
    config
        .documents()
        .iter()
        .map(|d| {
            d.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("v1alpha1")
                .to_string()
        })
        .collect()
}

#[test]
fn every_generated_document_validates_against_the_official_schema() {
    for role in [Role::ControlPlane, Role::Worker] {
        for enc in [Encryption::Tpm, Encryption::None] {
            let config = render(&input(role, enc), generated_bundle()).unwrap();
            schema().validate(config.documents()).unwrap();
            // And again after a YAML round trip, as Talos would read the file.
            let reread = RenderedConfig::from_yaml(&config.to_yaml().unwrap()).unwrap();
            schema().validate(reread.documents()).unwrap();
            assert_eq!(reread, config);
        }
    }
}

#[test]
fn control_plane_with_tpm_has_the_1_12_documents_in_order() {
    let config = render(
        &input(Role::ControlPlane, Encryption::Tpm),
        generated_bundle(),
    )
    .unwrap();
    assert_eq!(
        kinds(&config),
        [
            "v1alpha1",
            "HostnameConfig",
            "LinkAliasConfig",
            "LinkConfig",
            "ResolverConfig",
            "VolumeConfig",
            "VolumeConfig"
        ]
    );
    let host = config.document("HostnameConfig", None).unwrap();
    assert_eq!(
        host,
        &json!({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "talos-cp-1"})
    );
    let alias = config.document("LinkAliasConfig", Some("net0")).unwrap();
    assert_eq!(
        alias["selector"]["match"],
        "mac(link.permanent_addr) == \"bc:24:11:ca:fe:01\""
    );
    let link = config.document("LinkConfig", Some("net0")).unwrap();
    assert_eq!(link["addresses"], json!([{"address": "192.168.20.100/24"}]));
    assert_eq!(link["routes"], json!([{"gateway": "192.168.20.1"}]));
    let state = config.document("VolumeConfig", Some("STATE")).unwrap();
    assert_eq!(state["encryption"]["provider"], "luks2");
    assert!(state["encryption"]["keys"][0]["tpm"].is_object());
    assert!(state["encryption"]["keys"][0].get("lockToState").is_none());
    let eph = config.document("VolumeConfig", Some("EPHEMERAL")).unwrap();
    assert_eq!(eph["encryption"]["keys"][0]["lockToState"], true);
    let v1 = config.document("v1alpha1", None).unwrap();
    assert_eq!(v1["machine"]["install"]["image"], INSTALLER);
    assert_eq!(v1["machine"]["install"]["disk"], "/dev/sda");
    assert_eq!(v1["cluster"]["allowSchedulingOnControlPlanes"], true);
    assert_eq!(
        v1["machine"]["kubelet"]["image"],
        "ghcr.io/siderolabs/kubelet:v1.35.0"
    );
    assert!(v1.pointer("/machine/network/hostname").is_none());
    assert!(v1.get("persist").is_none());
}

#[test]
fn worker_carries_no_ca_keys_and_no_encryption_docs_without_tpm() {
    let config = render(&input(Role::Worker, Encryption::None), generated_bundle()).unwrap();
    assert_eq!(
        kinds(&config),
        [
            "v1alpha1",
            "HostnameConfig",
            "LinkAliasConfig",
            "LinkConfig",
            "ResolverConfig"
        ]
    );
    let v1 = config.document("v1alpha1", None).unwrap();
    assert_eq!(v1["machine"]["type"], "worker");
    assert!(v1.pointer("/machine/ca/key").is_none());
    assert!(v1.pointer("/cluster/ca/key").is_none());
    assert!(v1.pointer("/cluster/apiServer").is_none());
    assert!(
        v1.pointer("/cluster/allowSchedulingOnControlPlanes")
            .is_none()
    );
}

#[test]
fn control_planes_of_an_ha_cluster_carry_the_vip_on_their_link() {
    let mut cp = input(Role::ControlPlane, Encryption::Tpm);
    cp.cluster.vip = Some(ip("192.168.20.99"));
    let config = render(&cp, generated_bundle()).unwrap();
    schema().validate(config.documents()).unwrap();
    let vip = config
        .document("Layer2VIPConfig", Some("192.168.20.99"))
        .unwrap();
    assert_eq!(vip["link"], "net0");
    let mut worker = cp.clone();
    worker.node.role = Role::Worker;
    let config = render(&worker, generated_bundle()).unwrap();
    assert!(config.document("Layer2VIPConfig", None).is_none());
    cp.cluster.vip = Some(cp.node.address);
    assert!(
        render(&cp, generated_bundle())
            .unwrap_err()
            .to_string()
            .contains("cluster.vip")
    );
}

#[test]
fn a_rendered_config_passes_the_apply_check_and_reports_its_static_address() {
    let config = render(
        &input(Role::ControlPlane, Encryption::Tpm),
        generated_bundle(),
    )
    .unwrap();
    let text = config.to_yaml().unwrap();
    let checked = check_for_apply(&text, schema()).unwrap();
    assert_eq!(
        checked.link_addresses(),
        [("net0".to_string(), ip("192.168.20.100"), 24)]
    );
    let unknown = text.replace("    certSANs: []\n", "    certSANs: []\n    bogus: 1\n");
    let err = check_for_apply(&unknown, schema()).unwrap_err();
    assert!(matches!(err, ApplyCheckError::Schema(_)), "{err}");
    assert!(err.to_string().contains("bogus"), "{err}");
    let auto = format!(
        "{}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n",
        text.as_str()
    );
    assert!(matches!(
        check_for_apply(&auto, schema()).unwrap_err(),
        ApplyCheckError::Rule(_)
    ));
}

#[test]
fn rendering_twice_is_byte_identical() {
    let mut i = input(Role::ControlPlane, Encryption::Tpm);
    i.patches
        .push(Patch::parse("machine:\n  certSANs: [a.example]\n", "p.yaml").unwrap());
    let a = render(&i, generated_bundle()).unwrap().to_yaml().unwrap();
    let b = render(&i, generated_bundle()).unwrap().to_yaml().unwrap();
    assert_eq!(*a, *b);
    assert!(
        a.contains("\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: talos-cp-1\n")
    );
    assert!(a.starts_with("version: v1alpha1\ndebug: false\nmachine:\n    type: controlplane\n"));
}

#[test]
fn user_patches_from_files_apply_last_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let smp = dir.path().join("smp.yaml");
    std::fs::write(
        &smp,
        "machine:\n  install:\n    wipe: true\n  certSANs: [cp.example]\n---\napiVersion: v1alpha1\nkind: LinkConfig\nname: net0\nmtu: 9000\n",
    )
    .unwrap();
    let jp = dir.path().join("json.yaml");
    std::fs::write(&jp, "- op: add\n  path: /machine/certSANs/-\n  value: 10.0.0.1\n- op: replace\n  path: /cluster/clusterName\n  value: renamed\n").unwrap();
    let mut i = input(Role::ControlPlane, Encryption::Tpm);
    i.patches = vec![
        Patch::from_file(&smp).unwrap(),
        Patch::from_file(&jp).unwrap(),
    ];
    let config = render(&i, generated_bundle()).unwrap();
    schema().validate(config.documents()).unwrap();
    let v1 = config.document("v1alpha1", None).unwrap();
    assert_eq!(v1["machine"]["install"]["wipe"], true);
    assert_eq!(v1["machine"]["certSANs"], json!(["cp.example", "10.0.0.1"]));
    assert_eq!(v1["cluster"]["clusterName"], "renamed");
    let link = config.document("LinkConfig", Some("net0")).unwrap();
    assert_eq!(link["mtu"], 9000);
    assert_eq!(link["addresses"], json!([{"address": "192.168.20.100/24"}]));
}

#[test]
fn a_patch_that_adds_auto_to_the_static_hostname_is_refused() {
    let mut i = input(Role::ControlPlane, Encryption::None);
    i.patches.push(
        Patch::parse(
            "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n",
            "h.yaml",
        )
        .unwrap(),
    );
    let err = render(&i, generated_bundle()).unwrap_err();
    assert!(
        matches!(err, ConfigError::Rule(RuleError::HostnameAutoAndStatic)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("'auto' and 'hostname' cannot be set at the same time")
    );
}

#[test]
fn legacy_hostname_fields_conflict_with_hostname_config() {
    let mut i = input(Role::ControlPlane, Encryption::None);
    i.patches
        .push(Patch::parse("machine:\n  network:\n    hostname: other\n", "h.yaml").unwrap());
    let err = render(&i, generated_bundle()).unwrap_err();
    assert!(
        matches!(err, ConfigError::Rule(RuleError::HostnameInV1alpha1)),
        "{err}"
    );
    let mut i = input(Role::ControlPlane, Encryption::None);
    i.patches.push(
        Patch::parse(
            "machine:\n  features:\n    stableHostname: true\n",
            "h.yaml",
        )
        .unwrap(),
    );
    let err = render(&i, generated_bundle()).unwrap_err();
    assert!(
        matches!(err, ConfigError::Rule(RuleError::StableHostnameInV1alpha1)),
        "{err}"
    );
}

#[test]
fn a_patch_with_an_unknown_key_is_refused_at_its_line_and_a_bad_value_is_traced_to_its_patch() {
    // Talos loads patches strictly: an unknown key fails when the patch is read.
    let err = Patch::parse("machine:\n  instal:\n    disk: /dev/vda\n", "typo.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("typo.yaml:2: unknown field `instal`"),
        "{err}"
    );
    // A value only the schema refuses: the rendered config remembers which patch line wrote it.
    let mut i = input(Role::ControlPlane, Encryption::None);
    i.patches.push(
        Patch::parse(
            "cluster:\n  network:\n    cni:\n      name: bogus\n",
            "cni.yaml",
        )
        .unwrap(),
    );
    let config = render(&i, generated_bundle()).unwrap();
    let err = schema().validate(config.documents()).unwrap_err();
    assert!(
        err.to_string().contains("/cluster/network/cni/name"),
        "{err}"
    );
    let origin = config.patch_origin(0, "/cluster/network/cni/name").unwrap();
    assert_eq!(origin.to_string(), "cni.yaml:4");
    assert!(config.patch_origin(0, "/machine/type").is_none());
}

#[test]
fn bad_inputs_get_clear_errors() {
    type Change = Box<dyn Fn(&mut MachineConfigInput)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|i| i.cluster.kubernetes_version = "1.36.0".into()),
            "supports Kubernetes 1.30.0 to 1.35.x",
        ),
        (
            Box::new(|i| {
                i.installer_image = i.installer_image.replace(":v1.12.4", ":v1.13.9");
                i.cluster.kubernetes_version = "1.37.0".into();
            }),
            "Talos 1.13 supports Kubernetes 1.31.0 to 1.36.x, not 1.37.0",
        ),
        (
            Box::new(|i| i.installer_image = "ghcr.io/siderolabs/installer:v1.12.4".into()),
            "vanilla installer",
        ),
        (
            Box::new(|i| {
                i.installer_image = "factory.talos.dev/nocloud-installer/abc:v1.12.4".into()
            }),
            "SecureBoot",
        ),
        (
            Box::new(|i| i.installer_image = String::new()),
            "installer_image",
        ),
        (
            Box::new(|i| i.node.name = "Bad_Name".into()),
            "not a valid hostname",
        ),
        (Box::new(|i| i.node.mac = "bc:24:11".into()), "node.mac"),
        (Box::new(|i| i.node.prefix = 33), "node.prefix"),
        (
            Box::new(|i| i.node.gateway = ip("fe80::1")),
            "same IP family",
        ),
        (
            Box::new(|i| i.cluster.endpoint = "http://x:6443".into()),
            "https://HOST:PORT",
        ),
        (Box::new(|i| i.node.install_disk = "sda".into()), "/dev/sda"),
    ];
    for (change, expected) in cases {
        let mut i = input(Role::ControlPlane, Encryption::Tpm);
        change(&mut i);
        let err = render(&i, generated_bundle()).unwrap_err().to_string();
        assert!(err.contains(expected), "{err} should mention {expected}");
    }
}

#[test]
fn redaction_masks_every_secret_of_the_bundle() {
    let bundle = generated_bundle();
    let config = render(&input(Role::ControlPlane, Encryption::Tpm), bundle).unwrap();
    let plain = config.to_yaml().unwrap();
    let masked = redact(&plain).unwrap();
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let secrets = [
        bundle.cluster.id.expose().to_string(),
        bundle.cluster.secret.expose().to_string(),
        bundle.secrets.bootstraptoken.expose().to_string(),
        bundle.trustdinfo.token.expose().to_string(),
        bundle
            .secrets
            .secretboxencryptionsecret
            .as_ref()
            .unwrap()
            .expose()
            .to_string(),
        b64(bundle.certs.os.key.expose()),
        b64(bundle.certs.k8s.key.expose()),
        b64(bundle.certs.k8saggregator.key.expose()),
        b64(bundle.certs.etcd.key.expose()),
        b64(bundle.certs.k8sserviceaccount.key.expose()),
    ];
    for s in &secrets {
        assert!(plain.contains(s.as_str()));
        assert!(!masked.contains(s.as_str()));
    }
    assert!(
        masked.contains(&b64(&bundle.certs.os.crt)),
        "certificates stay visible"
    );
    assert!(
        masked.contains("token: '******'") || masked.contains("token: \"******\""),
        "{masked}"
    );
    assert_eq!(config.redacted().to_yaml().unwrap().as_str(), masked);
}

#[test]
fn talos_test_documents_validate_against_the_schema() {
    for f in [
        "types/network/testdata/linkconfig.yaml",
        "types/network/testdata/resolverconfig.yaml",
        "types/network/testdata/hostnameconfig.yaml",
        "types/block/testdata/volumeconfig_state.yaml",
        "types/block/testdata/volumeconfig_tpm_encryption_with_pcr_settings.yaml",
    ] {
        let config = RenderedConfig::from_yaml(&talos_fixture(f)).unwrap();
        schema().validate(config.documents()).unwrap();
    }
    let bad = json!({"apiVersion": "v1alpha1", "kind": "LinkConfig", "name": "x", "unknown": 1});
    assert!(schema().validate(&[bad]).is_err());
}

#[test]
fn talos_1_13_installer_renders_kubernetes_1_36() {
    let mut i = input(Role::ControlPlane, Encryption::None);
    i.installer_image = i.installer_image.replace(":v1.12.4", ":v1.13.9");
    i.cluster.kubernetes_version = "1.36.2".into();
    let config = render(&i, generated_bundle()).unwrap();
    let v1alpha1 = config.document("v1alpha1", None).unwrap();
    assert_eq!(
        v1alpha1.pointer("/cluster/apiServer/image"),
        Some(&serde_json::json!("registry.k8s.io/kube-apiserver:v1.36.2"))
    );
}
