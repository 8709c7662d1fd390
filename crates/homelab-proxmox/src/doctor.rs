//! Preflight checks of a Proxmox setup (what `homelabctl doctor` runs): the node exists, the PVE version is
//! supported, the token has every privilege the flow needs for that major version (VM privileges on `/vms`,
//! where a grant survives the VM: PVE deletes a VM's own `/vms/{vmid}` ACL entries when it destroys the VM),
//! the ISO storage takes ISOs (and is file-based), the VM storage takes disk images, and the bridge exists.
//! Each failure says how to fix it.

use serde::Serialize;

use crate::client::Client;
use crate::error::Error;
use crate::types::{NetworkInterface, StorageInfo};

/// One VM the flow will create, as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorVm {
    pub vmid: u32,
    /// The Proxmox node the VM lives on.
    pub node: String,
    /// Storage for its disks (content `images`).
    pub storage: String,
    pub bridge: String,
    pub vlan: Option<u16>,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorInput {
    /// The node that downloads the ISO.
    pub node: String,
    /// Storage for the ISO (content `iso`, file-based).
    pub iso_storage: String,
    pub vms: Vec<DoctorVm>,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// One check: what was looked at, what was found, and how to fix a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: CheckStatus::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: CheckStatus::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: CheckStatus::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// All checks of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// `GET /version` → `version`, when reachable.
    pub pve_version: Option<String>,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// True when no check failed (warnings allowed).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }
}

/// The privileges the provisioning flow needs on the VM path, per PVE major version.
pub fn vm_privileges(major: u32) -> Vec<&'static str> {
    let mut p = vec![
        "VM.Allocate",
        "VM.Audit",
        "VM.PowerMgmt",
        "VM.Config.CDROM",
        "VM.Config.CPU",
        "VM.Config.Disk",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
    ];
    // PVE 9 split the guest-agent privileges out of VM.Monitor (pve-access-control 9.0.2).
    p.push(if major >= 9 {
        "VM.GuestAgent.Audit"
    } else {
        "VM.Monitor"
    });
    p
}

/// Where the VM privileges belong: `/vms`, propagated to every VM. A grant on `/vms/{vmid}` dies with the VM
/// (`PVE::AccessControl::remove_vm_access` runs on every destroy, purge or not), so a replace or a
/// destroy-then-apply would then be refused with 403.
pub const VM_GRANT_PATH: &str = "/vms";

/// Every `(path, privileges)` pair the flow needs.
pub fn required_privileges(major: u32, input: &DoctorInput) -> Vec<(String, Vec<&'static str>)> {
    let mut req: Vec<(String, Vec<&'static str>)> = Vec::new();
    let mut add = |path: String, privs: Vec<&'static str>| {
        if let Some((_, existing)) = req.iter_mut().find(|(p, _)| *p == path) {
            for p in privs {
                if !existing.contains(&p) {
                    existing.push(p);
                }
            }
        } else {
            req.push((path, privs));
        }
    };
    add(
        format!("/storage/{}", input.iso_storage),
        vec!["Datastore.AllocateTemplate", "Datastore.Audit"],
    );
    add(format!("/nodes/{}", input.node), vec!["Sys.AccessNetwork"]);
    // Every host that runs a VM downloads the ISO to its own storage (unless that storage is shared).
    for vm in &input.vms {
        add(format!("/nodes/{}", vm.node), vec!["Sys.AccessNetwork"]);
    }
    if !input.vms.is_empty() {
        add(VM_GRANT_PATH.to_string(), vm_privileges(major));
    }
    for vm in &input.vms {
        add(
            format!("/storage/{}", vm.storage),
            vec!["Datastore.AllocateSpace", "Datastore.Audit"],
        );
        let mut sdn = format!("/sdn/zones/localnetwork/{}", vm.bridge);
        if let Some(tag) = vm.vlan {
            sdn.push_str(&format!("/{tag}"));
        }
        add(sdn, vec!["SDN.Use"]);
    }
    req
}

fn role_fix(token: &str, path: &str, missing: &[&str]) -> String {
    let user = token.split('!').next().unwrap_or(token);
    format!(
        "grant them on {path}, e.g. `pveum role add HomelabProvisioner --privs \"{}\"` (or `pveum role modify HomelabProvisioner --append 1 --privs …`) and `pveum acl modify {path} --tokens '{token}' --roles HomelabProvisioner`; a privilege-separated token also needs them on its user: `pveum acl modify {path} --users '{user}' --roles HomelabProvisioner`",
        missing.join(",")
    )
}

