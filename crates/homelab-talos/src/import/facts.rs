//! What homelab.yaml can say about a node, read back from the machine configuration it runs: role,
//! hostname, static address, gateway, nameservers and the NIC's MAC (the 1.12 network documents, or the
//! legacy `machine.network` fields), install disk and installer image (Image Factory registry, platform,
//! SecureBoot, schematic, Talos version), disk encryption, and the cluster's name, endpoint, VIP,
//! Kubernetes version and subnets. What is not there stays `None`; the caller reports it.

use std::net::IpAddr;

use serde_json::Value;

use crate::machine_config::{Encryption, RenderedConfig, Role};

/// Why a machine configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("not a Talos machine config: {0}")]
    NotAConfig(String),
    #[error("the machine config has no {0}")]
    Missing(&'static str),
}

/// An installer image reference as the Image Factory names it:
/// `REGISTRY/PLATFORM-installer[-secureboot]/SCHEMATIC:VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallerImage {
    /// registry host (and port), e.g. `factory.talos.dev`
    pub registry: String,
    /// `nocloud`, `metal`, …
    pub platform: String,
    /// the `-secureboot` installer
    pub secureboot: bool,
    /// the schematic id (64 hex digits)
    pub schematic: String,
    /// the Talos version tag, e.g. `v1.12.4`
    pub version: String,
}

impl InstallerImage {
    /// Parses a factory installer reference; `None` for any other image (e.g. `ghcr.io/siderolabs/installer`).
    pub fn parse(image: &str) -> Option<Self> {
        let (rest, version) = image.rsplit_once(':')?;
        let mut parts = rest.rsplitn(3, '/');
        let schematic = parts.next()?;
        let flavour = parts.next()?;
        let registry = parts.next()?;
        let (platform, secureboot) = match flavour.strip_suffix("-installer-secureboot") {
            Some(p) => (p, true),
            None => (flavour.strip_suffix("-installer")?, false),
        };
        let hex = schematic.len() == 64 && schematic.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && !platform.is_empty() && version.starts_with('v')).then(|| Self {
            registry: registry.to_string(),
            platform: platform.to_string(),
            secureboot,
            schematic: schematic.to_string(),
            version: version.to_string(),
        })
    }
}

/// Cluster-wide settings of a node's config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterFacts {
    /// `cluster.clusterName`
    pub name: Option<String>,
    /// `cluster.controlPlane.endpoint`
    pub endpoint: Option<String>,
    /// the tag of `machine.kubelet.image` without its `v`
    pub kubernetes_version: Option<String>,
    /// `cluster.network.podSubnets`
    pub pod_subnets: Vec<String>,
    /// `cluster.network.serviceSubnets`
    pub service_subnets: Vec<String>,
    /// `cluster.allowSchedulingOnControlPlanes`
    pub allow_scheduling_on_control_planes: bool,
    /// the `Layer2VIPConfig` name (control planes only)
    pub vip: Option<IpAddr>,
}

/// What a node's running config says that homelab.yaml can express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// `machine.type` (`init` counts as a control plane)
    pub role: Role,
    /// `HostnameConfig.hostname`, or the legacy `machine.network.hostname`
    pub hostname: Option<String>,
    /// the first static address and its prefix length
    pub address: Option<(IpAddr, u8)>,
    /// the default route's gateway
    pub gateway: Option<IpAddr>,
    /// DNS servers
    pub nameservers: Vec<IpAddr>,
    /// the NIC's MAC (upper case, colon-separated) from the link selector
    pub mac: Option<String>,
    /// `machine.install.disk`
    pub install_disk: Option<String>,
    /// `machine.install.image`, as written
    pub install_image: Option<String>,
    /// the same, parsed when it is an Image Factory installer
    pub installer: Option<InstallerImage>,
    /// TPM-sealed LUKS2 on STATE (`VolumeConfig`)
    pub encryption: Encryption,
    /// the cluster-wide settings
    pub cluster: ClusterFacts,
}

