//! `homelabctl import`: adopt a running Talos-on-Proxmox cluster. Reads each node's running machine config
//! over apid (COSI, with an os:admin talosconfig) or from files, the secrets bundle from a control plane's
//! config, and the VMs from Proxmox by the MAC the config names; writes homelab.yaml, the bundle
//! SOPS-encrypted, the patches that keep what homelab.yaml cannot say, and import-report.md. A node whose
//! patched render equals its running config is recorded in the journal as running it, so `plan` shows no
//! change for it.

mod map;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use homelab_apid::{ApidClient, ClientCredentials};
use homelab_engine::desired::ConfigRenderer as _;
use homelab_engine::journal::{self, AppliedConfig, Journal};
use homelab_engine::talos_render::TalosRenderer;
use homelab_fs::Mode;
use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust};
use homelab_talos::factory::Schematic;
use homelab_talos::import::diff::{self, ConfigDiff};
use homelab_talos::import::facts::{self, NodeFacts};
use homelab_talos::machine_config::{RenderedConfig, Role};
use homelab_talos::talosconfig::Talosconfig;
use miette::{IntoDiagnostic, WrapErr, miette};
use secrecy::SecretString;
use serde_json::Value;
use zeroize::Zeroizing;

use self::map::{Draft, DraftNode, ProxmoxSide, VmFound};
use super::Global;
use crate::ExitStatus;
use crate::failure::failure;

/// apid's port.
const APID_PORT: u16 = 50000;
/// The report of what could not be mapped, next to homelab.yaml.
const REPORT_FILE: &str = "import-report.md";
/// Official extensions a schematic is matched against (every combination is tried).
const KNOWN_EXTENSIONS: &[&str] = &[
    "siderolabs/qemu-guest-agent",
    "siderolabs/nfs-utils",
    "siderolabs/iscsi-tools",
    "siderolabs/util-linux-tools",
    "siderolabs/intel-ucode",
    "siderolabs/amd-ucode",
    "siderolabs/i915",
    "siderolabs/zfs",
    "siderolabs/drbd",
    "siderolabs/tailscale",
];

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Directory to write homelab.yaml, talos-secrets.enc.yaml, the patches and import-report.md into
    /// (created if missing). An existing homelab.yaml is never overwritten.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A talosconfig whose client certificate has the os:admin role (the machine config holds the
    /// cluster's keys: Talos serves it to os:admin only). Read each --node's running config with it.
    #[arg(long, value_name = "FILE")]
    pub from_talosconfig: Option<PathBuf>,
    /// A node's apid address (IP or IP:PORT, port 50000 by default); repeat for every node.
    #[arg(long = "node", value_name = "ADDRESS")]
    pub nodes: Vec<String>,
    /// A node's machine config file (controlplane.yaml, worker.yaml, `talosctl get mc -o yaml`'s spec);
    /// repeat for every node. With or instead of --from-talosconfig.
    #[arg(long = "from-config", value_name = "FILE")]
    pub from_configs: Vec<PathBuf>,
    /// The Proxmox API, `https://HOST:8006`. The token secret is read from HOMELAB_PROXMOX_TOKEN_SECRET.
    #[arg(long, value_name = "URL")]
    pub proxmox_endpoint: String,
    /// The API token id, `USER@REALM!TOKENID` (VM.Audit and Sys.Audit are enough to import).
    #[arg(long, value_name = "ID")]
    pub proxmox_token_id: String,
    /// The Proxmox host written as `proxmox.node`; VMs are looked for on every host of the cluster.
    #[arg(long, value_name = "NAME", default_value = "pve")]
    pub proxmox_node: String,
    /// Pin the Proxmox certificate by its SHA-256 fingerprint (`AB:CD:…`).
    #[arg(long, value_name = "SHA256", conflicts_with = "proxmox_insecure")]
    pub proxmox_fingerprint: Option<String>,
    /// Do not verify the Proxmox certificate (written to homelab.yaml as tls.insecure).
    #[arg(long)]
    pub proxmox_insecure: bool,
    /// The Image Factory URL (default: `https://` and the registry of the nodes' installer image).
    #[arg(long, value_name = "URL")]
    pub factory: Option<String>,
    /// Encrypt the secrets to this age public key when DIR has no .sops.yaml (repeatable); without it a
    /// repository-local identity (.age-key.txt) is generated, as `init` does.
    #[arg(long = "age-recipient", value_name = "AGE_PUBLIC_KEY")]
    pub age_recipients: Vec<String>,
}

