//! Semantic checks on a read configuration: addresses, uniqueness, versions, endpoints, TLS, topology.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Span};
use crate::model::{Config, Encryption, Role};
use crate::net::Cidr;
use crate::version::{MINIMUM_TALOS, supported_kubernetes_minors};

struct Checker<'a> {
    spans: &'a HashMap<String, Span>,
    failed: &'a HashSet<String>,
    present: &'a HashSet<String>,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Records a finding unless the field (or a parent) already failed to read.
    fn report(&mut self, diagnostic: Diagnostic) {
        if self.has_failed(&diagnostic.path) {
            return;
        }
        let span = self.span_of(&diagnostic.path);
        self.out.push(diagnostic.at(span));
    }

    /// Whether `path` or one of its parents could not be read (its value is a placeholder).
    fn has_failed(&self, path: &str) -> bool {
        let mut prefix = path;
        loop {
            if self.failed.contains(prefix) {
                return true;
            }
            match prefix.rfind(['.', '[']) {
                Some(i) => prefix = &prefix[..i],
                None => return false,
            }
        }
    }

    fn span_of(&self, path: &str) -> Option<Span> {
        let mut prefix = path;
        loop {
            if let Some(span) = self.spans.get(prefix) {
                return Some(*span);
            }
            prefix = &prefix[..prefix.rfind(['.', '['])?];
        }
    }

    fn line_of(&self, path: &str) -> String {
        self.span_of(path)
            .map(|s| format!(" (line {})", s.line))
            .unwrap_or_default()
    }
}

/// Runs every semantic check; `base_dir` resolves relative paths (patches, CA file).
pub fn validate(
    config: &Config,
    spans: &HashMap<String, Span>,
    failed: &HashSet<String>,
    present: &HashSet<String>,
    base_dir: Option<&Path>,
) -> Vec<Diagnostic> {
    let mut c = Checker {
        spans,
        failed,
        present,
        out: Vec::new(),
    };
    check_proxmox(&mut c, config, base_dir);
    check_versions(&mut c, config);
    check_nodes(&mut c, config);
    check_cluster(&mut c, config, base_dir);
    check_gitops(&mut c, config);
    for (path, is_error, message, hint) in crate::hardware::findings(config) {
        let d = if is_error {
            Diagnostic::error(path, message)
        } else {
            Diagnostic::warning(path, message)
        };
        c.report(d.with_hint(hint));
    }
    c.out
}