/// Reads the facts from a machine configuration (YAML, one or more documents).
pub fn node_facts(text: &str) -> Result<NodeFacts, FactsError> {
    let config =
        RenderedConfig::from_yaml(text).map_err(|e| FactsError::NotAConfig(e.to_string()))?;
    let v1 = config
        .document("v1alpha1", None)
        .ok_or(FactsError::Missing("v1alpha1 document (machine/cluster)"))?;
    let str_at = |doc: &Value, pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let role = match str_at(v1, "/machine/type").as_deref() {
        Some("controlplane" | "init") => Role::ControlPlane,
        Some("worker") => Role::Worker,
        _ => return Err(FactsError::Missing("machine.type")),
    };
    let legacy_if = v1.pointer("/machine/network/interfaces/0");
    let hostname = config
        .document("HostnameConfig", None)
        .and_then(|d| str_at(d, "/hostname"))
        .or_else(|| str_at(v1, "/machine/network/hostname"));
    let address = config
        .link_addresses()
        .first()
        .map(|(_, ip, prefix)| (*ip, *prefix))
        .or_else(|| {
            legacy_if
                .and_then(|i| i.pointer("/addresses/0"))
                .and_then(Value::as_str)
                .and_then(parse_cidr)
        });
    let link = config.document("LinkConfig", None);
    let gateway = link
        .and_then(|l| l.get("routes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            legacy_if
                .and_then(|i| i.get("routes"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .find_map(|r| r.get("gateway").and_then(Value::as_str)?.parse().ok());
    let nameservers = match config.document("ResolverConfig", None) {
        Some(r) => r
            .get("nameservers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.get("address").and_then(Value::as_str)?.parse().ok())
            .collect(),
        None => v1
            .pointer("/machine/network/nameservers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str()?.parse().ok())
            .collect(),
    };
    let mac = config
        .document("LinkAliasConfig", None)
        .and_then(|d| str_at(d, "/selector/match"))
        .and_then(|m| mac_in_selector(&m))
        .or_else(|| {
            legacy_if
                .and_then(|i| i.pointer("/deviceSelector/hardwareAddr"))
                .and_then(Value::as_str)
                .filter(|m| is_mac(m))
                .map(str::to_ascii_uppercase)
        });
    let install_image = str_at(v1, "/machine/install/image");
    let encryption = match config.document("VolumeConfig", Some("STATE")) {
        Some(d)
            if d.pointer("/encryption/keys")
                .and_then(Value::as_array)
                .is_some_and(|keys| keys.iter().any(|k| k.get("tpm").is_some())) =>
        {
            Encryption::Tpm
        }
        _ => Encryption::None,
    };
    let strings = |pointer: &str| -> Vec<String> {
        v1.pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let cluster = ClusterFacts {
        name: str_at(v1, "/cluster/clusterName"),
        endpoint: str_at(v1, "/cluster/controlPlane/endpoint"),
        kubernetes_version: str_at(v1, "/machine/kubelet/image").and_then(|i| {
            i.rsplit_once(':')
                .map(|(_, t)| t.trim_start_matches('v').to_string())
        }),
        pod_subnets: strings("/cluster/network/podSubnets"),
        service_subnets: strings("/cluster/network/serviceSubnets"),
        allow_scheduling_on_control_planes: v1
            .pointer("/cluster/allowSchedulingOnControlPlanes")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        vip: config
            .document("Layer2VIPConfig", None)
            .and_then(|d| str_at(d, "/name"))
            .and_then(|n| n.parse().ok())
            .or_else(|| {
                legacy_if
                    .and_then(|i| i.pointer("/vip/ip"))
                    .and_then(Value::as_str)
                    .and_then(|n| n.parse().ok())
            }),
    };
    Ok(NodeFacts {
        role,
        hostname,
        address,
        gateway,
        nameservers,
        mac,
        install_disk: str_at(v1, "/machine/install/disk"),
        installer: install_image.as_deref().and_then(InstallerImage::parse),
        install_image,
        encryption,
        cluster,
    })
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    Some((ip.parse().ok()?, prefix.parse().ok()?))
}

fn is_mac(text: &str) -> bool {
    text.len() == 17
        && text
            .split(':')
            .all(|octet| octet.len() == 2 && octet.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The MAC of a link selector in the form Talos documents for one fixed NIC:
/// `mac(link.permanent_addr) == "bc:24:11:…"` (or `link.hardware_addr`).
fn mac_in_selector(selector: &str) -> Option<String> {
    let (lhs, rhs) = selector.split_once("==")?;
    let lhs = lhs.trim();
    if !lhs.starts_with("mac(link.") {
        return None;
    }
    let mac = rhs.trim().trim_matches('"');
    is_mac(mac).then(|| mac.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMATIC: &str = "3abf06e1d81e509d779dc256f9feae6cd6d82c69337c661cbfc383a92594faf5";

    fn config(extra: &str) -> String {
        format!(
            "version: v1alpha1\nmachine:\n    type: controlplane\n    kubelet:\n        image: ghcr.io/siderolabs/kubelet:v1.35.0\n    install:\n        disk: /dev/sda\n        image: factory.talos.dev/nocloud-installer-secureboot/{SCHEMATIC}:v1.12.4\ncluster:\n    controlPlane:\n        endpoint: https://192.168.20.100:6443\n    clusterName: homelab\n    network:\n        podSubnets:\n            - 10.244.0.0/16\n        serviceSubnets:\n            - 10.96.0.0/12\n    allowSchedulingOnControlPlanes: true\n{extra}"
        )
    }

    #[test]
    fn the_1_12_network_documents_give_name_address_mac_and_dns() {
        let text = config(
            "---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: talos-cp-01\n---\napiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n    match: mac(link.permanent_addr) == \"bc:24:11:ca:fe:01\"\n---\napiVersion: v1alpha1\nkind: LinkConfig\nname: net0\nup: true\naddresses:\n    - address: 192.168.20.100/24\nroutes:\n    - gateway: \"192.168.20.1\"\n---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 192.168.20.99\nlink: net0\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n    - address: \"192.168.20.1\"\n---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: STATE\nencryption:\n    provider: luks2\n    keys:\n        - slot: 0\n          tpm: {}\n",
        );
        let facts = node_facts(&text).expect("facts");
        assert_eq!(facts.role, Role::ControlPlane);
        assert_eq!(facts.hostname.as_deref(), Some("talos-cp-01"));
        assert_eq!(
            facts.address,
            Some(("192.168.20.100".parse().expect("ip"), 24))
        );
        assert_eq!(facts.gateway, Some("192.168.20.1".parse().expect("ip")));
        assert_eq!(
            facts.nameservers,
            vec!["192.168.20.1".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(facts.mac.as_deref(), Some("BC:24:11:CA:FE:01"));
        assert_eq!(facts.encryption, Encryption::Tpm);
        assert_eq!(facts.install_disk.as_deref(), Some("/dev/sda"));
        let installer = facts.installer.expect("a factory installer");
        assert_eq!(
            (
                installer.registry.as_str(),
                installer.platform.as_str(),
                installer.secureboot
            ),
            ("factory.talos.dev", "nocloud", true)
        );
        assert_eq!(
            (installer.schematic.as_str(), installer.version.as_str()),
            (SCHEMATIC, "v1.12.4")
        );
        assert_eq!(facts.cluster.name.as_deref(), Some("homelab"));
        assert_eq!(facts.cluster.kubernetes_version.as_deref(), Some("1.35.0"));
        assert_eq!(
            facts.cluster.vip,
            Some("192.168.20.99".parse().expect("ip"))
        );
        assert!(facts.cluster.allow_scheduling_on_control_planes);
        assert_eq!(facts.cluster.pod_subnets, ["10.244.0.0/16"]);
    }

    #[test]
    fn the_legacy_network_fields_are_read_too() {
        let text = config("").replace(
            "    kubelet:",
            "    network:\n        hostname: w1\n        nameservers:\n            - 1.1.1.1\n        interfaces:\n            - deviceSelector:\n                hardwareAddr: bc:24:11:00:00:02\n              addresses:\n                - 10.0.0.5/24\n              routes:\n                - network: 0.0.0.0/0\n                  gateway: 10.0.0.1\n    kubelet:",
        );
        let facts = node_facts(&text).expect("facts");
        assert_eq!(facts.hostname.as_deref(), Some("w1"));
        assert_eq!(facts.address, Some(("10.0.0.5".parse().expect("ip"), 24)));
        assert_eq!(facts.gateway, Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(facts.mac.as_deref(), Some("BC:24:11:00:00:02"));
        assert_eq!(facts.nameservers.len(), 1);
        assert_eq!(facts.encryption, Encryption::None);
    }

    #[test]
    fn other_installers_and_selectors_are_not_guessed() {
        assert_eq!(
            InstallerImage::parse("ghcr.io/siderolabs/installer:v1.12.4"),
            None
        );
        assert_eq!(mac_in_selector("link.driver == \"virtio_net\""), None);
        assert!(node_facts("version: v1alpha1\nmachine: {}\n").is_err());
    }
}
