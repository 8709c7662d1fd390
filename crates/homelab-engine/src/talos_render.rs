//! [`ConfigRenderer`] over homelab-talos: maps homelab.yaml onto the machine-config inputs and renders each
//! node's documents from the cluster's secrets bundle.

use std::path::PathBuf;

use homelab_config::{Config, Encryption, Node, Role};
use homelab_talos::machine_config::{self, ClusterInput, MachineConfigInput, NodeInput, Patch};
use homelab_talos::secrets::SecretsBundle;
use zeroize::Zeroizing;

use crate::desired::{ConfigRenderer, RenderedNode};

pub struct TalosRenderer {
    pub bundle: SecretsBundle,
    /// Directory of homelab.yaml: patch paths are relative to it.
    pub base_dir: PathBuf,
}

/// The machine-config inputs for `node`.
pub fn machine_config_input(
    config: &Config,
    node: &Node,
    installer_image: &str,
    base_dir: &std::path::Path,
) -> Result<MachineConfigInput, String> {
    let c = &config.cluster;
    let cluster = ClusterInput {
        name: c.name.clone(),
        endpoint: c.endpoint.clone(),
        kubernetes_version: c.kubernetes_version.to_string(),
        pod_subnets: c.pod_subnets.iter().map(ToString::to_string).collect(),
        service_subnets: c.service_subnets.iter().map(ToString::to_string).collect(),
        allow_scheduling_on_control_planes: c.allow_scheduling_on_control_planes,
        vip: c.vip,
        ..ClusterInput::new(&c.name, &c.endpoint, c.kubernetes_version.to_string())
    };
    let net = &node.network;
    let node_input = NodeInput {
        name: node.name.clone(),
        role: match node.role {
            Role::Controlplane => machine_config::Role::ControlPlane,
            Role::Worker => machine_config::Role::Worker,
        },
        address: net.address.address,
        prefix: net.address.prefix,
        gateway: net.gateway,
        nameservers: net.nameservers.clone(),
        mac: net.mac.to_string(),
        install_disk: node.install_disk.clone(),
        encryption: match node.encryption {
            Encryption::Tpm => machine_config::Encryption::Tpm,
            Encryption::None => machine_config::Encryption::None,
        },
    };
    let patches = c
        .patches
        .iter()
        .map(|p| Patch::from_file(&base_dir.join(p)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MachineConfigInput {
        cluster,
        node: node_input,
        installer_image: installer_image.to_string(),
        patches,
    })
}

impl ConfigRenderer for TalosRenderer {
    fn render(
        &self,
        config: &Config,
        node: &Node,
        installer_image: &str,
    ) -> Result<RenderedNode, String> {
        let input = machine_config_input(config, node, installer_image, &self.base_dir)?;
        let rendered = machine_config::render(&input, &self.bundle).map_err(|e| e.to_string())?;
        let yaml = rendered.to_yaml().map_err(|e| e.to_string())?;
        let redacted = rendered.redacted().to_yaml().map_err(|e| e.to_string())?;
        Ok(RenderedNode {
            config: Zeroizing::new(yaml.as_bytes().to_vec()),
            redacted: redacted.to_string(),
        })
    }

    fn render_staged(
        &self,
        config: &Config,
        node: &str,
        installer_image: &str,
        versions: &crate::kubernetes_upgrade::StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        use crate::kubernetes_upgrade::{StagedRenderer, TalosStagedRenderer};
        TalosStagedRenderer {
            renderer: self,
            config,
            installer_image: installer_image.to_string(),
        }
        .render_staged(node, versions)
    }
}