/// Splits `https://host:port/path` into (scheme, host, port, path) without pulling in a URL crate.
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, Option<u16>, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
        let end = stripped.find(']')?;
        let port = stripped[end + 1..].strip_prefix(':');
        (&stripped[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    (!host.is_empty() && !host.contains('@')).then_some((scheme, host, port, path))
}

fn check_https(c: &mut Checker<'_>, path: &str, url: &str, example: &str) -> Option<String> {
    match split_url(url) {
        Some(("https", host, _, _)) => Some(host.to_string()),
        Some((scheme, ..)) => {
            c.report(
                Diagnostic::error(
                    path,
                    format!("`{path}` must be an https URL, not {scheme}://"),
                )
                .with_hint(format!(
                    "use e.g. `{example}`; homelabctl never sends credentials over plain HTTP"
                )),
            );
            None
        }
        None => {
            c.report(
                Diagnostic::error(path, format!("`{path}`: `{url}` is not a URL"))
                    .with_hint(format!("write e.g. `{example}`")),
            );
            None
        }
    }
}

fn is_fingerprint(s: &str) -> bool {
    let octets: Vec<&str> = s.split(':').collect();
    octets.len() == 32
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_proxmox(c: &mut Checker<'_>, config: &Config, base_dir: Option<&Path>) {
    let p = &config.proxmox;
    check_https(c, "proxmox.endpoint", &p.endpoint, "https://pve.home:8006");
    let token_ok = p
        .token_id
        .split_once('@')
        .and_then(|(user, rest)| {
            rest.split_once('!')
                .map(|(realm, token)| !user.is_empty() && !realm.is_empty() && !token.is_empty())
        })
        .unwrap_or(false);
    if !token_ok {
        c.report(
            Diagnostic::error("proxmox.token_id", format!("`proxmox.token_id`: `{}` is not an API token id", p.token_id))
                .with_hint("write USER@REALM!TOKENID, e.g. homelabctl@pve!provision; the secret goes in secrets.enc.yaml"),
        );
    }
    let tls = &p.tls;
    if tls.insecure && (tls.fingerprint.is_some() || tls.ca_file.is_some()) {
        c.report(
            Diagnostic::error(
                "proxmox.tls.insecure",
                "`proxmox.tls.insecure: true` contradicts the fingerprint/CA file also given",
            )
            .with_hint("remove `insecure` to verify with the pin or CA you configured"),
        );
    } else if tls.insecure {
        c.report(
            Diagnostic::warning("proxmox.tls.insecure", "TLS verification of Proxmox is turned off")
                .with_hint("pin the certificate instead: `fingerprint:` as shown under Datacenter → node → Certificates"),
        );
    }
    if tls.fingerprint.is_some() && tls.ca_file.is_some() {
        c.report(
            Diagnostic::error(
                "proxmox.tls.fingerprint",
                "`proxmox.tls` sets both `fingerprint` and `ca_file`",
            )
            .with_hint("choose one: a CA file to verify the chain, or a SHA-256 fingerprint pin"),
        );
    }
    if let Some(fp) = &tls.fingerprint
        && !is_fingerprint(fp)
    {
        c.report(
            Diagnostic::error(
                "proxmox.tls.fingerprint",
                "`proxmox.tls.fingerprint` is not a SHA-256 fingerprint",
            )
            .with_hint("32 hex octets separated by `:`, as `pvenode cert info` prints it"),
        );
    }
    if let (Some(ca), Some(dir)) = (&tls.ca_file, base_dir)
        && !dir.join(ca).is_file()
    {
        c.report(
            Diagnostic::error("proxmox.tls.ca_file", format!("CA file `{}` does not exist", ca.display()))
                .with_hint("the path is relative to homelab.yaml; copy /etc/pve/pve-root-ca.pem from the Proxmox host"),
        );
    }
}

fn check_versions(c: &mut Checker<'_>, config: &Config) {
    let talos = &config.image.talos_version;
    if *talos < MINIMUM_TALOS {
        c.report(
            Diagnostic::error("image.talos_version", format!("Talos v{talos} is older than v1.12, which homelabctl needs"))
                .with_hint("homelabctl writes HostnameConfig/LinkConfig documents introduced in Talos 1.12; use v1.12.4 or newer"),
        );
        return;
    }
    let k8s = &config.cluster.kubernetes_version;
    if let Some((oldest, newest)) = supported_kubernetes_minors(talos)
        && (k8s.major != 1 || k8s.minor < oldest || k8s.minor > newest)
    {
        c.report(
            Diagnostic::error(
                "cluster.kubernetes_version",
                format!("Kubernetes {k8s} is not supported by Talos v{talos} (it supports 1.{oldest}–1.{newest})"),
            )
            .with_hint(format!("use a 1.{newest}.x release, or leave the key out for the default")),
        );
    }
    match crate::validate::split_url(&config.image.factory) {
        Some(("https", ..)) => {}
        Some(("http", host, ..)) if is_loopback_host(host) => {}
        _ => c.report(
            Diagnostic::error(
                "image.factory",
                format!(
                    "`image.factory`: `{}` is not an https URL",
                    config.image.factory
                ),
            )
            .with_hint("use https://factory.talos.dev or your own factory's https URL"),
        ),
    }
    let mut seen = HashSet::new();
    for (i, ext) in config.image.extensions.iter().enumerate() {
        let path = format!("image.extensions[{i}]");
        if !ext.contains('/') {
            c.report(
                Diagnostic::error(&path, format!("extension `{ext}` has no publisher")).with_hint(
                    format!("official extensions are named like `siderolabs/{ext}`"),
                ),
            );
        }
        if !seen.insert(ext) {
            c.report(
                Diagnostic::warning(&path, format!("extension `{ext}` is listed twice"))
                    .with_hint("remove the repeat"),
            );
        }
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check_nodes(c: &mut Checker<'_>, config: &Config) {
    if config.nodes.is_empty() {
        c.report(
            Diagnostic::error("nodes", "`nodes` is empty")
                .with_hint("describe at least one control-plane node"),
        );
        return;
    }
    let control_planes = config.control_planes().count();
    if control_planes == 0 {
        c.report(
            Diagnostic::error("nodes", "there is no control-plane node").with_hint(
                "set `role: controlplane` on at least one node (etcd and the API server run there)",
            ),
        );
    } else if control_planes.is_multiple_of(2) {
        c.report(
            Diagnostic::warning(
                "nodes",
                format!(
                    "{control_planes} control planes: an even number adds no etcd fault tolerance"
                ),
            )
            .with_hint("use 1 or 3 control planes"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<u32, usize> = HashMap::new();
    let mut macs: HashMap<String, usize> = HashMap::new();
    let mut addresses: HashMap<IpAddr, usize> = HashMap::new();
    for (i, node) in config.nodes.iter().enumerate() {
        let at = |key: &str| format!("nodes[{i}].{key}");
        if !is_dns_label(&node.name) {
            c.report(
                Diagnostic::error(at("name"), format!("node name `{}` is not a valid hostname", node.name))
                    .with_hint("use lower-case letters, digits and `-`, at most 63 characters, e.g. talos-cp-01"),
            );
        }
        if let Some(first) = names.insert(&node.name, i) {
            let d = Diagnostic::error(
                at("name"),
                format!("node name `{}` is used twice", node.name),
            );
            let hint = format!(
                "first used by nodes[{first}]{}; names must be unique",
                c.line_of(&format!("nodes[{first}].name"))
            );
            c.report(d.with_hint(hint));
        }
        if let Some(first) = ids.insert(node.vm_id, i) {
            let d = Diagnostic::error(at("vm_id"), format!("VM id {} is used twice", node.vm_id));
            let hint = format!(
                "nodes[{first}]{} has it too; give each node its own id",
                c.line_of(&format!("nodes[{first}].vm_id"))
            );
            c.report(d.with_hint(hint));
        }
        check_node_network(c, config, i, &mut macs, &mut addresses);
        if node.memory_mib < 2048 {
            c.report(
                Diagnostic::warning(at("memory"), format!("{} MiB of memory is below Talos' 2 GiB minimum", node.memory_mib))
                    .with_hint("give the node at least 2GiB (4GiB for a control plane that also runs workloads)"),
            );
        }
        if node.disk.size_gib < 10 {
            c.report(
                Diagnostic::error(
                    at("disk.size"),
                    format!("a {} GiB disk is too small for Talos", node.disk.size_gib),
                )
                .with_hint("Talos needs at least 10GiB; 64GiB is a comfortable default"),
            );
        }
        if node.encryption == Encryption::Tpm && !config.image.secureboot {
            c.report(
                Diagnostic::error(
                    at("encryption"),
                    "TPM-sealed disk encryption needs SecureBoot",
                )
                .with_hint("set `image.secureboot: true`, or `encryption: none` on this node"),
            );
        }
        if !node.install_disk.starts_with("/dev/") {
            c.report(
                Diagnostic::error(
                    at("install_disk"),
                    format!("install disk `{}` is not a device path", node.install_disk),
                )
                .with_hint("write e.g. /dev/sda (the first virtio-scsi disk)"),
            );
        }
    }
}

fn check_node_network(
    c: &mut Checker<'_>,
    config: &Config,
    i: usize,
    macs: &mut HashMap<String, usize>,
    addresses: &mut HashMap<IpAddr, usize>,
) {
    let net = &config.nodes[i].network;
    let at = |key: &str| format!("nodes[{i}].network.{key}");
    if !net.mac.is_unicast() {
        c.report(
            Diagnostic::error(at("mac"), format!("MAC {} is a multicast address", net.mac))
                .with_hint(
                    "the first octet must be even; Proxmox's own prefix BC:24:11 is a good choice",
                ),
        );
    }
    if let Some(first) = macs.insert(net.mac.to_string(), i) {
        let d = Diagnostic::error(at("mac"), format!("MAC {} is used twice", net.mac));
        let hint = format!(
            "nodes[{first}]{} has it too; each VM needs its own",
            c.line_of(&format!("nodes[{first}].network.mac"))
        );
        c.report(d.with_hint(hint));
    }
    if net.address.is_network_or_broadcast() {
        c.report(
            Diagnostic::error(
                at("address"),
                format!(
                    "{} is the network or broadcast address of its prefix",
                    net.address
                ),
            )
            .with_hint("choose a host address inside the subnet"),
        );
    }
    if let Some(first) = addresses.insert(net.address.address, i) {
        let d = Diagnostic::error(
            at("address"),
            format!("address {} is used twice", net.address.address),
        );
        let hint = format!(
            "nodes[{first}]{} has it too",
            c.line_of(&format!("nodes[{first}].network.address"))
        );
        c.report(d.with_hint(hint));
    }
    if !net.address.contains(&net.gateway) {
        c.report(
            Diagnostic::error(at("gateway"), format!("gateway {} is outside the node's subnet {}", net.gateway, subnet_of(&net.address)))
                .with_hint("the gateway must be reachable on the link: use an address inside the subnet, or fix the prefix length"),
        );
    } else if net.gateway == net.address.address {
        c.report(
            Diagnostic::error(at("gateway"), "the gateway is the node's own address")
                .with_hint("use your router's address"),
        );
    }
    if let Some(ip) = config.nodes[i].maintenance_address
        && !net.address.contains(&ip)
    {
        c.report(
            Diagnostic::warning(
                format!("nodes[{i}].maintenance_address"),
                format!(
                    "maintenance address {ip} is outside {}",
                    subnet_of(&net.address)
                ),
            )
            .with_hint("it is usually the DHCP address on the same network"),
        );
    }
}

fn subnet_of(cidr: &Cidr) -> String {
    let bits = match cidr.address {
        IpAddr::V4(v4) => {
            let mask = if cidr.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(cidr.prefix))
            };
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = if cidr.prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(cidr.prefix))
            };
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    };
    format!("{bits}/{}", cidr.prefix)
}

fn check_cluster(c: &mut Checker<'_>, config: &Config, base_dir: Option<&Path>) {
    let cluster = &config.cluster;
    let has_worker = config.nodes.iter().any(|n| n.role == Role::Worker);
    if !has_worker && !cluster.allow_scheduling_on_control_planes && !config.nodes.is_empty() {
        // Talos taints every control plane NoSchedule then: a drain of the last worker would wait for
        // pods that have nowhere to go.
        c.report(
            Diagnostic::warning(
                "cluster.allow_scheduling_on_control_planes",
                "no worker, and the control planes take no workloads: only pods that tolerate the \
                 node-role.kubernetes.io/control-plane taint can run",
            )
            .with_hint(
                "set `allow_scheduling_on_control_planes: true` (the default without workers), or add a worker",
            ),
        );
    }
    if !is_dns_label(&cluster.name) {
        c.report(
            Diagnostic::error(
                "cluster.name",
                format!("cluster name `{}` is not a valid DNS label", cluster.name),
            )
            .with_hint("use lower-case letters, digits and `-`"),
        );
    }
    if cluster.endpoint.is_empty() {
        // Without a control plane the endpoint has nothing to default to; that is reported once, on `nodes`.
        if config.control_planes().next().is_some() {
            c.report(
                Diagnostic::error("cluster.endpoint", "the cluster has no API endpoint")
                    .with_hint("set `cluster.endpoint: https://ADDRESS:6443`"),
            );
        }
    } else if let Some(host) = check_https(
        c,
        "cluster.endpoint",
        &cluster.endpoint,
        "https://192.168.20.100:6443",
    ) {
        check_endpoint_host(c, config, &host);
    }
    let node_nets: Vec<(usize, Cidr)> = config
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !c.has_failed(&format!("nodes[{i}].network.address")))
        .map(|(i, n)| (i, n.network.address))
        .collect();
    let subnets = cluster
        .pod_subnets
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("cluster.pod_subnets[{i}]"), *s))
        .chain(
            cluster
                .service_subnets
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("cluster.service_subnets[{i}]"), *s)),
        )
        .collect::<Vec<_>>();
    for (index, (path, subnet)) in subnets.iter().enumerate() {
        if subnet.has_host_bits() {
            c.report(
                Diagnostic::error(path, format!("{subnet} has host bits set")).with_hint(format!(
                    "write the subnet's network address: {}",
                    subnet_of(subnet)
                )),
            );
        }
        for (other_path, other) in &subnets[index + 1..] {
            if subnet.overlaps(other) {
                c.report(
                    Diagnostic::error(other_path, format!("{other} overlaps {subnet} (`{path}`)"))
                        .with_hint("pod and service subnets must be disjoint"),
                );
            }
        }
        for (i, net) in &node_nets {
            if subnet.overlaps(net) {
                c.report(
                    Diagnostic::error(
                        path,
                        format!(
                            "{subnet} overlaps the network of nodes[{i}] ({})",
                            subnet_of(net)
                        ),
                    )
                    .with_hint("cluster-internal subnets must not collide with your LAN"),
                );
            }
        }
    }
    if let Some(vip) = cluster.vip {
        let cp: Vec<&Cidr> = config
            .control_planes()
            .map(|n| &n.network.address)
            .collect();
        if !cp.iter().any(|net| net.contains(&vip)) {
            c.report(
                Diagnostic::error(
                    "cluster.vip",
                    format!("VIP {vip} is not on the control planes' network"),
                )
                .with_hint("pick a free address in their subnet"),
            );
        }
        if config
            .nodes
            .iter()
            .any(|n| n.network.address.address == vip)
        {
            c.report(
                Diagnostic::error("cluster.vip", format!("VIP {vip} is also a node's address"))
                    .with_hint("the VIP must be a free address"),
            );
        }
    }
    if let Some(dir) = base_dir {
        let lists = [
            ("cluster.patches".to_string(), &cluster.patches),
            (
                "cluster.role_patches.controlplane".to_string(),
                &cluster.role_patches.controlplane,
            ),
            (
                "cluster.role_patches.worker".to_string(),
                &cluster.role_patches.worker,
            ),
        ]
        .into_iter()
        .chain(
            config
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("nodes[{i}].patches"), &n.patches)),
        );
        for (path, list) in lists {
            for (i, patch) in list.iter().enumerate() {
                if let crate::PatchSource::File(file) = patch
                    && !dir.join(file).is_file()
                {
                    c.report(
                        Diagnostic::error(
                            format!("{path}[{i}]"),
                            format!("patch file `{}` does not exist", file.display()),
                        )
                        .with_hint("paths are relative to homelab.yaml"),
                    );
                }
            }
        }
    }
}