/// One node's running config and where it was read from.
struct Source {
    /// `node 127.0.0.1:50000` or the file name.
    label: String,
    /// The address it was read from (`--node`), when read over apid.
    address: Option<std::net::IpAddr>,
    config: Zeroizing<String>,
    documents: Vec<Value>,
    facts: NodeFacts,
}

pub fn run(_global: &Global, args: &ImportArgs) -> miette::Result<ExitStatus> {
    let homelab_yaml = args.dir.join(homelab_config::FILE_NAME);
    if homelab_yaml.exists() {
        return Err(miette!(
            help =
                "import into an empty directory (or remove that homelab.yaml); nothing was written",
            "{} exists: import never overwrites it",
            homelab_yaml.display()
        ));
    }
    if args.from_talosconfig.is_none() && args.from_configs.is_empty() {
        return Err(miette!(
            help = "pass --from-talosconfig FILE with --node ADDRESS for every node, or --from-config FILE per node",
            "nothing to import from"
        ));
    }
    if args.from_talosconfig.is_some() && args.nodes.is_empty() {
        return Err(miette!(
            help = "pass --node ADDRESS (the node's IP) once per node of the cluster",
            "--from-talosconfig needs the nodes to read"
        ));
    }
    let token = std::env::var(homelab_repo::TOKEN_ENV)
        .ok()
        .map(|v| Zeroizing::new(v.trim().to_string()))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            miette!(
                help = format!(
                    "export {}=<the token's secret> (it is stored encrypted in secrets.enc.yaml)",
                    homelab_repo::TOKEN_ENV
                ),
                "no Proxmox token secret"
            )
        })?;
    let runtime = super::provision::runtime()?;
    let mut sources = Vec::new();
    for file in &args.from_configs {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read {}", file.display()))?,
        );
        sources.push(source(file.display().to_string(), None, text)?);
    }
    if let Some(talosconfig) = &args.from_talosconfig {
        let creds = credentials(talosconfig)?;
        for node in &args.nodes {
            let (at, text) = runtime.block_on(running_config(node, &creds))?;
            sources.push(source(format!("node {node}"), Some(at.ip()), text)?);
        }
    }
    let proxmox = ProxmoxSide {
        endpoint: args.proxmox_endpoint.clone(),
        node: args.proxmox_node.clone(),
        token_id: args.proxmox_token_id.clone(),
        fingerprint: args.proxmox_fingerprint.clone(),
        insecure: args.proxmox_insecure,
    };
    // The guest agent is asked only when a config selects its NIC otherwise than by MAC.
    let by_agent = sources.iter().any(|s| s.facts.mac.is_none());
    let vms = runtime.block_on(list_vms(&proxmox, &token, by_agent))?;
    adopt(args, proxmox, &sources, &vms, &token)
}

/// Parses one running config.
fn source(
    label: String,
    address: Option<std::net::IpAddr>,
    config: Zeroizing<String>,
) -> miette::Result<Source> {
    let facts = facts::node_facts(&config).map_err(|e| {
        miette!(
            help = "pass a Talos machine config (the multi-document YAML a node runs)",
            "{label}: {e}"
        )
    })?;
    let documents = RenderedConfig::from_yaml(&config)
        .map_err(|e| miette!("{label}: {e}"))?
        .documents()
        .to_vec();
    Ok(Source {
        label,
        address,
        config,
        documents,
        facts,
    })
}

/// The talosconfig's current context as mutual-TLS credentials.
fn credentials(path: &Path) -> miette::Result<ClientCredentials> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", path.display()))?,
    );
    let bad = |e: String| {
        miette!(
            help = "pass the talosconfig talosctl uses for this cluster (an os:admin one)",
            "{}: {e}",
            path.display()
        )
    };
    let config = Talosconfig::from_yaml(&text).map_err(|e| bad(e.to_string()))?;
    let context = config.current().map_err(|e| bad(e.to_string()))?;
    let decode = |what: &str, b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(Zeroizing::new)
            .map_err(|e| bad(format!("{what} is not base64: {e}")))
    };
    let ca = decode("ca", &context.ca)?;
    let crt = decode("crt", &context.crt)?;
    let key = decode("key", context.key.expose())?;
    ClientCredentials::from_pem(&ca, &crt, &key).map_err(|e| bad(e.to_string()))
}

