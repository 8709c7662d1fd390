//! Reads the spanned YAML tree into the typed [`Config`], collecting every unknown key and wrong type.
//!
//! A field that cannot be read gets a placeholder and its path is remembered as failed, so reading goes on
//! and the semantic checks that follow can skip what is already reported.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::diagnostic::{Diagnostic, Span};
use crate::model::{
    Cluster, Config, Disk, Encryption, Gitops, Image, Nfs, Node as NodeConfig, NodeNetwork,
    Platform, Proxmox, Repository, Role, Tls, defaults,
};
use crate::net::{Cidr, Mac};
use crate::suggest::did_you_mean;
use crate::version::{Version, default_kubernetes_for};
use crate::yaml::{Node, Value};

pub const TOP_KEYS: &[&str] = &["proxmox", "image", "cluster", "nodes", "gitops"];
pub const PROXMOX_KEYS: &[&str] = &["endpoint", "node", "token_id", "tls", "iso_storage"];
pub const TLS_KEYS: &[&str] = &["ca_file", "fingerprint", "insecure"];
pub const IMAGE_KEYS: &[&str] = &[
    "factory",
    "talos_version",
    "platform",
    "secureboot",
    "extensions",
];
pub const CLUSTER_KEYS: &[&str] = &[
    "name",
    "endpoint",
    "kubernetes_version",
    "pod_subnets",
    "service_subnets",
    "allow_scheduling_on_control_planes",
    "vip",
    "patches",
    "role_patches",
    "bootstrap_timeout",
];
pub const NODE_KEYS: &[&str] = &[
    "name",
    "role",
    "vm_id",
    "proxmox_node",
    "cores",
    "memory",
    "disk",
    "network",
    "install_disk",
    "encryption",
    "maintenance_address",
    "patches",
];
pub const DISK_KEYS: &[&str] = &["size", "storage"];
pub const NETWORK_KEYS: &[&str] = &["bridge", "vlan", "mac", "address", "gateway", "nameservers"];
pub const GITOPS_KEYS: &[&str] = &["path", "repository", "nfs"];
pub const REPOSITORY_KEYS: &[&str] = &["url", "branch"];
pub const NFS_KEYS: &[&str] = &["server", "export"];

/// What reading produced: a config (with placeholders where fields failed), the findings so far, where each
/// field is, and which fields failed.
pub struct ReadOutcome {
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
    pub spans: HashMap<String, Span>,
    pub failed: HashSet<String>,
    /// Fields the user wrote explicitly (as opposed to defaults).
    pub present: HashSet<String>,
}

#[derive(Default)]
struct Reader {
    diagnostics: Vec<Diagnostic>,
    spans: HashMap<String, Span>,
    failed: HashSet<String>,
    present: HashSet<String>,
}

struct Map<'a> {
    path: String,
    span: Span,
    entries: &'a [(Node, Node)],
    known: &'static [&'static str],
}

