//! The commented `homelab.yaml` that `homelabctl init` writes, for the reference deployment by default.

use std::fmt::Write as _;

use crate::schema::MODELINE;

/// The values a new repository starts from. [`InitValues::reference`] is the original M710q deployment.
#[derive(Debug, Clone)]
pub struct InitValues {
    pub proxmox_endpoint: String,
    pub proxmox_node: String,
    pub token_id: String,
    /// A SHA-256 pin for the Proxmox certificate, when known.
    pub fingerprint: Option<String>,
    pub factory: String,
    pub cluster_name: String,
    pub node_name: String,
    pub vm_id: u32,
    pub mac: String,
    pub address: String,
    pub gateway: String,
    pub nameservers: Vec<String>,
    /// Where to reach the node in maintenance mode, when the guest agent may not tell.
    pub maintenance_address: Option<String>,
    pub repository_url: String,
    pub nfs_server: String,
    pub nfs_export: String,
}

impl InitValues {
    /// The original system: one Lenovo M710q running Proxmox, VM BC:24:11:CA:FE:01 → 192.168.20.100,
    /// NFS on nas.home.
    pub fn reference() -> Self {
        Self {
            proxmox_endpoint: "https://192.168.20.10:8006".into(),
            proxmox_node: "pve".into(),
            token_id: "homelabctl@pve!provision".into(),
            fingerprint: None,
            factory: "https://factory.talos.dev".into(),
            cluster_name: "homelab".into(),
            node_name: "talos-cp-01".into(),
            vm_id: 100,
            mac: "BC:24:11:CA:FE:01".into(),
            address: "192.168.20.100/24".into(),
            gateway: "192.168.20.1".into(),
            nameservers: vec!["192.168.20.1".into()],
            maintenance_address: None,
            repository_url: "ssh://git@github.com/OWNER/homelab.git".into(),
            nfs_server: "nas.home".into(),
            nfs_export: "/volume1/kubernetes".into(),
        }
    }
}

/// Renders the commented configuration.
pub fn homelab_yaml(v: &InitValues) -> String {
    let mut out = String::new();
    let tls = match &v.fingerprint {
        Some(fp) => format!("  tls:\n    fingerprint: \"{fp}\"\n"),
        None => "  # How to trust the Proxmox certificate (default: the system's roots). Pin it with\n  \
                 # the SHA-256 fingerprint shown under Datacenter → node → System → Certificates:\n  \
                 # tls:\n  #   fingerprint: \"AB:CD:…\"\n"
            .to_string(),
    };
    let maintenance = v
        .maintenance_address
        .as_ref()
        .map(|a| format!("    # Where the node answers in maintenance mode (its DHCP address).\n    maintenance_address: {a}\n"))
        .unwrap_or_default();
    let nameservers = v.nameservers.join(", ");
    let _ = write!(
        out,
        r#"{MODELINE}
# homelab.yaml — the whole homelab in one file. Check it with `homelabctl validate`;
# see every key with `homelabctl schema`. Secrets never go here: they live in secrets.enc.yaml.

proxmox:
  endpoint: {endpoint}
  node: {node}
  # API token id; create it with: pveum user token add homelabctl@pve provision --privsep 0
  # and put its secret in secrets.enc.yaml (`homelabctl sops edit secrets.enc.yaml`).
  token_id: "{token_id}"
{tls}  iso_storage: local

image:
  factory: {factory}
  talos_version: v1.12.4
  # nocloud or metal; the ISO and the installer always use the same platform.
  platform: nocloud
  secureboot: true
  extensions:
    - siderolabs/qemu-guest-agent
    - siderolabs/nfs-utils

cluster:
  name: {cluster}
  # Kubernetes version: defaults to the one Talos ships (1.35.0 for Talos 1.12).
  kubernetes_version: 1.35.0
  pod_subnets: [10.244.0.0/16]
  service_subnets: [10.96.0.0/12]
  # Your own Talos config patches (strategic merge or JSON6902; a file path or inline), applied after
  # rendering in the order cluster.patches, cluster.role_patches (controlplane, worker), nodes[].patches.
  patches: []

nodes:
  - name: {node_name}
    role: controlplane
    vm_id: {vm_id}
    cores: 4
    memory: 8GiB
    disk:
      size: 64GiB
      storage: local-lvm
    network:
      bridge: vmbr0
      # Fixed MAC: reserve {address_bare} for it in your DHCP server, as in the original.
      mac: "{mac}"
      address: {address}
      gateway: {gateway}
      nameservers: [{nameservers}]
    install_disk: /dev/sda
    # LUKS2 for STATE and EPHEMERAL, keys sealed by the VM's TPM 2.0 (needs SecureBoot).
    encryption: tpm
{maintenance}
gitops:
  path: kubernetes
  repository:
    url: {repo}
    branch: main
  nfs:
    server: {nfs_server}
    export: {nfs_export}
"#,
        endpoint = v.proxmox_endpoint,
        node = v.proxmox_node,
        token_id = v.token_id,
        factory = v.factory,
        cluster = v.cluster_name,
        node_name = v.node_name,
        vm_id = v.vm_id,
        mac = v.mac,
        address = v.address,
        address_bare = v.address.split('/').next().unwrap_or(&v.address),
        gateway = v.gateway,
        repo = v.repository_url,
        nfs_server = v.nfs_server,
        nfs_export = v.nfs_export,
    );
    out
}

/// `.sops.yaml` with the original's creation rule, encrypting to `recipients` (age public keys).
pub fn sops_yaml(recipients: &[String]) -> String {
    format!(
        "# SOPS creation rules: every *.enc.yaml / *.enc.json file is encrypted to these age keys.\n\
         creation_rules:\n  - path_regex: \\.enc\\.(json|yaml)$\n    age: >-\n      {}\n",
        recipients.join(",\n      ")
    )
}

/// `.gitignore` entries that keep secrets and local state out of git.
pub const GITIGNORE: &str = "# homelabctl: never commit these\n.age-key.txt\n/talosconfig\n/kubeconfig\n/.homelab/\n\
     # etcd snapshots (age-encrypted, but large and full of the cluster's Secrets): keep them off git\n/backups/\n";
