//! Machine configuration for Talos 1.12: renders the multi-document config of one node (control plane or
//! worker) from plain inputs and the secrets bundle, applies the user's patches last, and checks the
//! Talos semantic rules on the result.
//!
//! Documents, in order: the v1alpha1 document, `HostnameConfig` (static hostname, never `auto`),
//! `LinkAliasConfig` (the NIC picked by its MAC, named `net0`), `LinkConfig` (static address and default
//! route on that link), `Layer2VIPConfig` on control planes when the cluster has a VIP, `ResolverConfig`, and with `tpm` encryption `VolumeConfig` for STATE and EPHEMERAL
//! (LUKS2, key sealed by the TPM). Rendering is deterministic: the same inputs give byte-identical YAML.

mod documents;
pub mod patch;
pub mod redact;
pub mod rules;
pub mod schema;

use std::net::IpAddr;

use serde_json::Value;

use crate::secrets::SecretsBundle;

pub use patch::{Patch, PatchError};
pub use redact::redact;
pub use rules::RuleError;

/// The alias given to the node's NIC (selected by MAC) and used by `LinkConfig`.
pub const LINK_ALIAS: &str = "net0";

/// Kubernetes versions Talos 1.12 supports (`MinimumKubernetesVersion`..`MaximumKubernetesVersion`); other
/// releases' windows follow from the installer image's tag (see `rules::kubernetes_window`).
pub const KUBERNETES_MIN: (u64, u64) = (1, 30);
pub const KUBERNETES_MAX: (u64, u64) = (1, 35);

/// Role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    /// The `machine.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "controlplane",
            Role::Worker => "worker",
        }
    }
}

/// System disk encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// No VolumeConfig documents: STATE and EPHEMERAL unencrypted.
    None,
    /// LUKS2 on STATE and EPHEMERAL with a random key sealed by the TPM (needs SecureBoot).
    Tpm,
}

/// Cluster-wide inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInput {
    /// `cluster.clusterName`.
    pub name: String,
    /// Kubernetes API endpoint, e.g. `https://192.168.20.100:6443`.
    pub endpoint: String,
    /// Kubernetes version, e.g. `1.35.0` (a leading `v` is accepted).
    pub kubernetes_version: String,
    /// Pod subnets (default `10.244.0.0/16`).
    pub pod_subnets: Vec<String>,
    /// Service subnets (default `10.96.0.0/12`).
    pub service_subnets: Vec<String>,
    /// `cluster.network.dnsDomain` (default `cluster.local`).
    pub dns_domain: String,
    /// Let workloads run on control planes (set for a single-node cluster).
    pub allow_scheduling_on_control_planes: bool,
    /// Shared virtual IP of the control planes (Layer2VIPConfig on their link), for HA clusters.
    pub vip: Option<IpAddr>,
}

/// Per-node inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInput {
    /// Static hostname (HostnameConfig).
    pub name: String,
    pub role: Role,
    /// Static address on the NIC.
    pub address: IpAddr,
    /// Prefix length of the node's subnet.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: IpAddr,
    /// DNS servers (ResolverConfig); empty keeps Talos' defaults.
    pub nameservers: Vec<IpAddr>,
    /// MAC address of the NIC to configure, e.g. `BC:24:11:CA:FE:01`.
    pub mac: String,
    /// Install disk, e.g. `/dev/sda`.
    pub install_disk: String,
    pub encryption: Encryption,
}

/// Everything a node's machine configuration is made from (besides the secrets bundle).
#[derive(Clone, Debug, PartialEq)]
pub struct MachineConfigInput {
    pub cluster: ClusterInput,
    pub node: NodeInput,
    /// Installer image from the Image Factory, e.g.
    /// `factory.talos.dev/nocloud-installer-secureboot/<id>:v1.12.4`.
    pub installer_image: String,
    /// User patches, applied last in this order.
    pub patches: Vec<Patch>,
}

impl ClusterInput {
    /// Inputs with Talos' defaults for subnets and DNS domain.
    pub fn new(
        name: impl Into<String>,
        endpoint: impl Into<String>,
        kubernetes_version: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            endpoint: endpoint.into(),
            kubernetes_version: kubernetes_version.into(),
            pod_subnets: vec!["10.244.0.0/16".into()],
            service_subnets: vec!["10.96.0.0/12".into()],
            dns_domain: "cluster.local".into(),
            allow_scheduling_on_control_planes: false,
            vip: None,
        }
    }
}

/// Why a machine configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid input `{field}`: {reason}")]
    Input { field: &'static str, reason: String },
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("the machine configuration could not be written as YAML: {0}")]
    Yaml(String),
}

/// A rendered multi-document machine configuration. Contains secrets: show it through [`redact`].
#[derive(Clone, PartialEq)]
pub struct RenderedConfig {
    documents: Vec<Value>,
    /// The patched config with the file and line of every node, when patches were applied.
    patched: Option<crate::configpatcher::Config>,
}

impl std::fmt::Debug for RenderedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedConfig")
            .field("documents", &self.documents.len())
            .finish_non_exhaustive()
    }
}

impl RenderedConfig {
    /// Wrap documents (e.g. parsed from a file) without checking them.
    pub fn from_documents(documents: Vec<Value>) -> Self {
        Self {
            documents,
            patched: None,
        }
    }