impl Map<'_> {
    /// Whether an unknown key here looks like a misspelling of `key` (already reported with a suggestion).
    fn has_misspelling_of(&self, key: &str) -> bool {
        self.entries
            .iter()
            .filter_map(|(k, _)| k.as_scalar())
            .any(|k| !self.known.contains(&k) && did_you_mean(k, self.known) == Some(key))
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Reader {
    fn fail(&mut self, path: &str, diagnostic: Diagnostic) {
        self.failed.insert(path.to_string());
        self.diagnostics.push(diagnostic);
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str, hint: &str) {
        let d = Diagnostic::error(
            path,
            format!("`{path}` must be {expected}, found {}", node.kind_name()),
        )
        .at(Some(node.span))
        .with_hint(hint.to_string());
        self.fail(path, d);
    }

    fn map<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        known: &'static [&'static str],
    ) -> Option<Map<'a>> {
        let entries = match &node.value {
            Value::Mapping(entries) => entries.as_slice(),
            Value::Null => &[],
            _ => {
                let what = if path.is_empty() {
                    "the document"
                } else {
                    path
                };
                let d = Diagnostic::error(
                    path,
                    format!(
                        "{what} must be a mapping of keys to values, found {}",
                        node.kind_name()
                    ),
                )
                .at(Some(node.span))
                .with_hint(format!("expected keys: {}", known.join(", ")));
                self.fail(path, d);
                return None;
            }
        };
        for (key, _) in entries {
            let Some(name) = key.as_scalar() else {
                let d = Diagnostic::error(path, "keys must be plain names").at(Some(key.span));
                self.diagnostics.push(d);
                continue;
            };
            if !known.contains(&name) {
                let place = if path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in `{path}`")
                };
                let hint = match did_you_mean(name, known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("valid keys here: {}", known.join(", ")),
                };
                let d =
                    Diagnostic::error(join(path, name), format!("unknown key `{name}` {place}"))
                        .at(Some(key.span))
                        .with_hint(hint);
                self.diagnostics.push(d);
            }
        }
        Some(Map {
            path: path.to_string(),
            span: node.span,
            entries,
            known,
        })
    }

    /// The value of `key`, or None when absent or null (null means "use the default").
    fn field<'a>(&mut self, map: &Map<'a>, key: &str) -> Option<&'a Node> {
        let path = join(&map.path, key);
        let (_, value) = map
            .entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))?;
        self.spans.insert(path.clone(), value.span);
        if matches!(value.value, Value::Null) {
            return None;
        }
        self.present.insert(path);
        Some(value)
    }

    fn required<'a>(&mut self, map: &Map<'a>, key: &str, example: &str) -> Option<&'a Node> {
        let node = self.field(map, key);
        if node.is_none() && map.has_misspelling_of(key) {
            self.failed.insert(join(&map.path, key));
        } else if node.is_none() {
            let path = join(&map.path, key);
            let place = if map.path.is_empty() {
                "the top level".to_string()
            } else {
                format!("`{}`", map.path)
            };
            let d = Diagnostic::error(&path, format!("`{key}` is required in {place}"))
                .at(Some(self.spans.get(&path).copied().unwrap_or(map.span)))
                .with_hint(format!("add e.g. `{key}: {example}`"));
            self.fail(&path, d);
        }
        node
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.type_error(
                    node,
                    path,
                    "a string",
                    "write a single value on the same line as the key",
                );
                None
            }
        }
    }

    fn parsed<T: FromStr<Err = String>>(
        &mut self,
        node: &Node,
        path: &str,
        hint: &str,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(problem) => {
                let d = Diagnostic::error(path, format!("`{path}`: {problem}"))
                    .at(Some(node.span))
                    .with_hint(hint.to_string());
                self.fail(path, d);
                None
            }
        }
    }

    fn ip(&mut self, node: &Node, path: &str) -> Option<IpAddr> {
        let text = self.string(node, path)?;
        match text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let d = Diagnostic::error(path, format!("`{path}`: `{text}` is not an IP address"))
                    .at(Some(node.span))
                    .with_hint(
                        "write a bare IPv4 or IPv6 address, e.g. 192.168.20.1 (no prefix length)",
                    );
                self.fail(path, d);
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let parsed = match &node.value {
            Value::Scalar {
                text,
                quoted: false,
            } => text.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                let d = Diagnostic::error(
                    path,
                    format!("`{path}` is {n}, outside the allowed range {min}–{max}"),
                )
                .at(Some(node.span))
                .with_hint(format!("choose a value from {min} to {max}"));
                self.fail(path, d);
                None
            }
            None => {
                self.type_error(
                    node,
                    path,
                    "a whole number",
                    &format!("write a number from {min} to {max}, without quotes"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar {
                text,
                quoted: false,
            } if matches!(text.as_str(), "true" | "True" | "TRUE") => Some(true),
            Value::Scalar {
                text,
                quoted: false,
            } if matches!(text.as_str(), "false" | "False" | "FALSE") => Some(false),
            _ => {
                self.type_error(
                    node,
                    path,
                    "true or false",
                    "write `true` or `false` without quotes",
                );
                None
            }
        }
    }

    fn choice<'n>(&mut self, node: &Node, path: &str, names: &[&'n str]) -> Option<&'n str> {
        let text = self.string(node, path)?;
        if let Some(found) = names.iter().find(|n| **n == text) {
            return Some(found);
        }
        let hint = match did_you_mean(&text, names) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("one of: {}", names.join(", ")),
        };
        let d = Diagnostic::error(
            path,
            format!("`{path}`: `{text}` is not one of {}", names.join(", ")),
        )
        .at(Some(node.span))
        .with_hint(hint);
        self.fail(path, d);
        None
    }

    fn list<'a>(&mut self, node: &'a Node, path: &str, example: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            _ => {
                self.type_error(
                    node,
                    path,
                    "a list",
                    &format!("write a YAML list, e.g. `[{example}]`"),
                );
                None
            }
        }
    }

    fn list_of<T>(
        &mut self,
        node: &Node,
        path: &str,
        example: &str,
        mut each: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.list(node, path, example)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            self.spans.insert(item_path.clone(), item.span);
            match each(self, item, &item_path) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A size such as `8GiB`, `512MiB` or a bare number in `unit_mib` units; returns MiB.
    fn size_mib(&mut self, node: &Node, path: &str, bare_unit: &str, bare_mib: u64) -> Option<u64> {
        let Value::Scalar { text, .. } = &node.value else {
            self.type_error(node, path, "a size", "write e.g. `8GiB` or `8192MiB`");
            return None;
        };
        match parse_size_mib(text, bare_mib) {
            Some(mib) if mib > 0 => Some(mib),
            _ => {
                let d = Diagnostic::error(path, format!("`{path}`: `{text}` is not a size"))
                    .at(Some(node.span))
                    .with_hint(format!("write a number with a unit (MiB, GiB, TiB), e.g. `8GiB`; a bare number means {bare_unit}"));
                self.fail(path, d);
                None
            }
        }
    }
}

