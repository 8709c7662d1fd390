//! [`ConfigRenderer`] over homelab-talos: maps homelab.yaml onto the machine-config inputs, renders each
//! node's documents from the cluster's secrets bundle with the user's patches (cluster, then role, then
//! node), and checks a patched result against the official schema of the node's Talos version, naming the
//! patch file and line that introduced a bad field.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use homelab_config::{Config, Encryption, Node, PatchSource, PatchTree, PatchValue, Role};
use homelab_talos::configpatcher::{self, Origin, tree::resolve_plain};
use homelab_talos::machine_config::{
    self, ClusterInput, ConfigError, MachineConfigInput, NodeInput, Patch, PatchError,
    RenderedConfig, schema::TalosSchema,
};
use homelab_talos::secrets::SecretsBundle;
use zeroize::Zeroizing;

use crate::desired::{ConfigRenderer, RenderedNode};

pub struct TalosRenderer {
    pub bundle: SecretsBundle,
    /// Directory of homelab.yaml: patch paths are relative to it.
    pub base_dir: PathBuf,
}

/// The patches for `node`, in the order they apply: cluster, role, node.
pub fn node_patches<'a>(
    config: &'a Config,
    node: &'a Node,
) -> impl Iterator<Item = &'a PatchSource> {
    let c = &config.cluster;
    let role = match node.role {
        Role::Controlplane => &c.role_patches.controlplane,
        Role::Worker => &c.role_patches.worker,
    };
    c.patches.iter().chain(role).chain(&node.patches)
}

/// Load one patch entry: a file relative to `base_dir` (named as written in homelab.yaml) or inline, with
/// the config types of Talos `talos_version`.
pub fn load_patch(
    source: &PatchSource,
    base_dir: &Path,
    talos_version: &str,
) -> Result<Patch, String> {
    match source {
        PatchSource::File(rel) => {
            let text =
                Zeroizing::new(std::fs::read_to_string(base_dir.join(rel)).map_err(|e| {
                    format!(
                        "cannot read patch {}: {e} (paths are relative to homelab.yaml)",
                        rel.display()
                    )
                })?);
            Patch::parse_for(&text, &rel.display().to_string(), talos_version)
                .map_err(|e| e.to_string())
        }
        PatchSource::Inline(tree) => {
            let src: Arc<str> = Arc::from(homelab_config::FILE_NAME);
            Patch::from_tree(
                inline_node(tree, &src),
                homelab_config::FILE_NAME,
                talos_version,
            )
            .map_err(|e| e.to_string())
        }
    }
}

fn inline_node(tree: &PatchTree, src: &Arc<str>) -> configpatcher::Node {
    use configpatcher::{Tag, Value};
    let value = match &tree.value {
        PatchValue::Null => Value::Null,
        PatchValue::Scalar { text, quoted: true } => Value::Scalar(text.clone(), Tag::Str),
        PatchValue::Scalar {
            text,
            quoted: false,
        } => match resolve_plain(text) {
            None => Value::Null,
            Some(tag) => Value::Scalar(text.clone(), tag),
        },
        PatchValue::Seq(items) => Value::Seq(items.iter().map(|i| inline_node(i, src)).collect()),
        PatchValue::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), inline_node(v, src)))
                .collect(),
        ),
    };
    configpatcher::Node {
        value,
        origin: Some(Origin {
            source: src.clone(),
            line: tree.line,
        }),
    }
}

/// [`load_patch`] with the file and line of a failure.
fn load_patch_at(
    source: &PatchSource,
    base_dir: &Path,
    talos_version: &str,
) -> Result<Patch, PatchFailure> {
    load_patch(source, base_dir, talos_version).map_err(|message| {
        let location = match source {
            PatchSource::Inline(tree) => Some((homelab_config::FILE_NAME.to_string(), tree.line)),
            PatchSource::File(rel) => Some((rel.display().to_string(), 0)),
        };
        // A load error names its own line (`FILE:LINE: …`); keep it when there is one.
        let location = parse_location(&message).or(location);
        PatchFailure { message, location }
    })
}

fn parse_location(message: &str) -> Option<(String, usize)> {
    let (head, _) = message.split_once(": ")?;
    let (file, line) = head.rsplit_once(':')?;
    Some((file.to_string(), line.parse().ok()?))
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
    let patches = node_patches(config, node)
        .map(|p| load_patch(p, base_dir, &config.image.talos_version.with_v()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MachineConfigInput {
        cluster,
        node: node_input,
        installer_image: installer_image.to_string(),
        patches,
    })
}

/// A node whose patches fail: the message, and the patch file and line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchFailure {
    pub message: String,
    /// `(file as written in homelab.yaml, or homelab.yaml for an inline patch; 1-based line)`.
    pub location: Option<(String, usize)>,
}