fn check_endpoint_host(c: &mut Checker<'_>, config: &Config, host: &str) {
    let Ok(ip) = host.parse::<IpAddr>() else {
        return;
    };
    let control_planes: Vec<IpAddr> = config
        .control_planes()
        .map(|n| n.network.address.address)
        .collect();
    let explicit = c.present.contains("cluster.endpoint");
    if Some(ip) == config.cluster.vip {
        return;
    }
    if !control_planes.contains(&ip) && explicit {
        c.report(
            Diagnostic::warning(
                "cluster.endpoint",
                format!("the endpoint {ip} is neither a control plane's address nor the VIP"),
            )
            .with_hint("point it at the control plane (single node) or at `cluster.vip`"),
        );
    } else if control_planes.len() > 1 && config.cluster.vip.is_none() {
        c.report(
            Diagnostic::warning("cluster.endpoint", "several control planes but the endpoint names only one of them")
                .with_hint("set `cluster.vip` to a free address so the API survives a control plane going down"),
        );
    }
}

fn check_gitops(c: &mut Checker<'_>, config: &Config) {
    let Some(gitops) = &config.gitops else { return };
    let url = &gitops.repository.url;
    let known_scheme = ["ssh://", "https://", "http://", "git@", "oci://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !url.is_empty() && !known_scheme {
        c.report(
            Diagnostic::error(
                "gitops.repository.url",
                format!("`{url}` is not a repository URL Flux understands"),
            )
            .with_hint("use ssh://git@github.com/OWNER/REPO.git or https://github.com/OWNER/REPO"),
        );
    }
    if gitops.path.is_absolute() {
        c.report(
            Diagnostic::error(
                "gitops.path",
                "`gitops.path` must be relative to the repository root",
            )
            .with_hint("e.g. `kubernetes`"),
        );
    }
    if let Some(nfs) = &gitops.nfs
        && !nfs.export.starts_with('/')
    {
        c.report(
            Diagnostic::error(
                "gitops.nfs.export",
                format!("NFS export `{}` is not an absolute path", nfs.export),
            )
            .with_hint("write the path the NAS exports, e.g. /volume1/kubernetes"),
        );
    }
}