fn parse_size_mib(text: &str, bare_mib: u64) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" => bare_mib,
        "M" | "Mi" | "MiB" | "MB" => 1,
        "G" | "Gi" | "GiB" | "GB" => 1024,
        "T" | "Ti" | "TiB" | "TB" => 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Reads a parsed document into a configuration.
pub fn read(root: &Node) -> ReadOutcome {
    let mut r = Reader::default();
    let top = r.map(root, "", TOP_KEYS);
    let field = |r: &mut Reader, key: &str| top.as_ref().and_then(|m| r.field(m, key));

    let proxmox_node = match &top {
        Some(m) => r.required(
            m,
            "proxmox",
            "{endpoint: https://pve.home:8006, token_id: homelabctl@pve!provision}",
        ),
        None => None,
    };
    let proxmox = read_proxmox(&mut r, proxmox_node);
    let image_node = field(&mut r, "image");
    let image = read_image(&mut r, image_node);
    let nodes_node = match &top {
        Some(m) => r.required(m, "nodes", "[{name: talos-cp-01, vm_id: 100, …}]"),
        None => None,
    };
    let nodes = nodes_node
        .and_then(|n| {
            r.list_of(n, "nodes", "{name: talos-cp-01}", |r, item, path| {
                Some(read_node(r, item, path, &proxmox.node))
            })
        })
        .unwrap_or_default();
    let cluster_node = field(&mut r, "cluster");
    let cluster = read_cluster(&mut r, cluster_node, &image.talos_version, &nodes);
    let gitops_node = field(&mut r, "gitops");
    let gitops = gitops_node.map(|n| read_gitops(&mut r, n));

    ReadOutcome {
        config: Config {
            proxmox,
            image,
            cluster,
            nodes,
            gitops,
        },
        diagnostics: r.diagnostics,
        spans: r.spans,
        failed: r.failed,
        present: r.present,
    }
}

fn opt_string(r: &mut Reader, m: &Option<Map<'_>>, key: &str) -> Option<String> {
    let m = m.as_ref()?;
    let node = r.field(m, key)?;
    r.string(node, &join(&m.path, key))
}

fn req_string(r: &mut Reader, m: &Option<Map<'_>>, key: &str, example: &str) -> String {
    let Some(m) = m.as_ref() else {
        return String::new();
    };
    r.required(m, key, example)
        .and_then(|node| r.string(node, &join(&m.path, key)))
        .unwrap_or_default()
}

fn sub<'a>(
    r: &mut Reader,
    m: &Option<Map<'a>>,
    key: &str,
    known: &'static [&'static str],
) -> Option<Map<'a>> {
    let m = m.as_ref()?;
    let node = r.field(m, key)?;
    r.map(node, &join(&m.path, key), known)
}