/// The machine config `node` runs, over apid, and the address it was read from.
async fn running_config(
    node: &str,
    creds: &ClientCredentials,
) -> miette::Result<(SocketAddr, Zeroizing<String>)> {
    let at: SocketAddr = node
        .parse()
        .or_else(|_| {
            node.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, APID_PORT))
        })
        .map_err(|_| {
            miette!(
                help = "pass the node's IP address, optionally with apid's port (10.0.0.5 or 10.0.0.5:50000)",
                "--node {node}: not an IP address"
            )
        })?;
    let unreachable = |e: homelab_apid::ApidError| {
        miette!(
            help = format!(
                "check that {at} is the node's apid address and reachable from here, and that the talosconfig \
                 is this cluster's with the os:admin role (`talosctl -n {} get machineconfig` should work); \
                 or pass its config with --from-config FILE",
                at.ip()
            ),
            "cannot read the machine config of node {node}: {e}"
        )
    };
    let mut client = ApidClient::connect(at, creds).await.map_err(unreachable)?;
    let bytes = client.running_machine_config().await.map_err(unreachable)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| miette!("node {node}: its machine config is not UTF-8 text"))?;
    Ok((at, Zeroizing::new(text)))
}

/// Every VM of every Proxmox host, with its config as the engine reads it (and, with `agent`, the addresses
/// a running VM's guest agent reports; a VM without an answering agent reports none).
async fn list_vms(proxmox: &ProxmoxSide, token: &str, agent: bool) -> miette::Result<Vec<VmFound>> {
    let token = ApiToken::new(
        proxmox.token_id.clone(),
        SecretString::from(token.to_string()),
    )
    .map_err(|e| miette!(help = "USER@REALM!TOKENID", "--proxmox-token-id: {e}"))?;
    let mut options = ClientOptions::new(proxmox.endpoint.clone(), token);
    options.trust = match (&proxmox.fingerprint, proxmox.insecure) {
        (Some(fp), _) => TlsTrust::Fingerprint(
            Fingerprint::parse(fp).map_err(|e| miette!("--proxmox-fingerprint: {e}"))?,
        ),
        (None, true) => TlsTrust::Insecure,
        (None, false) => TlsTrust::SystemRoots,
    };
    let client = Client::new(options).map_err(|e| miette!("Proxmox client: {e}"))?;
    let failed = |e: homelab_proxmox::Error| {
        miette!(
            help = "check --proxmox-endpoint, the certificate (--proxmox-fingerprint), the token and its \
                    VM.Audit/Sys.Audit privileges (`homelabctl doctor` checks them once homelab.yaml exists)",
            "cannot list the VMs in Proxmox at {}: {e}",
            proxmox.endpoint
        )
    };
    let mut out = Vec::new();
    for host in client.nodes().await.map_err(failed)? {
        for entry in client.list_vms(&host.node).await.map_err(failed)? {
            let Ok(vm_id) = u32::try_from(entry.vmid) else {
                continue;
            };
            let config = client.vm_config(&host.node, vm_id).await.map_err(failed)?;
            let running = entry.status == "running";
            let live = homelab_engine::adapters::proxmox::vm_live(&config, running);
            let agent_addresses = if agent && running {
                client
                    .agent_network_interfaces(&host.node, vm_id)
                    .await
                    .unwrap_or_default()
                    .iter()
                    // Not the loopback interface (its all-zero MAC), whose 127.0.0.1 every guest has.
                    .filter(|i| {
                        i.hardware_address
                            .as_deref()
                            .is_some_and(|m| m.chars().any(|c| c.is_ascii_hexdigit() && c != '0'))
                    })
                    .flat_map(|i| &i.ip_addresses)
                    .filter_map(|a| a.ip_address.parse().ok())
                    .collect()
            } else {
                Vec::new()
            };
            out.push(VmFound {
                agent_addresses,
                host: host.node.clone(),
                vm_id,
                live,
                disk_storage: config.get("scsi0").and_then(|d| map::volume_storage(&d)),
            });
        }
    }
    Ok(out)
}

/// The extensions whose schematic has this id (the id is the hash of the sorted list), among the common
/// official ones.
fn extensions_of(schematic: &str) -> Option<Vec<String>> {
    let n = KNOWN_EXTENSIONS.len();
    (0u32..(1 << n)).find_map(|mask| {
        let set: Vec<String> = KNOWN_EXTENSIONS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, e)| (*e).to_string())
            .collect();
        (Schematic::with_extensions(set.iter().cloned()).id().ok()? == schematic).then_some(set)
    })
}