/// The VM privileges missing on `/vms`: a grant on each VM's own path works until that VM is destroyed
/// (a warning), none at all is a failure. The fix is always the grant on `/vms`.
async fn vm_grant_check(
    client: &Client,
    input: &DoctorInput,
    privs: &[&'static str],
    missing: &[&str],
) -> Check {
    let token = client.token_id();
    let name = format!("privileges {VM_GRANT_PATH}");
    let fix = format!(
        "{}; a grant on /vms/<id> is deleted by Proxmox together with the VM, so the next create of that VM is refused with 403",
        role_fix(token, VM_GRANT_PATH, missing)
    );
    let mut per_vm = Vec::new();
    for vm in &input.vms {
        let path = format!("/vms/{}", vm.vmid);
        let have = client
            .permissions(Some(&path))
            .await
            .ok()
            .and_then(|p| p.get(&path).cloned())
            .unwrap_or_default();
        if privs.iter().all(|p| have.contains_key(*p)) {
            per_vm.push(path);
        }
    }
    if !per_vm.is_empty() && per_vm.len() == input.vms.len() {
        return Check::warn(
            name,
            format!(
                "token {token} has the VM privileges only on {} (not on {VM_GRANT_PATH}): Proxmox deletes those entries when it destroys the VM, so after a replace or a destroy the next apply fails with 403 \"Permission check failed\"",
                per_vm.join(", ")
            ),
            fix,
        );
    }
    Check::fail(
        name,
        format!(
            "token {token} lacks {} on {VM_GRANT_PATH}",
            missing.join(", ")
        ),
        fix,
    )
}

/// `destroy --remove-iso` deletes the ISO, which needs `Datastore.Allocate` on its storage (qemu-server's
/// `DELETE …/content/{volume}`); nothing else does, so its absence is a warning.
async fn iso_delete_check(client: &Client, storage: &str) -> Check {
    let path = format!("/storage/{storage}");
    let name = format!("privileges {path} (destroy --remove-iso)");
    match client.permissions(Some(&path)).await {
        Ok(perms)
            if perms
                .get(&path)
                .is_some_and(|p| p.contains_key("Datastore.Allocate")) =>
        {
            Check::pass(name, "Datastore.Allocate")
        }
        Ok(_) => Check::warn(
            name,
            format!(
                "token {} lacks Datastore.Allocate on {path}: `destroy --remove-iso` cannot delete the ISO",
                client.token_id()
            ),
            role_fix(client.token_id(), &path, &["Datastore.Allocate"]),
        ),
        Err(e) => Check::fail(
            name,
            e.to_string(),
            "the token must be able to read its own permissions (GET /access/permissions)",
        ),
    }
}

const FILE_BASED: &[&str] = &["dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs", "pbs"];

/// Runs every check against the configured Proxmox. Stops early only when the API cannot be reached at all.
pub async fn run(client: &Client, input: &DoctorInput) -> DoctorReport {
    let mut checks = Vec::new();
    let version = match client.version().await {
        Ok(v) => v,
        Err(e) => {
            let fix = match &e {
                Error::Unauthorized { .. } => {
                    "check proxmox.token_id and the token secret; create a token with `pveum user token add USER@REALM TOKENID`"
                }
                Error::Transport { .. } => {
                    "check proxmox.endpoint and the TLS settings (proxmox.tls.fingerprint from `pvenode cert info`, or ca_file /etc/pve/pve-root-ca.pem)"
                }
                _ => "check the endpoint and the token",
            };
            checks.push(Check::fail("connection", e.to_string(), fix));
            return DoctorReport {
                pve_version: None,
                checks,
            };
        }
    };
    checks.push(Check::pass(
        "connection",
        format!(
            "{} answers as token {}",
            client.base_url(),
            client.token_id()
        ),
    ));
    let major = version.major().unwrap_or(0);
    match version.major_minor() {
        Some((9, _)) | Some((8, 1..)) => {
            checks.push(Check::pass("version", format!("Proxmox VE {} (release {})", version.version, version.release)))
        }
        Some((8, 0)) => checks.push(Check::warn(
            "version",
            format!("Proxmox VE {}: Sys.AccessNetwork for download-url needs 8.1 or later", version.version),
            "upgrade to PVE 8.4 or 9.x, or grant Sys.Audit+Sys.Modify on / instead of Sys.AccessNetwork",
        )),
        _ => checks.push(Check::fail(
            "version",
            format!("Proxmox VE {} is not supported (8.1–8.4 and 9.x are)", version.version),
            "upgrade Proxmox VE to 8.4 or 9.x",
        )),
    }

    let mut nodes_needed: Vec<&str> = vec![input.node.as_str()];
    nodes_needed.extend(input.vms.iter().map(|v| v.node.as_str()));
    nodes_needed.sort();
    nodes_needed.dedup();
    let known = match client.nodes().await {
        Ok(n) => n,
        Err(e) => {
            checks.push(Check::fail(
                "node",
                e.to_string(),
                "the token needs to list nodes (GET /nodes)",
            ));
            Vec::new()
        }
    };
    let names: Vec<&str> = known.iter().map(|n| n.node.as_str()).collect();
    let mut node_ok = Vec::new();
    for node in &nodes_needed {
        match known.iter().find(|n| n.node == *node) {
            Some(n) if n.status == "online" => {
                checks.push(Check::pass(format!("node {node}"), "exists and is online"));
                node_ok.push(*node);
            }
            Some(n) => checks.push(Check::fail(
                format!("node {node}"),
                format!("node '{node}' is {}", n.status),
                "bring the node online, or place the VMs on another node",
            )),
            None if !known.is_empty() => checks.push(Check::fail(
                format!("node {node}"),
                format!(
                    "no node '{node}' in this cluster (nodes: {})",
                    names.join(", ")
                ),
                format!(
                    "set proxmox.node (or the VM's proxmox_node) to one of: {}",
                    names.join(", ")
                ),
            )),
            None => {}
        }
    }

    for (path, privs) in required_privileges(major, input) {
        let effective = client.permissions(Some(&path)).await;
        match effective {
            Ok(perms) => {
                let have = perms.get(&path).cloned().unwrap_or_default();
                let mut missing: Vec<&str> = privs
                    .iter()
                    .copied()
                    .filter(|p| !have.contains_key(*p))
                    .collect();
                // download-url accepts Sys.Audit+Sys.Modify on / instead of Sys.AccessNetwork on the node.
                if missing == ["Sys.AccessNetwork"]
                    && let Ok(root) = client.permissions(Some("/")).await
                {
                    let r = root.get("/").cloned().unwrap_or_default();
                    if r.contains_key("Sys.Audit") && r.contains_key("Sys.Modify") {
                        missing.clear();
                    }
                }
                if missing.is_empty() {
                    checks.push(Check::pass(format!("privileges {path}"), privs.join(", ")));
                } else if path == VM_GRANT_PATH {
                    checks.push(vm_grant_check(client, input, &privs, &missing).await);
                } else {
                    checks.push(Check::fail(
                        format!("privileges {path}"),
                        format!(
                            "token {} lacks {} on {path}",
                            client.token_id(),
                            missing.join(", ")
                        ),
                        role_fix(client.token_id(), &path, &missing),
                    ));
                }
            }
            Err(e) => checks.push(Check::fail(
                format!("privileges {path}"),
                e.to_string(),
                "the token must be able to read its own permissions (GET /access/permissions)",
            )),
        }
    }

    checks.push(iso_delete_check(client, &input.iso_storage).await);

    // The ISO storage of every host that boots a VM: each host boots from its own copy.
    let mut iso_hosts: Vec<&str> = vec![input.node.as_str()];
    for vm in &input.vms {
        if !iso_hosts.contains(&vm.node.as_str()) {
            iso_hosts.push(vm.node.as_str());
        }
    }
    for host in iso_hosts.into_iter().filter(|h| node_ok.contains(h)) {
        match client.storages(host, None).await {
            Ok(stores) => {
                let mut check = iso_check(&stores, &input.iso_storage);
                if host != input.node {
                    check.name = format!("{} on {host}", check.name);
                }
                checks.push(check);
            }
            Err(e) => checks.push(Check::fail(
                format!("iso storage on {host}"),
                e.to_string(),
                "grant Datastore.Audit on the storage",
            )),
        }
    }
    let mut seen = Vec::new();
    for vm in &input.vms {
        if !node_ok.contains(&vm.node.as_str())
            || seen.contains(&(vm.node.clone(), vm.storage.clone(), vm.bridge.clone()))
        {
            continue;
        }
        seen.push((vm.node.clone(), vm.storage.clone(), vm.bridge.clone()));
        match client.storages(&vm.node, None).await {
            Ok(stores) => checks.push(vm_storage_check(&stores, &vm.storage, &vm.node)),
            Err(e) => checks.push(Check::fail(
                format!("vm storage {}", vm.storage),
                e.to_string(),
                "grant Datastore.Audit on the storage",
            )),
        }
        match client.node_network(&vm.node, None).await {
            Ok(ifaces) => checks.push(bridge_check(&ifaces, vm)),
            Err(e) => checks.push(Check::fail(
                format!("bridge {}", vm.bridge),
                e.to_string(),
                "the token must list the node's network",
            )),
        }
    }
    DoctorReport {
        pve_version: Some(version.version),
        checks,
    }
}

fn content_fix(store: &StorageInfo, add: &str) -> String {
    let mut content: Vec<&str> = store
        .content
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    content.push(add);
    format!(
        "allow it: `pvesm set {} --content {}` (Datacenter → Storage → {} → Content)",
        store.storage,
        content.join(","),
        store.storage
    )
}

fn iso_check(stores: &[StorageInfo], id: &str) -> Check {
    let name = format!("iso storage {id}");
    let Some(s) = stores.iter().find(|s| s.storage == id) else {
        let visible: Vec<&str> = stores
            .iter()
            .filter(|s| s.accepts("iso"))
            .map(|s| s.storage.as_str())
            .collect();
        return Check::fail(
            name,
            format!("storage '{id}' does not exist or the token cannot see it (Datastore.Audit)"),
            format!(
                "set proxmox.iso_storage to a storage with content iso (visible: {})",
                visible.join(", ")
            ),
        );
    };
    if !s.accepts("iso") {
        return Check::fail(
            name,
            format!(
                "storage '{id}' is not configured for content-type 'iso' (content: {})",
                s.content
            ),
            content_fix(s, "iso"),
        );
    }
    if !FILE_BASED.contains(&s.kind.as_str()) {
        return Check::fail(
            name,
            format!(
                "storage '{id}' is of type '{}', not a file based storage; download-url cannot write to it",
                s.kind
            ),
            "use a directory-like storage such as `local` for the ISO",
        );
    }
    Check::pass(name, format!("type {}, content {}", s.kind, s.content))
}

fn vm_storage_check(stores: &[StorageInfo], id: &str, node: &str) -> Check {
    let name = format!("vm storage {id}");
    let Some(s) = stores.iter().find(|s| s.storage == id) else {
        let visible: Vec<&str> = stores
            .iter()
            .filter(|s| s.accepts("images"))
            .map(|s| s.storage.as_str())
            .collect();
        return Check::fail(
            name,
            format!("storage '{id}' does not exist on node '{node}' or the token cannot see it"),
            format!(
                "set the node's disk.storage to a storage with content images (visible: {})",
                visible.join(", ")
            ),
        );
    };
    if !s.accepts("images") {
        return Check::fail(
            name,
            format!(
                "storage '{id}' does not support vm images (content: {})",
                s.content
            ),
            content_fix(s, "images"),
        );
    }
    Check::pass(name, format!("type {}, content {}", s.kind, s.content))
}

fn bridge_check(ifaces: &[NetworkInterface], vm: &DoctorVm) -> Check {
    let name = format!("bridge {}", vm.bridge);
    let bridges: Vec<&NetworkInterface> = ifaces
        .iter()
        .filter(|i| i.kind == "bridge" || i.kind == "OVSBridge")
        .collect();
    let Some(b) = bridges.iter().find(|b| b.iface == vm.bridge) else {
        let names: Vec<&str> = bridges.iter().map(|b| b.iface.as_str()).collect();
        return Check::fail(
            name,
            format!(
                "bridge '{}' does not exist on node '{}' (bridges: {})",
                vm.bridge,
                vm.node,
                names.join(", ")
            ),
            format!(
                "set the node's network.bridge to one of: {}, or create it under System → Network",
                names.join(", ")
            ),
        );
    };
    if vm.vlan.is_some() && !b.bridge_vlan_aware && b.kind == "bridge" {
        return Check::warn(
            name,
            format!(
                "bridge '{}' is not VLAN aware but VLAN {} is configured",
                vm.bridge,
                vm.vlan.unwrap_or(0)
            ),
            "tick \"VLAN aware\" on the bridge (bridge-vlan-aware yes in /etc/network/interfaces)",
        );
    }
    Check::pass(name, format!("bridge '{}' exists", vm.bridge))
}