fn opt_node<'a>(r: &mut Reader, m: &Option<Map<'a>>, key: &str) -> Option<(&'a Node, String)> {
    let m = m.as_ref()?;
    let node = r.field(m, key)?;
    Some((node, join(&m.path, key)))
}

fn read_proxmox(r: &mut Reader, node: Option<&Node>) -> Proxmox {
    let m = node.and_then(|n| r.map(n, "proxmox", PROXMOX_KEYS));
    let endpoint = req_string(r, &m, "endpoint", "https://pve.home:8006");
    let node_name = opt_string(r, &m, "node").unwrap_or_else(|| defaults::PROXMOX_NODE.into());
    let token_id = req_string(r, &m, "token_id", "homelabctl@pve!provision");
    let tls_map = sub(r, &m, "tls", TLS_KEYS);
    let tls = Tls {
        ca_file: opt_string(r, &tls_map, "ca_file").map(PathBuf::from),
        fingerprint: opt_string(r, &tls_map, "fingerprint"),
        insecure: opt_node(r, &tls_map, "insecure")
            .and_then(|(n, p)| r.boolean(n, &p))
            .unwrap_or(false),
    };
    let iso_storage =
        opt_string(r, &m, "iso_storage").unwrap_or_else(|| defaults::ISO_STORAGE.into());
    Proxmox {
        endpoint,
        node: node_name,
        token_id,
        tls,
        iso_storage,
    }
}

fn read_image(r: &mut Reader, node: Option<&Node>) -> Image {
    let m = node.and_then(|n| r.map(n, "image", IMAGE_KEYS));
    let factory = opt_string(r, &m, "factory").unwrap_or_else(|| defaults::FACTORY.into());
    let talos_version = opt_node(r, &m, "talos_version")
        .and_then(|(n, p)| r.parsed::<Version>(n, &p, "write the Talos release tag, e.g. v1.12.4"))
        .unwrap_or(defaults::TALOS_VERSION);
    let platform = opt_node(r, &m, "platform")
        .and_then(|(n, p)| r.choice(n, &p, Platform::NAMES))
        .map(|name| {
            if name == "metal" {
                Platform::Metal
            } else {
                Platform::Nocloud
            }
        })
        .unwrap_or(Platform::Nocloud);
    let secureboot = opt_node(r, &m, "secureboot")
        .and_then(|(n, p)| r.boolean(n, &p))
        .unwrap_or(true);
    let extensions = opt_node(r, &m, "extensions")
        .and_then(|(n, p)| {
            r.list_of(n, &p, "siderolabs/qemu-guest-agent", |r, item, path| {
                r.string(item, path)
            })
        })
        .unwrap_or_else(|| defaults::EXTENSIONS.iter().map(|s| s.to_string()).collect());
    Image {
        factory,
        talos_version,
        platform,
        secureboot,
        extensions,
    }
}

fn cidr_list(r: &mut Reader, m: &Option<Map<'_>>, key: &str, default: &str) -> Vec<Cidr> {
    let fallback = || default.parse().map(|c| vec![c]).unwrap_or_default();
    match opt_node(r, m, key) {
        Some((n, p)) => r
            .list_of(n, &p, default, |r, item, path| {
                r.parsed::<Cidr>(
                    item,
                    path,
                    "write a subnet as ADDRESS/PREFIX, e.g. 10.244.0.0/16",
                )
            })
            .unwrap_or_else(fallback),
        None => fallback(),
    }
}