/// Where a patch applies: to every node, to a role, or to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Cluster,
    Role(Role),
    Node(usize),
}

impl Scope {
    fn stem(&self, draft: &Draft) -> String {
        match self {
            Scope::Cluster => "cluster".into(),
            Scope::Role(Role::ControlPlane) => "controlplane".into(),
            Scope::Role(Role::Worker) => "worker".into(),
            Scope::Node(i) => draft.nodes.get(*i).map(DraftNode::name).unwrap_or_default(),
        }
    }
}

/// The scopes the node diffs are written at: one cluster patch when every node (of several) differs the
/// same way, else one per role when every node of a role (of several) does, else one per node.
fn scopes(draft: &Draft, diffs: &[ConfigDiff]) -> Vec<(Scope, ConfigDiff)> {
    let nonempty: Vec<usize> = (0..diffs.len()).filter(|i| !diffs[*i].is_empty()).collect();
    if nonempty.is_empty() {
        return Vec::new();
    }
    let same = |ix: &[usize]| ix.windows(2).all(|w| diffs[w[0]] == diffs[w[1]]);
    if diffs.len() > 1 && nonempty.len() == diffs.len() && same(&nonempty) {
        return vec![(Scope::Cluster, diffs[0].clone())];
    }
    let mut out = Vec::new();
    let mut done = vec![false; diffs.len()];
    for role in [Role::ControlPlane, Role::Worker] {
        let of_role: Vec<usize> = (0..diffs.len())
            .filter(|i| draft.nodes[*i].facts.role == role)
            .collect();
        if of_role.len() > 1 && of_role.iter().all(|i| !diffs[*i].is_empty()) && same(&of_role) {
            out.push((Scope::Role(role), diffs[of_role[0]].clone()));
            for i in of_role {
                done[i] = true;
            }
        }
    }
    for i in nonempty {
        if !done[i] {
            out.push((Scope::Node(i), diffs[i].clone()));
        }
    }
    out
}