/// Check a patched config against the official schema of `talos_version` (`v1.12.4`); an error names the
/// field, the patch file and line that wrote it, and what to do.
pub fn check_patched(
    node: &str,
    rendered: &RenderedConfig,
    talos_version: &str,
) -> Result<(), String> {
    check_patched_at(node, rendered, talos_version).map_err(|f| f.message)
}

fn check_patched_at(
    node: &str,
    rendered: &RenderedConfig,
    talos_version: &str,
) -> Result<(), PatchFailure> {
    let plain = |message: String| PatchFailure {
        message,
        location: None,
    };
    let schema = TalosSchema::builtin(talos_version).map_err(|e| plain(e.to_string()))?;
    let errors = schema.errors(rendered.documents(), 5);
    let Some((index, pointer, message)) = errors.first() else {
        return Ok(());
    };
    let kind = rendered
        .documents()
        .get(*index)
        .and_then(|d| d.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("v1alpha1");
    let place = if pointer.is_empty() {
        "/"
    } else {
        pointer.as_str()
    };
    let origin = rendered.patch_origin(*index, pointer);
    let by = match &origin {
        Some(o) => format!("introduced by the patch at {o}"),
        None => "after the patches".to_string(),
    };
    Err(PatchFailure {
        message: format!(
            "node {node}: the patched machine config does not match the Talos {talos_version} schema: `{place}` in the {kind} document: {message} ({by}); fix or remove that patch"
        ),
        location: origin.map(|o| (o.source.to_string(), o.line)),
    })
}

/// Render every node that has patches with placeholder secrets and check the patched result (what
/// `validate` runs: no secrets needed). Returns `(node index, message)` for each node whose patches fail.
pub fn validate_patches(config: &Config, base_dir: &Path) -> Vec<(usize, PatchFailure)> {
    let bundle = SecretsBundle::placeholder();
    // The installer's shape matters to the rules (SecureBoot or not), its schematic id does not.
    let installer = format!(
        "factory.talos.dev/{}-installer{}/placeholder:{}",
        config.image.platform.as_str(),
        if config.image.secureboot {
            "-secureboot"
        } else {
            ""
        },
        config.image.talos_version.with_v()
    );
    let mut out = Vec::new();
    for (i, node) in config.nodes.iter().enumerate() {
        if node_patches(config, node).next().is_none() {
            continue;
        }
        let result = node_patches(config, node)
            .map(|p| load_patch_at(p, base_dir, &config.image.talos_version.with_v()))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|patches| {
                let mut input = machine_config_input(
                    config,
                    &Node {
                        patches: Vec::new(),
                        ..node.clone()
                    },
                    &installer,
                    base_dir,
                )
                .map_err(|message| PatchFailure {
                    message,
                    location: None,
                })?;
                input.patches = patches;
                let rendered = machine_config::render_unchecked(&input, &bundle).map_err(|e| {
                    let location = match &e {
                        ConfigError::Patch(PatchError::Patch(configpatcher::PatchError::At {
                            source_name,
                            line,
                            ..
                        })) => Some((source_name.clone(), *line)),
                        _ => None,
                    };
                    PatchFailure {
                        message: format!("node {}: {e}", node.name),
                        location,
                    }
                })?;
                check_patched_at(&node.name, &rendered, &config.image.talos_version.with_v())?;
                machine_config::rules::check_documents(rendered.documents()).map_err(|e| {
                    PatchFailure {
                        message: format!("node {}: after the patches: {e}", node.name),
                        location: None,
                    }
                })
            });
        if let Err(failure) = result {
            out.push((i, failure));
        }
    }
    out
}

impl ConfigRenderer for TalosRenderer {
    fn render(
        &self,
        config: &Config,
        node: &Node,
        installer_image: &str,
    ) -> Result<RenderedNode, String> {
        let input = machine_config_input(config, node, installer_image, &self.base_dir)?;
        let rendered =
            machine_config::render_unchecked(&input, &self.bundle).map_err(|e| e.to_string())?;
        if !input.patches.is_empty() {
            // The schema first: its errors can name the patch line, the rules' cannot.
            check_patched(&node.name, &rendered, &config.image.talos_version.with_v())?;
        }
        machine_config::rules::check_documents(rendered.documents()).map_err(|e| e.to_string())?;
        let yaml = rendered.to_yaml().map_err(|e| e.to_string())?;
        let redacted = rendered.redacted().to_yaml().map_err(|e| e.to_string())?;
        Ok(RenderedNode {
            config: Zeroizing::new(yaml.as_bytes().to_vec()),
            redacted: redacted.to_string(),
        })
    }
}