fn read_cluster(
    r: &mut Reader,
    node: Option<&Node>,
    talos: &Version,
    nodes: &[NodeConfig],
) -> Cluster {
    let m = node.and_then(|n| r.map(n, "cluster", CLUSTER_KEYS));
    let name = opt_string(r, &m, "name").unwrap_or_else(|| "homelab".into());
    let vip = opt_node(r, &m, "vip").and_then(|(n, p)| r.ip(n, &p));
    let first_control_plane = nodes
        .iter()
        .find(|n| n.role == Role::Controlplane)
        .map(|n| n.network.address.address);
    let endpoint =
        opt_string(r, &m, "endpoint").unwrap_or_else(|| match vip.or(first_control_plane) {
            Some(IpAddr::V6(ip)) => format!("https://[{ip}]:6443"),
            Some(ip) => format!("https://{ip}:6443"),
            None => String::new(),
        });
    let kubernetes_version = opt_node(r, &m, "kubernetes_version")
        .and_then(|(n, p)| r.parsed::<Version>(n, &p, "write a Kubernetes release, e.g. 1.35.0"))
        .unwrap_or_else(|| default_kubernetes_for(talos));
    let pod_subnets = cidr_list(r, &m, "pod_subnets", defaults::POD_SUBNET);
    let service_subnets = cidr_list(r, &m, "service_subnets", defaults::SERVICE_SUBNET);
    let single_node = !nodes.iter().any(|n| n.role == Role::Worker);
    let allow_scheduling_on_control_planes = opt_node(r, &m, "allow_scheduling_on_control_planes")
        .and_then(|(n, p)| r.boolean(n, &p))
        .unwrap_or(single_node);
    let patches = patch_list(r, &m, "patches");
    let role_map = sub(r, &m, "role_patches", crate::patches::ROLE_PATCH_KEYS);
    let role_patches = crate::patches::RolePatches {
        controlplane: patch_list(r, &role_map, "controlplane"),
        worker: patch_list(r, &role_map, "worker"),
    };
    let bootstrap_timeout_secs =
        opt_node(r, &m, "bootstrap_timeout").and_then(|(n, p)| r.integer(n, &p, 30, 86_400));
    Cluster {
        name,
        endpoint,
        kubernetes_version,
        pod_subnets,
        service_subnets,
        allow_scheduling_on_control_planes,
        vip,
        patches,
        role_patches,
        bootstrap_timeout_secs,
    }
}

fn read_node(r: &mut Reader, node: &Node, path: &str, default_proxmox_node: &str) -> NodeConfig {
    let m = r.map(node, path, NODE_KEYS);
    let name = req_string(r, &m, "name", "talos-cp-01");
    let role = opt_node(r, &m, "role")
        .and_then(|(n, p)| r.choice(n, &p, Role::NAMES))
        .map(|name| {
            if name == "worker" {
                Role::Worker
            } else {
                Role::Controlplane
            }
        })
        .unwrap_or(Role::Controlplane);
    let vm_id = m
        .as_ref()
        .and_then(|mm| r.required(mm, "vm_id", "100"))
        .and_then(|n| r.integer(n, &format!("{path}.vm_id"), 100, 999_999_999))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let proxmox_node =
        opt_string(r, &m, "proxmox_node").unwrap_or_else(|| default_proxmox_node.to_string());
    let cores = opt_node(r, &m, "cores")
        .and_then(|(n, p)| r.integer(n, &p, 1, 512))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(defaults::CORES);
    let memory_mib = opt_node(r, &m, "memory")
        .and_then(|(n, p)| r.size_mib(n, &p, "MiB", 1))
        .unwrap_or(defaults::MEMORY_MIB);
    let disk_map = sub(r, &m, "disk", DISK_KEYS);
    let disk = Disk {
        size_gib: opt_node(r, &disk_map, "size")
            .and_then(|(n, p)| r.size_mib(n, &p, "GiB", 1024))
            .map(|mib| mib.div_ceil(1024))
            .unwrap_or(defaults::DISK_GIB),
        storage: opt_string(r, &disk_map, "storage")
            .unwrap_or_else(|| defaults::DISK_STORAGE.into()),
    };
    let network = read_network(r, &m, path);
    let install_disk =
        opt_string(r, &m, "install_disk").unwrap_or_else(|| defaults::INSTALL_DISK.into());
    let encryption = opt_node(r, &m, "encryption")
        .and_then(|(n, p)| r.choice(n, &p, Encryption::NAMES))
        .map(|name| {
            if name == "none" {
                Encryption::None
            } else {
                Encryption::Tpm
            }
        })
        .unwrap_or(Encryption::Tpm);
    let maintenance_address = opt_node(r, &m, "maintenance_address").and_then(|(n, p)| r.ip(n, &p));
    let patches = patch_list(r, &m, "patches");
    NodeConfig {
        name,
        role,
        vm_id,
        proxmox_node,
        cores,
        memory_mib,
        disk,
        network,
        install_disk,
        encryption,
        maintenance_address,
        patches,
    }
}