/// Writes the repository for the nodes read and the VMs found; verifies the render; reports.
fn adopt(
    args: &ImportArgs,
    proxmox: ProxmoxSide,
    sources: &[Source],
    vms: &[VmFound],
    token: &str,
) -> miette::Result<ExitStatus> {
    let dir = &args.dir;
    let mut notes: Vec<String> = Vec::new();
    // The bundle: from the first control plane's config (a worker's holds no CA keys).
    let control_plane = sources
        .iter()
        .find(|s| s.facts.role == Role::ControlPlane)
        .ok_or_else(|| {
            miette!(
                help = "add a control plane with --node (or its controlplane.yaml with --from-config)",
                "no control plane among the nodes read: the secrets bundle comes from a control plane's config"
            )
        })?;
    let bundle =
        homelab_talos::import::bundle_from_machine_config(&control_plane.config).map_err(|e| {
            miette!(
                "{}: cannot recover the secrets bundle: {e}",
                control_plane.label
            )
        })?;
    let mut nodes = Vec::new();
    for s in sources {
        let vm = match s.facts.mac.as_deref() {
            Some(mac) => map::vm_by_mac(vms, mac).ok_or_else(|| {
                miette!(
                    help = "check that the VM runs on this Proxmox cluster and that the token may read it (VM.Audit)",
                    "{}: no VM in Proxmox has net0 with MAC {mac}",
                    s.label
                )
            })?,
            None => {
                // No MAC in the config (a NIC selected by name): the guest agent's address finds the VM.
                let address = s.facts.address.map(|(ip, _)| ip).or(s.address);
                let found = address.and_then(|ip| map::vm_by_address(vms, ip));
                let vm = found.ok_or_else(|| {
                    miette!(
                        help = "its config selects no NIC by MAC and no VM's guest agent reports its address; \
                                start the qemu-guest-agent extension, or select the NIC by MAC in its config",
                        "{}: cannot find its VM in Proxmox",
                        s.label
                    )
                })?;
                notes.push(format!(
                    "{}: its config selects no NIC by MAC; VM {} was found by the address its guest agent reports, \
                     and homelab.yaml's NIC selector (by MAC) is kept out by a patch",
                    s.label, vm.vm_id
                ));
                vm
            }
        };
        let node = DraftNode {
            facts: s.facts.clone(),
            vm: vm.clone(),
            patches: Vec::new(),
        };
        map::required(&node).map_err(|e| miette!("{}: {e}", s.label))?;
        notes.extend(map::vm_notes(&node));
        nodes.push(node);
    }
    let installer = control_plane.facts.installer.clone().ok_or_else(|| {
        miette!(
            help = "homelab.yaml describes Image Factory installers (REGISTRY/PLATFORM-installer[-secureboot]/SCHEMATIC:VERSION)",
            "{}: machine.install.image `{}` is not an Image Factory installer",
            control_plane.label,
            control_plane.facts.install_image.as_deref().unwrap_or("")
        )
    })?;
    let extensions = match extensions_of(&installer.schematic) {
        Some(e) => e,
        None => {
            notes.push(format!(
                "schematic {} is not a combination of the common official extensions: image.extensions is left at \
                 the defaults, so plan will show an upgrade to their schematic; set image.extensions to the \
                 schematic's (`curl {}/schematics/{}`)",
                installer.schematic,
                installer.registry,
                installer.schematic
            ));
            homelab_config::defaults::EXTENSIONS
                .iter()
                .map(|e| (*e).to_string())
                .collect()
        }
    };
    let factory = args
        .factory
        .clone()
        .unwrap_or_else(|| format!("https://{}", installer.registry));
    let iso_storage = nodes
        .iter()
        .find_map(|n| n.vm.live.iso_volume.as_deref())
        .and_then(map::volume_storage)
        .unwrap_or_else(|| homelab_config::defaults::ISO_STORAGE.to_string());
    for n in &nodes {
        if n.facts.installer.as_ref() != Some(&installer) {
            notes.push(format!(
                "node {}: runs installer {} while the first control plane runs another; plan will show its upgrade",
                n.name(),
                n.facts.install_image.as_deref().unwrap_or("?")
            ));
        }
    }
    let mut draft = Draft {
        proxmox,
        iso_storage,
        factory,
        installer,
        extensions,
        nodes,
        cluster_patches: Vec::new(),
        controlplane_patches: Vec::new(),
        worker_patches: Vec::new(),
    };

    // Render homelab.yaml without patches; what still differs becomes patches.
    let unpatched = draft.homelab_yaml();
    let config = homelab_config::parse(&unpatched, None)
        .map_err(|e| miette!("the homelab.yaml written from the cluster does not validate: {e}"))?
        .config;
    let renderer = TalosRenderer {
        bundle: bundle.clone(),
        base_dir: dir.clone(),
    };
    let mut diffs = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let node = &config.nodes[i];
        let image = s.facts.install_image.clone().unwrap_or_default();
        let rendered = renderer.render(&config, node, &image).map_err(|e| {
            miette!(
                "rendering node {} from the imported homelab.yaml: {e}",
                node.name
            )
        })?;
        let docs = parsed(&rendered.config)?;
        diffs.push(diff::config_diff(&docs, &s.documents));
    }

    // From here on files are written: the repository's encryption first, so no secret is ever plain.
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    encryption(dir, &args.age_recipients)?;
    let repo = homelab_repo::Repo::open(&dir.join(homelab_config::FILE_NAME)).map_err(failure)?;
    // A bundle an interrupted import wrote is kept when it is this cluster's; another one is never replaced.
    match repo.talos_bundle().map_err(failure)? {
        Some(existing) if existing == bundle => {}
        Some(_) => {
            return Err(miette!(
                help = "import into an empty directory; that bundle belongs to another cluster",
                "{} holds another cluster's secrets bundle",
                repo.path(homelab_repo::TALOS_SECRETS_FILE).display()
            ));
        }
        None => {
            let bundle_yaml = bundle.to_yaml().map_err(failure)?;
            repo.import_talos_bundle(&bundle_yaml, false)
                .map_err(failure)?;
            outln!(
                "wrote {} (the cluster's secrets bundle, encrypted)",
                repo.path(homelab_repo::TALOS_SECRETS_FILE).display()
            )?;
        }
    }
    if !repo.path(homelab_repo::SECRETS_FILE).exists() {
        repo.set_proxmox_token_secret(token).map_err(failure)?;
        outln!(
            "wrote {} (the Proxmox token secret, encrypted)",
            repo.path(homelab_repo::SECRETS_FILE).display()
        )?;
    }

    let mut patch_lines = Vec::new();
    let mut withheld = Vec::new();
    for (scope, d) in scopes(&draft, &diffs) {
        let stem = scope.stem(&draft);
        if d.holds_secrets() {
            withheld.push(format!(
                "{stem}: differs in secret fields ({}); not written as a plain patch: put them in by hand \
                 (they are the node's own keys or tokens, not the bundle's)",
                d.fields.join(", ")
            ));
            continue;
        }
        let mut files = Vec::new();
        if !d.deletes.is_empty() {
            files.push((format!("patches/{stem}-delete.yaml"), &d.deletes));
        }
        if !d.sets.is_empty() {
            files.push((format!("patches/{stem}.yaml"), &d.sets));
        }
        for (rel, docs) in &files {
            let text = diff::patch_yaml(docs).map_err(failure)?;
            let path = dir.join(rel);
            std::fs::create_dir_all(dir.join("patches")).into_diagnostic()?;
            let written = homelab_fs::write_new(&path, text.as_bytes(), Mode::Exact(0o644))
                .map_err(failure)?;
            // The same patch an interrupted import wrote is fine; anything else there is not ours.
            if !written && std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                return Err(miette!(
                    help = "import into an empty directory; homelab.yaml was not written",
                    "{} exists: import never overwrites it",
                    path.display()
                ));
            }
            outln!("wrote {}", path.display())?;
        }
        let rels: Vec<String> = files.iter().map(|(r, _)| r.clone()).collect();
        patch_lines.push(format!(
            "- {} ({stem}): {}",
            rels.join(", "),
            d.fields.join(", ")
        ));
        match scope {
            Scope::Cluster => draft.cluster_patches.extend(rels),
            Scope::Role(Role::ControlPlane) => draft.controlplane_patches.extend(rels),
            Scope::Role(Role::Worker) => draft.worker_patches.extend(rels),
            Scope::Node(i) => draft.nodes[i].patches.extend(rels),
        }
    }

    let text = draft.homelab_yaml();
    let path = dir.join(homelab_config::FILE_NAME);
    if !homelab_fs::write_new(&path, text.as_bytes(), Mode::Exact(0o644)).map_err(failure)? {
        return Err(miette!(
            "{} appeared meanwhile: import never overwrites it",
            path.display()
        ));
    }
    outln!("wrote {}", path.display())?;
    let schema = dir.join("homelab.schema.json");
    if !schema.exists() {
        let _ = homelab_fs::write_new(
            &schema,
            (super::schema::schema_text() + "\n").as_bytes(),
            Mode::Exact(0o644),
        );
    }

    // Check what was written: each node's patched render must be the config it runs.
    let config = super::provision::load_config(&path)?;
    let mut journal = Journal::load(&dir.join(".homelab"));
    let mut unequal = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let node = &config.nodes[i];
        let image = s.facts.install_image.clone().unwrap_or_default();
        let rendered = renderer
            .render(&config, node, &image)
            .map_err(|e| miette!("rendering node {} with its patches: {e}", node.name))?;
        if diff::same_documents(&parsed(&rendered.config)?, &s.documents) {
            journal.machine_configs.insert(
                node.name.clone(),
                AppliedConfig {
                    sha256: journal::digest(&rendered.config),
                    redacted: rendered.redacted.clone(),
                    installer_image: Some(image),
                },
            );
        } else {
            let left = diff::config_diff(&parsed(&rendered.config)?, &s.documents);
            unequal.push(format!(
                "node {}: the patched render still differs from the running config in {}; plan will show \
                 its config as an update",
                node.name,
                left.fields.join(", ")
            ));
        }
    }
    journal
        .save(&dir.join(".homelab"))
        .into_diagnostic()
        .wrap_err("cannot write the journal under .homelab/")?;

    let report = report(&draft, &patch_lines, &notes, &withheld, &unequal);
    let report_path = dir.join(REPORT_FILE);
    homelab_fs::write(&report_path, report.as_bytes(), Mode::KeepOr(0o644)).map_err(failure)?;
    outln!("wrote {}", report_path.display())?;
    let problems = notes.len() + withheld.len() + unequal.len();
    if problems == 0 {
        outln!(
            "imported {} node(s); everything was mapped: `homelabctl --config {} plan` should show no change",
            draft.nodes.len(),
            path.display()
        )?;
    } else {
        outln!(
            "imported {} node(s); {problems} thing(s) could not be mapped: read {} before `plan`",
            draft.nodes.len(),
            report_path.display()
        )?;
    }
    Ok(ExitStatus::Success)
}