    /// Where the field at `pointer` (a JSON pointer) of document `index` was written, when a patch wrote
    /// it (or the nearest enclosing field a patch wrote): the patch file and line.
    pub fn patch_origin(
        &self,
        index: usize,
        pointer: &str,
    ) -> Option<crate::configpatcher::Origin> {
        self.patched.as_ref()?.origin_of(index, pointer).cloned()
    }

    /// Parse a multi-document YAML config.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        patch::parse_documents(text, "machine config")
            .map(Self::from_documents)
            .map_err(ConfigError::from)
    }

    /// The documents, v1alpha1 first.
    pub fn documents(&self) -> &[Value] {
        &self.documents
    }

    /// The multi-document YAML Talos accepts (`---` between documents, 4-space indent like talosctl).
    pub fn to_yaml(&self) -> Result<zeroize::Zeroizing<String>, ConfigError> {
        let mut out = zeroize::Zeroizing::new(String::new());
        for (i, doc) in self.documents.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&to_yaml_document(doc)?);
        }
        Ok(out)
    }

    /// The same config with every secret masked (for plan diffs and `talos config`).
    pub fn redacted(&self) -> Self {
        Self {
            documents: self.documents.iter().map(redact::redact_document).collect(),
            patched: None,
        }
    }

    /// Static addresses from the `LinkConfig` documents: `(link, address, prefix)` in document order
    /// (what a node serves on once the config is applied).
    pub fn link_addresses(&self) -> Vec<(String, IpAddr, u8)> {
        let mut out = Vec::new();
        for doc in self
            .documents
            .iter()
            .filter(|d| patch::doc_kind(d) == "LinkConfig")
        {
            let link = patch::doc_name(doc).unwrap_or_default().to_string();
            let addresses = doc
                .get("addresses")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for a in addresses {
                let parsed = a
                    .get("address")
                    .and_then(Value::as_str)
                    .and_then(|s| s.split_once('/'))
                    .and_then(|(ip, prefix)| Some((ip.parse().ok()?, prefix.parse().ok()?)));
                if let Some((ip, prefix)) = parsed {
                    out.push((link.clone(), ip, prefix));
                }
            }
        }
        out
    }

    /// Find a document by kind (`v1alpha1` for the legacy document) and optional name.
    pub fn document(&self, kind: &str, name: Option<&str>) -> Option<&Value> {
        self.documents.iter().find(|d| {
            patch::doc_kind(d) == kind && name.is_none_or(|n| patch::doc_name(d) == Some(n))
        })
    }
}

/// Write one document as YAML, 4-space indent, long single-line strings kept on one line.
pub(crate) fn to_yaml_document(doc: &Value) -> Result<String, ConfigError> {
    let options = serde_saphyr::ser_options! {
        indent_step: 4,
        compact_list_indent: false,
        folded_wrap_chars: usize::MAX / 2,
        min_fold_chars: usize::MAX / 2,
    };
    serde_saphyr::to_string_with_options(doc, options).map_err(|e| ConfigError::Yaml(e.to_string()))
}

/// Why a config received for applying is refused (what a Talos node checks before accepting it).
#[derive(Debug, thiserror::Error)]
pub enum ApplyCheckError {
    #[error(transparent)]
    Parse(#[from] ConfigError),
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// Check a multi-document config as a node would before applying it: it parses, every document matches
/// the schema of its kind (unknown keys are refused), and the Talos rules hold.
pub fn check_for_apply(
    text: &str,
    schema: &schema::TalosSchema,
) -> Result<RenderedConfig, ApplyCheckError> {
    let config = RenderedConfig::from_yaml(text)?;
    schema.validate(config.documents())?;
    rules::check_documents(config.documents())?;
    Ok(config)
}

/// Render the node's machine configuration: generated documents, then the patches, then the rule checks.
pub fn render(
    input: &MachineConfigInput,
    bundle: &SecretsBundle,
) -> Result<RenderedConfig, ConfigError> {
    let rendered = render_unchecked(input, bundle)?;
    rules::check_documents(&rendered.documents)?;
    Ok(rendered)
}

/// [`render`] without the Talos rule checks on the patched result, for callers that check the schema first
/// (a schema error can name the patch line; a rule error cannot) and then call [`rules::check_documents`].
pub fn render_unchecked(
    input: &MachineConfigInput,
    bundle: &SecretsBundle,
) -> Result<RenderedConfig, ConfigError> {
    rules::check_input(input)?;
    let mut documents = documents::generate(input, bundle)?;
    let mut patched = None;
    if !input.patches.is_empty() {
        use crate::configpatcher::{Config, JsonTarget};
        // The types of the release the patches were read for (they are all read for the node's release).
        let registry = input.patches[0].registry;
        let config =
            Config::from_json(&documents, "rendered config", registry).map_err(PatchError::from)?;
        let patches: Vec<_> = input.patches.iter().map(|p| p.patch.clone()).collect();
        let config = config
            .apply(&patches, JsonTarget::Legacy)
            .map_err(PatchError::from)?;
        documents = config.to_json();
        patched = Some(config);
    }
    Ok(RenderedConfig { documents, patched })
}