/// A `patches:` list (see [`crate::patches`]).
fn patch_list(r: &mut Reader, m: &Option<Map<'_>>, key: &str) -> Vec<crate::patches::PatchSource> {
    opt_node(r, m, key)
        .and_then(|(n, p)| {
            r.list_of(
                n,
                &p,
                "talos/patches/extra.yaml",
                |r, item, path| match crate::patches::entry(item) {
                    Ok(source) => Some(source),
                    Err(hint) => {
                        r.type_error(item, path, "a patch", hint);
                        None
                    }
                },
            )
        })
        .unwrap_or_default()
}

fn read_network(r: &mut Reader, node_map: &Option<Map<'_>>, node_path: &str) -> NodeNetwork {
    let network_path = format!("{node_path}.network");
    let m = match node_map.as_ref() {
        Some(nm) => r.required(
            nm,
            "network",
            "{mac: BC:24:11:CA:FE:01, address: 192.168.20.100/24, gateway: 192.168.20.1}",
        ),
        None => None,
    }
    .and_then(|n| r.map(n, &network_path, NETWORK_KEYS));
    let required = |r: &mut Reader, key: &str, example: &str| {
        m.as_ref()
            .and_then(|mm| r.required(mm, key, example))
            .map(|n| (n, format!("{network_path}.{key}")))
    };
    let mac = required(r, "mac", "BC:24:11:CA:FE:01")
        .and_then(|(n, p)| r.parsed::<Mac>(n, &p, "write six hex octets, e.g. BC:24:11:CA:FE:01"))
        .unwrap_or(Mac([0; 6]));
    let address = required(r, "address", "192.168.20.100/24")
        .and_then(|(n, p)| {
            r.parsed::<Cidr>(
                n,
                &p,
                "write the node's static address with its prefix, e.g. 192.168.20.100/24",
            )
        })
        .unwrap_or(Cidr {
            address: IpAddr::from([0, 0, 0, 0]),
            prefix: 0,
        });
    let gateway = required(r, "gateway", "192.168.20.1")
        .and_then(|(n, p)| r.ip(n, &p))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let bridge = opt_string(r, &m, "bridge").unwrap_or_else(|| defaults::BRIDGE.into());
    let vlan = opt_node(r, &m, "vlan")
        .and_then(|(n, p)| r.integer(n, &p, 1, 4094))
        .and_then(|n| u16::try_from(n).ok());
    let nameservers = opt_node(r, &m, "nameservers")
        .and_then(|(n, p)| r.list_of(n, &p, "192.168.20.1", |r, item, path| r.ip(item, path)))
        .unwrap_or_else(|| vec![gateway]);
    NodeNetwork {
        bridge,
        vlan,
        mac,
        address,
        gateway,
        nameservers,
    }
}

fn read_gitops(r: &mut Reader, node: &Node) -> Gitops {
    let m = r.map(node, "gitops", GITOPS_KEYS);
    let path = opt_string(r, &m, "path").unwrap_or_else(|| defaults::GITOPS_PATH.into());
    let repo_map = match m.as_ref() {
        Some(mm) => r.required(
            mm,
            "repository",
            "{url: ssh://git@github.com/me/homelab.git, branch: main}",
        ),
        None => None,
    }
    .and_then(|n| r.map(n, "gitops.repository", REPOSITORY_KEYS));
    let repository = Repository {
        url: req_string(r, &repo_map, "url", "ssh://git@github.com/me/homelab.git"),
        branch: opt_string(r, &repo_map, "branch").unwrap_or_else(|| defaults::GIT_BRANCH.into()),
    };
    let nfs_map = sub(r, &m, "nfs", NFS_KEYS);
    let nfs = nfs_map.is_some().then(|| Nfs {
        server: req_string(r, &nfs_map, "server", "nas.home"),
        export: req_string(r, &nfs_map, "export", "/volume1/kubernetes"),
    });
    Gitops {
        path: PathBuf::from(path),
        repository,
        nfs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_units_and_bare_numbers() {
        assert_eq!(parse_size_mib("8GiB", 1), Some(8192));
        assert_eq!(parse_size_mib("512MiB", 1), Some(512));
        assert_eq!(parse_size_mib("4096", 1), Some(4096));
        assert_eq!(parse_size_mib("64", 1024), Some(65536));
        assert_eq!(parse_size_mib("8 parsecs", 1), None);
    }
}