/// A rendered config's documents, parsed the way the running config is.
fn parsed(bytes: &[u8]) -> miette::Result<Vec<Value>> {
    let text = std::str::from_utf8(bytes).map_err(|_| miette!("a rendered config is not UTF-8"))?;
    Ok(RenderedConfig::from_yaml(text)
        .map_err(|e| miette!("a rendered config does not parse: {e}"))?
        .documents()
        .to_vec())
}

/// `.sops.yaml` (and an age identity, as `init` makes them) when DIR has none: the secrets are encrypted
/// to its recipients.
fn encryption(dir: &Path, recipients: &[String]) -> miette::Result<()> {
    let sops = dir.join(".sops.yaml");
    if sops.exists() {
        return Ok(());
    }
    let (recipients, identity) = super::init::recipients(dir, recipients)?;
    if let Some(identity) = identity {
        let path = dir.join(super::init::AGE_KEY_FILE);
        homelab_fs::write_new(&path, identity.as_bytes(), Mode::Private).map_err(failure)?;
        outln!(
            "generated an age identity in {} (gitignored; back it up: it decrypts every secret)",
            path.display()
        )?;
    }
    homelab_fs::write_new(
        &sops,
        homelab_config::template::sops_yaml(&recipients).as_bytes(),
        Mode::Exact(0o644),
    )
    .map_err(failure)?;
    let gitignore = dir.join(".gitignore");
    if !gitignore.exists() {
        homelab_fs::write_new(
            &gitignore,
            homelab_config::template::GITIGNORE.as_bytes(),
            Mode::Exact(0o644),
        )
        .map_err(failure)?;
    }
    outln!(
        "wrote {} (secrets are encrypted to: {})",
        sops.display(),
        recipients.join(", ")
    )?;
    Ok(())
}

/// import-report.md: what was mapped where, the patches, and everything that was not mapped.
fn report(
    draft: &Draft,
    patches: &[String],
    notes: &[String],
    withheld: &[String],
    unequal: &[String],
) -> String {
    let mut out = String::from(
        "# Import report\n\n`homelabctl import` wrote homelab.yaml from the running cluster.\n\n## Nodes\n\n",
    );
    let mut by_host: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for n in &draft.nodes {
        by_host
            .entry(n.vm.host.as_str())
            .or_default()
            .push(n.name());
        let address = n
            .facts
            .address
            .map(|(ip, p)| format!("{ip}/{p}"))
            .unwrap_or_default();
        let role = match n.facts.role {
            Role::ControlPlane => "controlplane",
            Role::Worker => "worker",
        };
        out.push_str(&format!(
            "- {} ({role}): VM {} on {}, {address}, MAC {}\n",
            n.name(),
            n.vm.vm_id,
            n.vm.host,
            n.vm.live.mac.as_deref().unwrap_or("?")
        ));
    }
    out.push_str("\n## Patches\n\nWhat homelab.yaml cannot say, kept as Talos config patches so nothing is lost:\n\n");
    if patches.is_empty() {
        out.push_str("None: the render of homelab.yaml is the running config.\n");
    } else {
        for p in patches {
            out.push_str(p);
            out.push('\n');
        }
    }
    out.push_str("\n## Not mapped\n\n");
    let all: Vec<&String> = notes.iter().chain(withheld).chain(unequal).collect();
    if all.is_empty() {
        out.push_str("Nothing: `homelabctl plan` should show no change.\n");
    } else {
        for n in all {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out.push_str("\nNot read by import: the GitOps tree (`gitops:`), bootstrap_timeout and maintenance addresses; add them by hand if you use them.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schematic_of_common_extensions_is_mapped_back() {
        let id =
            Schematic::with_extensions(["siderolabs/nfs-utils", "siderolabs/qemu-guest-agent"])
                .id()
                .expect("id");
        assert_eq!(
            extensions_of(&id),
            Some(vec![
                "siderolabs/qemu-guest-agent".to_string(),
                "siderolabs/nfs-utils".to_string()
            ])
        );
        let none = Schematic::with_extensions(Vec::<String>::new())
            .id()
            .expect("id");
        assert_eq!(extensions_of(&none), Some(Vec::new()));
        assert_eq!(extensions_of(&"0".repeat(64)), None);
    }
}
