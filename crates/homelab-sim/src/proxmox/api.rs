//! Endpoint behaviour of the simulated node: what each validated request does to the state, with PVE's
//! synchronous error texts (500 dies, 400 parameter errors, 403 permission errors) and UPID tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::download;
use super::formats::{is_drive_slot, is_unicast_mac, parse_boolean};
use super::state::{Shared, Volume, World, now_epoch, work};
use super::{VmBootEvent, tasks_api};

/// A PVE error answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub errors: Option<BTreeMap<String, String>>,
}

impl ApiError {
    /// A plain `die` in a handler: HTTP 500.
    pub fn die(message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            message: message.into(),
            errors: None,
        }
    }

    /// `raise_param_exc`: HTTP 400 "Parameter verification failed." with per-parameter errors.
    pub fn params(errors: BTreeMap<String, String>) -> Self {
        ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors: Some(errors),
        }
    }

    pub fn param(name: &str, text: impl Into<String>) -> Self {
        Self::params(BTreeMap::from([(name.to_string(), text.into())]))
    }

    /// `raise_perm_exc`: HTTP 403.
    pub fn perm(message: impl Into<String>) -> Self {
        ApiError {
            status: 403,
            message: message.into(),
            errors: None,
        }
    }
}

/// A successful answer: `data`, plus `total` for some lists.
pub(crate) struct Reply {
    pub data: Value,
    pub total: Option<u64>,
}

impl Reply {
    pub fn data(data: Value) -> Self {
        Reply { data, total: None }
    }
}

pub(crate) type ApiResult = Result<Reply, ApiError>;

/// Who is calling: the token's user (`user@realm`) and token name.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user: String,
    pub token: String,
}

impl Caller {
    pub fn full(&self) -> String {
        format!("{}!{}", self.user, self.token)
    }
}

fn p<'a>(params: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    params.get(key).map(String::as_str).unwrap_or("")
}

fn vmid_of(params: &BTreeMap<String, String>) -> u32 {
    p(params, "vmid").parse().unwrap_or(0)
}

fn flag(params: &BTreeMap<String, String>, key: &str) -> bool {
    params
        .get(key)
        .and_then(|v| parse_boolean(v))
        .unwrap_or(false)
}

/// Dispatches a validated, authorised request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    key: &str,
    params: &BTreeMap<String, String>,
    caller: &Caller,
) -> ApiResult {
    // A VM lives on one node: asked for on another, PVE finds no config file there.
    if key.contains("/qemu/{vmid}")
        && let Some(node) = params.get("node")
    {
        let w = shared.world();
        let vmid = vmid_of(params);
        if w.vms.get(&vmid).is_some_and(|vm| &vm.node != node) {
            return Err(ApiError::die(format!(
                "Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )));
        }
    }
    match key {
        "GET /version" => {
            let w = shared.world();
            Ok(Reply::data(
                json!({"version": w.version.full(), "release": w.version.release(), "repoid": "5e1f2c3a"}),
            ))
        }
        "GET /nodes" => {
            let w = shared.world();
            let nodes: Vec<Value> = w
                .nodes
                .iter()
                .map(|node| {
                    json!({
                        "node": node, "status": "online", "type": "node", "id": format!("node/{node}"),
                        "ssl_fingerprint": w.fingerprint, "maxcpu": 8, "cpu": 0.03,
                        "maxmem": 34359738368u64, "mem": 4294967296u64, "uptime": 86400, "level": ""
                    })
                })
                .collect();
            Ok(Reply::data(Value::Array(nodes)))
        }
        "GET /nodes/{node}/network" => Ok(network(&shared.world(), params)),
        "GET /nodes/{node}/storage" => Ok(storage_list(&shared.world(), params)),
        "GET /storage" => Ok(storage_config(&shared.world(), params)),
        "GET /nodes/{node}/storage/{storage}/content" => storage_content(&shared.world(), params),
        "POST /nodes/{node}/storage/{storage}/download-url" => {
            download::start(shared, params, caller)
        }
        "DELETE /nodes/{node}/storage/{storage}/content/{volume}" => {
            delete_volume(shared, params, caller)
        }
        "GET /cluster/nextid" => nextid(&shared.world(), params),
        "GET /nodes/{node}/qemu" => Ok(vm_list(&shared.world(), p(params, "node"))),
        "POST /nodes/{node}/qemu" => create_vm(shared, params, caller),
        "GET /nodes/{node}/qemu/{vmid}/config" => vm_config(shared, params),
        "PUT /nodes/{node}/qemu/{vmid}/config" => update_config(shared, params, caller, false),
        "POST /nodes/{node}/qemu/{vmid}/config" => update_config(shared, params, caller, true),
        "GET /nodes/{node}/qemu/{vmid}/status/current" => vm_status(&shared.world(), params),
        "POST /nodes/{node}/qemu/{vmid}/status/start" => start_vm(shared, params, caller),
        "POST /nodes/{node}/qemu/{vmid}/status/stop" => stop_vm(shared, params, caller, "qmstop"),
        "POST /nodes/{node}/qemu/{vmid}/status/shutdown" => {
            stop_vm(shared, params, caller, "qmshutdown")
        }
        "DELETE /nodes/{node}/qemu/{vmid}" => delete_vm(shared, params, caller),
        "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces" => {
            agent(shared, params, true).await
        }
        "POST /nodes/{node}/qemu/{vmid}/agent/ping" => agent(shared, params, false).await,
        "GET /nodes/{node}/tasks/{upid}/status" => tasks_api::status(&shared.world(), params),
        "GET /nodes/{node}/tasks/{upid}/log" => tasks_api::log(&shared.world(), params),
        "DELETE /nodes/{node}/tasks/{upid}" => tasks_api::stop(&mut shared.world(), params),
        "GET /nodes/{node}/tasks" => Ok(tasks_api::list(&shared.world(), params)),
        "GET /access/permissions" => {
            let w = shared.world();
            let path = params.get("path").map(String::as_str);
            Ok(Reply::data(
                serde_json::to_value(w.acl.dump(path)).unwrap_or(Value::Null),
            ))
        }
        other => Err(ApiError {
            status: 501,
            message: format!("Method '{other}' not implemented by the simulator"),
            errors: None,
        }),
    }
}

fn network(w: &World, params: &BTreeMap<String, String>) -> Reply {
    let filter = params.get("type").map(String::as_str);
    let items: Vec<Value> = w
        .interfaces
        .iter()
        .filter(|i| match filter {
            None => true,
            Some("any_bridge") | Some("any_local_bridge") => i.kind == "bridge" || i.kind == "OVSBridge",
            Some(t) => i.kind == t,
        })
        .map(|i| {
            let mut v = json!({"iface": i.name, "type": i.kind, "active": 1, "autostart": 1, "families": ["inet"], "method": "manual"});
            if i.kind == "bridge" {
                v["bridge_ports"] = json!("eno1");
                if i.vlan_aware {
                    v["bridge_vlan_aware"] = json!(1);
                }
            }
            v
        })
        .collect();
    Reply::data(Value::Array(items))
}

fn storage_list(w: &World, params: &BTreeMap<String, String>) -> Reply {
    let content = params.get("content");
    let only = params.get("storage");
    let items: Vec<Value> = w
        .storages_on(p(params, "node"))
        .filter(|s| content.is_none_or(|c| s.content.contains(c)))
        .filter(|s| only.is_none_or(|o| &s.id == o))
        .filter(|s| {
            let privs = w.acl.effective(&format!("/storage/{}", s.id));
            privs.contains("Datastore.Audit") || privs.contains("Datastore.AllocateSpace")
        })
        .map(|s| {
            let used = s.used();
            json!({
                "storage": s.id, "type": s.kind, "content": s.content.iter().cloned().collect::<Vec<_>>().join(","),
                "active": 1, "enabled": 1, "shared": u8::from(s.shared), "total": s.total, "used": used,
                "avail": s.total.saturating_sub(used), "used_fraction": used as f64 / s.total as f64
            })
        })
        .collect();
    Reply::data(Value::Array(items))
}

/// `GET /storage`: the cluster's storage definitions (`storage.cfg`), once each however many nodes have
/// their own copy, with `shared` and `nodes` as configured; only those the token may audit.
fn storage_config(w: &World, params: &BTreeMap<String, String>) -> Reply {
    let only_type = params.get("type");
    // `api_storage_config` puts the digest of the whole storage.cfg on every entry.
    let cfg_digest = digest(
        &w.storages
            .values()
            .map(|s| (s.id.clone(), s.kind.clone()))
            .collect(),
    );
    let mut seen = std::collections::BTreeSet::new();
    let items: Vec<Value> = w
        .storages
        .values()
        .filter(|s| seen.insert(s.id.clone()))
        .filter(|s| only_type.is_none_or(|t| &s.kind == t))
        .filter(|s| {
            let privs = w.acl.effective(&format!("/storage/{}", s.id));
            privs.contains("Datastore.Audit") || privs.contains("Datastore.AllocateSpace")
        })
        .map(|s| {
            let mut v = json!({
                "storage": s.id, "type": s.kind,
                "content": s.content.iter().cloned().collect::<Vec<_>>().join(","),
                "digest": cfg_digest,
            });
            if !s.path.is_empty() {
                v["path"] = json!(s.path);
            }
            // A network storage is shared by its type; `shared` is written only for a local type marked so.
            if s.shared && !matches!(s.kind.as_str(), "nfs" | "cifs" | "cephfs" | "rbd" | "pbs") {
                v["shared"] = json!(1);
            }
            if !s.nodes.is_empty() {
                v["nodes"] = json!(s.nodes.join(","));
            }
            v
        })
        .collect();
    Reply::data(Value::Array(items))
}

fn storage_content(w: &World, params: &BTreeMap<String, String>) -> ApiResult {
    let id = p(params, "storage");
    let s = w
        .storage(p(params, "node"), id)
        .ok_or_else(|| ApiError::die(format!("storage '{id}' does not exist")))?;
    let content = params.get("content");
    let vmid: Option<u32> = params.get("vmid").and_then(|v| v.parse().ok());
    let items: Vec<Value> = s
        .volumes
        .iter()
        .filter(|(_, v)| content.is_none_or(|c| &v.content == c))
        .filter(|(_, v)| vmid.is_none_or(|id| v.vmid == Some(id)))
        .map(|(name, v)| {
            let mut item = json!({"volid": format!("{id}:{name}"), "content": v.content, "format": v.format, "size": v.size, "ctime": v.ctime});
            if let Some(vmid) = v.vmid {
                item["vmid"] = json!(vmid);
            }
            item
        })
        .collect();
    Ok(Reply::data(Value::Array(items)))
}

fn delete_volume(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
) -> ApiResult {
    let mut w = shared.world();
    let id = p(params, "storage").to_string();
    w.acl
        .require(
            &format!("/storage/{id}"),
            &["Datastore.Allocate".to_string()],
            false,
        )
        .map_err(ApiError::perm)?;
    let volume = p(params, "volume");
    let name = volume
        .strip_prefix(&format!("{id}:"))
        .unwrap_or(volume)
        .to_string();
    let node = p(params, "node").to_string();
    let key = w
        .storage_key(&node, &id)
        .ok_or_else(|| ApiError::die(format!("storage '{id}' does not exist")))?;
    if !w
        .storages
        .get(&key)
        .is_some_and(|s| s.volumes.contains_key(&name))
    {
        return Err(ApiError::die(format!(
            "volume '{id}:{name}' does not exist"
        )));
    }
    let upid = w.new_task_on(&node, "imgdel", &name, &caller.full());
    let shared2 = shared.clone();
    let task = upid.clone();
    drop(w);
    tokio::spawn(async move {
        work(shared2.timing.task_duration / 2).await;
        let mut w = shared2.world();
        if let Some(s) = w.storages.get_mut(&key) {
            s.volumes.remove(&name);
        }
        w.task_log(&task, format!("Removed volume '{id}:{name}'"));
        w.finish_task(&task, Ok(0));
    });
    Ok(Reply::data(json!(upid)))
}

fn nextid(w: &World, params: &BTreeMap<String, String>) -> ApiResult {
    if let Some(v) = params.get("vmid") {
        let id: u32 = v.parse().unwrap_or(0);
        if w.vms.contains_key(&id) {
            return Err(ApiError::param("vmid", format!("VM {id} already exists")));
        }
        // PVE echoes the parameter, i.e. a string.
        return Ok(Reply::data(json!(v)));
    }
    let mut id = 100u32;
    while w.vms.contains_key(&id) {
        id += 1;
    }
    Ok(Reply::data(json!(id)))
}

fn vm_list(w: &World, node: &str) -> Reply {
    let items: Vec<Value> = w
        .vms
        .values()
        .filter(|vm| vm.node == node)
        .filter(|vm| w.acl.effective(&format!("/vms/{}", vm.vmid)).contains("VM.Audit"))
        .map(|vm| {
            let mut v = json!({"vmid": vm.vmid, "status": if vm.running { "running" } else { "stopped" },
                "name": vm.config.get("name").cloned().unwrap_or_else(|| format!("VM {}", vm.vmid)),
                "cpus": vm.config.get("cores").and_then(|c| c.parse::<u32>().ok()).unwrap_or(1)});
            if let Some(l) = &vm.lock {
                v["lock"] = json!(l);
            }
            if let Some(t) = vm.config.get("tags") {
                v["tags"] = json!(t);
            }
            v
        })
        .collect();
    Reply::data(Value::Array(items))
}

fn missing_config(w: &World, vmid: u32) -> ApiError {
    ApiError::die(format!(
        "Configuration file '{}' does not exist",
        w.config_path(vmid)
    ))
}

fn check_lock(w: &World, vmid: u32) -> Result<(), ApiError> {
    match w.vms.get(&vmid).and_then(|vm| vm.lock.clone()) {
        Some(lock) => Err(ApiError::die(format!("VM is locked ({lock})"))),
        None => Ok(()),
    }
}

/// The privilege a config option needs (`None`: no extra check; `Some("root")`: root only).
fn option_privilege(key: &str, value: &str) -> Option<&'static str> {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    match base {
        "node" | "vmid" | "start" | "pool" | "storage" | "unique" | "force" | "archive"
        | "live-restore" | "bwlimit" | "digest" | "delete" | "revert" | "skiplock"
        | "background_delay" | "ha-managed" => None,
        "cores" | "sockets" | "cpu" | "vcpus" | "cpulimit" | "cpuunits" | "affinity" | "numa" => {
            Some("VM.Config.CPU")
        }
        "memory" | "balloon" | "shares" => Some("VM.Config.Memory"),
        "bios" | "machine" | "scsihw" | "vga" | "acpi" | "kvm" | "tablet" | "arch" | "hotplug"
        | "keyboard" | "localtime" | "smbios" | "vmgenid" | "rng" | "watchdog" | "audio"
        | "usb" | "serial" | "parallel" => Some("VM.Config.HWType"),
        "net" => Some("VM.Config.Network"),
        "ide" | "sata" if value.contains("media=cdrom") => Some("VM.Config.CDROM"),
        "scsi" | "virtio" | "sata" | "ide" | "efidisk" | "tpmstate" | "unused" => {
            Some("VM.Config.Disk")
        }
        "ipconfig" | "ciuser" | "cipassword" | "citype" | "ciupgrade" | "nameserver"
        | "searchdomain" | "sshkeys" | "cicustom" => Some("VM.Config.Cloudinit"),
        "name" | "ostype" | "onboot" | "agent" | "boot" | "bootdisk" | "description" | "tags"
        | "protection" | "startup" | "template" | "freeze" | "reboot" | "startdate" | "tdf"
        | "migrate_speed" | "migrate_downtime" | "lock" | "spice_enhancements" | "allow-ksm"
        | "hugepages" | "keephugepages" => Some("VM.Config.Options"),
        _ => Some("root"),
    }
}

fn first_part(value: &str) -> &str {
    value.split(',').next().unwrap_or("")
}

fn prop(value: &str, key: &str) -> Option<String> {
    value
        .split(',')
        .find_map(|part| part.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// A new-volume spec `STORE:SIZE`.
fn new_volume(value: &str) -> Option<(String, f64)> {
    let (store, size) = first_part(value).split_once(':')?;
    let gib: f64 = size.parse().ok()?;
    Some((store.to_string(), gib))
}

/// Option-level permissions and storage/bridge checks shared by create and config updates.
fn check_options(w: &World, vmid: u32, params: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let vm_path = format!("/vms/{vmid}");
    let node = p(params, "node");
    for (key, value) in params {
        match option_privilege(key, value) {
            None => {}
            Some("root") => {
                return Err(ApiError::perm(format!("only root can set '{key}' config")));
            }
            Some(privilege) => w
                .acl
                .require(&vm_path, &[privilege.to_string()], false)
                .map_err(ApiError::perm)?,
        }
        if key == "startup" {
            w.acl
                .require("/", &["Sys.Modify".to_string()], false)
                .map_err(ApiError::perm)?;
        }
        if key.starts_with("net")
            && let Some(bridge) = prop(value, "bridge")
        {
            let mut path = format!("/sdn/zones/localnetwork/{bridge}");
            if let Some(tag) = prop(value, "tag") {
                path.push_str(&format!("/{tag}"));
            }
            w.acl
                .require(&path, &["SDN.Use".to_string()], false)
                .map_err(ApiError::perm)?;
        }
        if is_drive_slot(key) {
            let file = first_part(value);
            // `create_disks` allocates a cloud-init drive without the storage checks of a disk.
            let cloudinit =
                file == "cloudinit" || file.split_once(':').is_some_and(|(_, v)| v == "cloudinit");
            if file == "none" || file == "cdrom" || file.starts_with('/') || cloudinit {
                continue;
            }
            if let Some((store, _)) = new_volume(value).filter(|_| !value.contains("media=cdrom")) {
                let s = w
                    .storage(node, &store)
                    .ok_or_else(|| ApiError::die(format!("storage '{store}' does not exist")))?;
                w.acl
                    .require(
                        &format!("/storage/{store}"),
                        &["Datastore.AllocateSpace".to_string()],
                        false,
                    )
                    .map_err(ApiError::perm)?;
                if !s.content.contains("images") {
                    return Err(ApiError::param(
                        "storage",
                        format!("storage '{store}' does not support vm images"),
                    ));
                }
            } else if let Some((store, _)) = file.split_once(':') {
                if w.storage(node, store).is_none() {
                    return Err(ApiError::die(format!("storage '{store}' does not exist")));
                }
                w.acl
                    .require(
                        &format!("/storage/{store}"),
                        &[
                            "Datastore.AllocateSpace".to_string(),
                            "Datastore.Audit".to_string(),
                        ],
                        true,
                    )
                    .map_err(ApiError::perm)?;
            }
        }
    }
    Ok(())
}

fn create_vm(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
) -> ApiResult {
    let vmid = vmid_of(params);
    let mut w = shared.world();
    let pool = params.get("pool").cloned();
    if let Some(pool) = &pool
        && !w.pools.contains_key(pool)
    {
        return Err(ApiError::perm(format!("pool '{pool}' does not exist")));
    }
    // `VM.Allocate` on /vms/{vmid} or on the pool; PVE checks quietly and then raises a bare 403.
    let allowed = w
        .acl
        .require(&format!("/vms/{vmid}"), &["VM.Allocate".to_string()], false)
        .is_ok()
        || pool.as_ref().is_some_and(|p| {
            w.acl
                .require(&format!("/pool/{p}"), &["VM.Allocate".to_string()], false)
                .is_ok()
        });
    if !allowed {
        return Err(ApiError::perm("Permission check failed"));
    }
    check_options(&w, vmid, params)?;
    if let Some(existing) = w.vms.get(&vmid) {
        return Err(ApiError::die(format!(
            "unable to create VM {vmid} - VM {vmid} already exists on node '{}'",
            existing.node
        )));
    }
    let node = p(params, "node").to_string();
    w.next_pid += 1;
    let pid = w.next_pid;
    // `create_and_lock_config` runs in the API call: the config holds only `lock: create` until the worker
    // has allocated the disks and writes the whole config.
    w.vms.insert(
        vmid,
        super::state::Vm {
            vmid,
            node: node.clone(),
            config: BTreeMap::new(),
            running: false,
            lock: Some("create".into()),
            started_at: None,
            pid,
            address: None,
            flock: false,
            firmware: Default::default(),
            boot_refused: None,
        },
    );
    let upid = w.new_task_on(&node, "qmcreate", &vmid.to_string(), &caller.full());
    let injected = w.faults.take_task_failure("qmcreate");
    let slow = w.faults.slowdown("qmcreate");
    drop(w);
    let shared2 = shared.clone();
    let params = params.clone();
    let task = upid.clone();
    tokio::spawn(async move {
        held(&shared2, "qmcreate").await;
        // A worker stopped meanwhile (`DELETE …/tasks/{upid}`) died where it was: `lock: create` stays.
        if shared2
            .world()
            .tasks
            .get(&task)
            .is_some_and(|t| t.exitstatus.is_some())
        {
            return;
        }
        // The worker takes the flock (`lock_config_full($vmid, 1, …)`) for the disk allocation.
        if let Err(e) = take_flock(&shared2, vmid, std::time::Duration::from_secs(1)).await {
            let mut w = shared2.world();
            w.vms.remove(&vmid);
            w.finish_task(&task, Err(format!("unable to create VM {vmid} - {e}")));
            return;
        }
        work(shared2.timing.task_duration + slow).await;
        let start = flag(&params, "start");
        {
            let mut w = shared2.world();
            if let Some(msg) = injected {
                // The worker unlinks the config of a create that failed.
                w.vms.remove(&vmid);
                w.finish_task(&task, Err(format!("unable to create VM {vmid} - {msg}")));
                return;
            }
            let config = build_config(&mut w, vmid, &params, &task);
            let firmware = super::firmware::SecureBoot::from_config(&config);
            if let Some(vm) = w.vms.get_mut(&vmid) {
                vm.config = config;
                vm.firmware = firmware;
                vm.lock = None;
                vm.flock = false;
            }
            if let Some(pool) = params.get("pool")
                && let Some(members) = w.pools.get_mut(pool)
            {
                members.insert(vmid);
            }
            if !start {
                w.finish_task(&task, Ok(0));
                return;
            }
        }
        // `start=1`: the same task boots the VM; a start failure is only a warning.
        match boot(&shared2, vmid, &task).await {
            Ok(()) => shared2.world().finish_task(&task, Ok(0)),
            Err(e) => {
                let mut w = shared2.world();
                w.task_log(&task, format!("WARN: start failed: {e}"));
                w.finish_task(&task, Ok(1));
            }
        }
    });
    Ok(Reply::data(json!(upid)))
}

/// Waits while tasks of `kind` are held (see `ProxmoxSim::hold_tasks`).
async fn held(shared: &Arc<Shared>, kind: &str) {
    while shared.world().held.contains(kind) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Takes a VM's config flock as `PVE::Tools::lock_file_full` does: waits while another task holds it, at
/// most `timeout`. A VM that is gone needs no flock.
async fn take_flock(
    shared: &Arc<Shared>,
    vmid: u32,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        {
            let mut w = shared.world();
            match w.vms.get_mut(&vmid) {
                None => return Ok(()),
                Some(vm) if !vm.flock => {
                    vm.flock = true;
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn release_flock(w: &mut World, vmid: u32) {
    if let Some(vm) = w.vms.get_mut(&vmid) {
        vm.flock = false;
    }
}

/// `PVE::AbstractConfig::check_lock`: "VM is locked (create)".
fn lock_error(w: &World, vmid: u32) -> Result<(), String> {
    match w.vms.get(&vmid).and_then(|vm| vm.lock.as_deref()) {
        Some(lock) => Err(format!("VM is locked ({lock})")),
        None => Ok(()),
    }
}

/// Runs the body of a power or destroy worker the way qemu-server's workers do: a held task waits, then
/// the config flock is taken (`lock_config`, failing with "can't lock file … - got timeout"), the body
/// runs (it does its own `check_lock`), and the flock is let go.
async fn locked_worker<F, Fut>(
    shared: &Arc<Shared>,
    vmid: u32,
    kind: &str,
    body: F,
) -> Result<u32, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<u32, String>>,
{
    held(shared, kind).await;
    take_flock(shared, vmid, shared.timing.lock_timeout).await?;
    let result = body().await;
    release_flock(&mut shared.world(), vmid);
    result
}

fn random_hex(seed: &str, len: usize) -> String {
    let digest = Sha256::digest(format!("{seed}:{:?}", std::time::Instant::now()).as_bytes());
    hex::encode(digest).chars().take(len).collect()
}

/// The config PVE writes after `qmcreate`: allocated volumes, normalised NICs, generated ids.
fn build_config(
    w: &mut World,
    vmid: u32,
    params: &BTreeMap<String, String>,
    task: &str,
) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    let node = w
        .vms
        .get(&vmid)
        .map_or_else(|| w.node.clone(), |vm| vm.node.clone());
    for (key, value) in params {
        if matches!(
            key.as_str(),
            "node" | "vmid" | "start" | "pool" | "storage" | "unique" | "force" | "bwlimit"
        ) {
            continue;
        }
        let mut value = value.clone();
        if is_drive_slot(key) {
            value = allocate_drive(w, &node, vmid, key, &value, task);
        }
        if key.starts_with("net") {
            value = normalise_nic(&value, vmid);
        }
        config.insert(key.clone(), value);
    }
    if let Some(t) = config.get("tags").cloned() {
        let mut tags: Vec<String> = t
            .split([';', ',', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase())
            .collect();
        tags.sort();
        tags.dedup();
        config.insert("tags".into(), tags.join(";"));
    }
    config.entry("boot".into()).or_insert_with(|| {
        let devs: Vec<&String> = params
            .keys()
            .filter(|k| is_drive_slot(k) && !k.starts_with("efidisk") && !k.starts_with("tpmstate"))
            .collect();
        format!(
            "order={}",
            devs.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(";")
        )
    });
    config.insert("smbios1".into(), format!("uuid={}", crate::random::uuid()));
    config.insert("vmgenid".into(), crate::random::uuid());
    config.insert(
        "meta".into(),
        format!("creation-qemu=10.0.2,ctime={}", now_epoch()),
    );
    config
}

/// `create_disks` for one drive option: a new volume `STORE:SIZE_GIB` is allocated as the storage's next
/// free `vm-N-disk-M` (`find_free_diskname`), `STORE:cloudinit` as the cloud-init volume; anything else (an
/// existing volume, an ISO, `none`) stays as given.
fn allocate_drive(
    w: &mut World,
    node: &str,
    vmid: u32,
    key: &str,
    value: &str,
    task: &str,
) -> String {
    if let Some((store, "cloudinit")) = first_part(value).split_once(':') {
        return cloudinit_drive(w, node, vmid, store, value, task);
    }
    let Some((store, gib)) = new_volume(value).filter(|_| !value.contains("media=cdrom")) else {
        return value.to_string();
    };
    let taken = |n: u32| {
        w.storage(node, &store)
            .is_some_and(|s| s.volumes.contains_key(&format!("vm-{vmid}-disk-{n}")))
    };
    let mut n = 0;
    while taken(n) {
        n += 1;
    }
    let name = format!("vm-{vmid}-disk-{n}");
    let small = key.starts_with("efidisk") || key.starts_with("tpmstate");
    let (size_bytes, size_text) = if small {
        (4u64 << 20, "4M".to_string())
    } else {
        ((gib * (1u64 << 30) as f64) as u64, format!("{gib}G"))
    };
    let mut new = format!("{store}:{name}");
    for r in value.split(',').skip(1) {
        new.push(',');
        new.push_str(r);
    }
    new.push_str(&format!(",size={size_text}"));
    if let Some(s) = w.storage_mut(node, &store) {
        s.volumes.insert(
            name.clone(),
            Volume {
                content: "images".into(),
                size: size_bytes,
                format: "raw".into(),
                ctime: now_epoch(),
                vmid: Some(vmid),
                data: None,
            },
        );
    }
    w.task_log(task, format!("  Logical volume \"{name}\" created."));
    new
}

/// `create_disks` for `STORE:cloudinit`: a 4 MiB `vm-N-cloudinit` volume (qcow2 on a file-based storage,
/// raw on a block one), attached as a CD-ROM; the NoCloud image itself is written at start.
fn cloudinit_drive(
    w: &mut World,
    node: &str,
    vmid: u32,
    store: &str,
    value: &str,
    task: &str,
) -> String {
    let file_based = w.storage(node, store).is_some_and(|s| s.file_based);
    let (name, format) = if file_based {
        (format!("vm-{vmid}-cloudinit.qcow2"), "qcow2")
    } else {
        (format!("vm-{vmid}-cloudinit"), "raw")
    };
    if let Some(s) = w.storage_mut(node, store) {
        s.volumes.insert(
            name.clone(),
            Volume {
                content: "images".into(),
                size: 4 << 20,
                format: format.into(),
                ctime: now_epoch(),
                vmid: Some(vmid),
                data: None,
            },
        );
    }
    let mut out = format!("{store}:{name}");
    for part in value
        .split(',')
        .skip(1)
        .filter(|p| !p.starts_with("media="))
    {
        out.push(',');
        out.push_str(part);
    }
    out.push_str(",media=cdrom");
    w.task_log(task, format!("ide: successfully created disk '{out}'"));
    out
}

/// `virtio=MAC,bridge=…` with a generated `BC:24:11` MAC when none was given (as PVE does).
fn normalise_nic(value: &str, vmid: u32) -> String {
    let mut model = None;
    let mut mac = None;
    let mut rest = Vec::new();
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("model", m)) => model = Some(m.to_string()),
            Some(("macaddr", m)) => mac = Some(m.to_ascii_uppercase()),
            Some((k, v)) if is_unicast_mac(v) && model.is_none() => {
                model = Some(k.to_string());
                mac = Some(v.to_ascii_uppercase());
            }
            None => model = Some(part.to_string()),
            _ => rest.push(part.to_string()),
        }
    }
    let mac = mac.unwrap_or_else(|| {
        let h = random_hex(&format!("{vmid}mac"), 6).to_ascii_uppercase();
        format!("BC:24:11:{}:{}:{}", &h[0..2], &h[2..4], &h[4..6])
    });
    let mut out = format!("{}={mac}", model.unwrap_or_else(|| "virtio".into()));
    for r in rest {
        out.push(',');
        out.push_str(&r);
    }
    out
}

fn digest(config: &BTreeMap<String, String>) -> String {
    let text: String = config.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    hex::encode(Sha256::digest(text.as_bytes()))
        .chars()
        .take(40)
        .collect()
}

fn vm_config(shared: &Arc<Shared>, params: &BTreeMap<String, String>) -> ApiResult {
    let w = shared.world();
    let vmid = vmid_of(params);
    let vm = w.vms.get(&vmid).ok_or_else(|| missing_config(&w, vmid))?;
    let mut out = serde_json::Map::new();
    for (k, v) in &vm.config {
        // Integer- and boolean-typed options come back as JSON numbers, the rest as strings.
        let typed = shared
            .schema
            .param_schema("POST /nodes/{node}/qemu", k)
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .filter(|t| matches!(*t, "integer" | "boolean" | "number"))
            .and_then(|_| v.parse::<f64>().ok())
            .map(|n| {
                if n.fract() == 0.0 {
                    json!(n as i64)
                } else {
                    json!(n)
                }
            });
        out.insert(k.clone(), typed.unwrap_or_else(|| json!(v)));
    }
    out.insert("digest".into(), json!(digest(&vm.config)));
    if let Some(l) = &vm.lock {
        out.insert("lock".into(), json!(l));
    }
    Ok(Reply::data(Value::Object(out)))
}

fn update_config(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
    as_task: bool,
) -> ApiResult {
    let vmid = vmid_of(params);
    let mut w = shared.world();
    if !w.vms.contains_key(&vmid) {
        return Err(missing_config(&w, vmid));
    }
    check_lock(&w, vmid)?;
    check_options(&w, vmid, params)?;
    let deletes: Vec<String> = params
        .get("delete")
        .map(|d| {
            d.split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for d in &deletes {
        if params.contains_key(d) {
            return Err(ApiError::param(
                "delete",
                format!("cannot set and delete '{d}' at the same time"),
            ));
        }
    }
    let Some(vm) = w.vms.get_mut(&vmid) else {
        return Err(ApiError::die("VM vanished"));
    };
    if let Some(d) = params.get("digest")
        && *d != digest(&vm.config)
    {
        return Err(ApiError::die(
            "detected modified configuration - file changed by other user? Try again.",
        ));
    }
    for d in &deletes {
        vm.config.remove(d);
    }
    let mut pending = Vec::new();
    for (k, v) in params {
        if matches!(
            k.as_str(),
            "node" | "vmid" | "delete" | "digest" | "revert" | "skiplock" | "background_delay"
        ) {
            continue;
        }
        pending.push((k.clone(), v.clone()));
    }
    // `update_vm_api` allocates new volumes (`create_disks`) as it writes them.
    let node = w
        .vms
        .get(&vmid)
        .map_or_else(|| w.node.clone(), |vm| vm.node.clone());
    let task = if as_task {
        Some(w.new_task_on(&node, "qmconfig", &vmid.to_string(), &caller.full()))
    } else {
        None
    };
    for (k, v) in pending {
        let v = if k.starts_with("net") {
            normalise_nic(&v, vmid)
        } else if is_drive_slot(&k) {
            allocate_drive(&mut w, &node, vmid, &k, &v, task.as_deref().unwrap_or(""))
        } else {
            v
        };
        if let Some(vm) = w.vms.get_mut(&vmid) {
            vm.config.insert(k, v);
        }
    }
    let Some(upid) = task else {
        return Ok(Reply::data(Value::Null));
    };
    w.finish_task(&upid, Ok(0));
    Ok(Reply::data(json!(upid)))
}

fn vm_status(w: &World, params: &BTreeMap<String, String>) -> ApiResult {
    let vmid = vmid_of(params);
    let vm = w.vms.get(&vmid).ok_or_else(|| missing_config(w, vmid))?;
    let uptime = vm
        .started_at
        .filter(|_| vm.running)
        .map(|s| s.elapsed().as_secs())
        .unwrap_or(0);
    let mut v = json!({
        "vmid": vmid, "status": if vm.running { "running" } else { "stopped" },
        "qmpstatus": if vm.running { "running" } else { "stopped" },
        "agent": if vm.agent_enabled() { 1 } else { 0 },
        "cpus": vm.config.get("cores").and_then(|c| c.parse::<u32>().ok()).unwrap_or(1),
        "uptime": uptime, "ha": {"managed": 0}
    });
    if let Some(n) = vm.config.get("name") {
        v["name"] = json!(n);
    }
    if let Some(t) = vm.config.get("tags") {
        v["tags"] = json!(t);
    }
    if let Some(l) = &vm.lock {
        v["lock"] = json!(l);
    }
    if vm.running {
        v["pid"] = json!(vm.pid);
        v["running-machine"] = json!("pc-q35-10.0+pve1");
        v["running-qemu"] = json!("10.0.2");
    }
    Ok(Reply::data(v))
}

/// Checks what a real start would trip over, then powers the VM on and reports the boot.
async fn boot(shared: &Arc<Shared>, vmid: u32, task: &str) -> Result<(), String> {
    let event = {
        let mut w = shared.world();
        let vm = w.vms.get(&vmid).cloned().ok_or_else(|| {
            format!(
                "Configuration file '{}' does not exist",
                w.config_path(vmid)
            )
        })?;
        if vm.running {
            return Err(format!("VM {vmid} already running"));
        }
        for (k, v) in &vm.config {
            if k.starts_with("net")
                && let Some(bridge) = prop(v, "bridge")
                && !w.interfaces.iter().any(|i| i.name == bridge)
            {
                return Err(format!("bridge '{bridge}' does not exist"));
            }
            if is_drive_slot(k) {
                let file = first_part(v);
                if let Some((store, name)) = file.split_once(':') {
                    let exists = w
                        .storage(&vm.node, store)
                        .is_some_and(|s| s.volumes.contains_key(name));
                    if !exists {
                        return Err(format!("volume '{file}' does not exist"));
                    }
                }
            }
        }
        let iso = vm
            .config
            .iter()
            // The boot medium, not the cloud-init drive (a CD-ROM too, but nothing boots from it).
            .find(|(k, v)| {
                is_drive_slot(k)
                    && v.contains("media=cdrom")
                    && first_part(v) != "none"
                    && !first_part(v).contains("cloudinit")
            })
            .map(|(_, v)| first_part(v).to_string());
        // QEMU starts either way; whether anything boots is the firmware's call (Secure Boot).
        let medium = iso.as_deref().and_then(|volid| {
            let (store, name) = volid.split_once(':')?;
            w.storage(&vm.node, store)?.volumes.get(name)?.data.clone()
        });
        let signer = medium
            .as_deref()
            .and_then(|data| super::firmware::signer(data));
        let mut firmware = vm.firmware.clone();
        let refused = firmware.boot(signer.as_deref()).err();
        let mac = vm.mac();
        // A guest that never boots never asks DHCP for an address (nor reads its cloud-init drive).
        let address = match refused {
            None => w.boot_address(vmid, medium.as_deref().map(Vec::as_slice)),
            Some(_) => None,
        };
        if let Some(vm) = w.vms.get_mut(&vmid) {
            vm.running = true;
            vm.started_at = Some(std::time::Instant::now());
            vm.address = address;
            vm.firmware = firmware;
            vm.boot_refused = refused.clone();
        }
        w.task_log(task, format!("VM {vmid} started"));
        if refused.is_some() {
            return Ok(());
        }
        let event = VmBootEvent {
            node: vm.node.clone(),
            vmid,
            name: vm.config.get("name").cloned(),
            mac,
            address,
            iso,
        };
        (event, w.boot_hooks.clone())
    };
    let (event, hooks) = event;
    for hook in hooks {
        hook(&event);
    }
    let _ = shared.boot_tx.send(event);
    Ok(())
}

fn start_vm(shared: &Arc<Shared>, params: &BTreeMap<String, String>, caller: &Caller) -> ApiResult {
    let vmid = vmid_of(params);
    let mut w = shared.world();
    if !w.vms.contains_key(&vmid) {
        return Err(missing_config(&w, vmid));
    }
    // No lock check here: `vm_start` runs in the worker, under the config flock (qemu-server).
    let upid = w.new_task_on(
        p(params, "node"),
        "qmstart",
        &vmid.to_string(),
        &caller.full(),
    );
    let injected = w.faults.take_task_failure("qmstart");
    let slow = w.faults.slowdown("qmstart");
    drop(w);
    let shared2 = shared.clone();
    let task = upid.clone();
    tokio::spawn(async move {
        let result = locked_worker(&shared2, vmid, "qmstart", || async {
            lock_error(&shared2.world(), vmid)?;
            work(shared2.timing.task_duration + slow).await;
            match injected {
                Some(msg) => Err(msg),
                None => boot(&shared2, vmid, &task).await.map(|()| 0),
            }
        })
        .await;
        shared2.world().finish_task(&task, result);
    });
    Ok(Reply::data(json!(upid)))
}

fn stop_vm(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
    kind: &str,
) -> ApiResult {
    let vmid = vmid_of(params);
    let mut w = shared.world();
    if !w.vms.contains_key(&vmid) {
        return Err(missing_config(&w, vmid));
    }
    let upid = w.new_task_on(p(params, "node"), kind, &vmid.to_string(), &caller.full());
    let injected = w.faults.take_task_failure(kind);
    let slow = w.faults.slowdown(kind);
    drop(w);
    let shared2 = shared.clone();
    let task = upid.clone();
    let kind = kind.to_string();
    tokio::spawn(async move {
        let result = locked_worker(&shared2, vmid, &kind, || async {
            // `_do_vm_stop`: a VM that does not run is done (no lock check); a running one is refused
            // while locked.
            if !shared2.world().vms.get(&vmid).is_some_and(|vm| vm.running) {
                return injected.map_or(Ok(0), Err);
            }
            lock_error(&shared2.world(), vmid)?;
            work(shared2.timing.task_duration + slow).await;
            if let Some(msg) = injected {
                return Err(msg);
            }
            if let Some(vm) = shared2.world().vms.get_mut(&vmid) {
                vm.running = false;
                vm.started_at = None;
            }
            Ok(0)
        })
        .await;
        shared2.world().finish_task(&task, result);
    });
    Ok(Reply::data(json!(upid)))
}

fn delete_vm(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    caller: &Caller,
) -> ApiResult {
    let vmid = vmid_of(params);
    let mut w = shared.world();
    let Some(vm) = w.vms.get(&vmid) else {
        return Err(missing_config(&w, vmid));
    };
    // The API call's early checks: protection and power state; the lock is checked in the worker.
    if vm.config.get("protection").is_some_and(|p| p == "1") {
        return Err(ApiError::die(format!(
            "can't remove VM {vmid} - protection mode enabled"
        )));
    }
    if vm.running {
        return Err(ApiError::die(format!(
            "VM {vmid} is running - destroy failed"
        )));
    }
    let upid = w.new_task_on(
        p(params, "node"),
        "qmdestroy",
        &vmid.to_string(),
        &caller.full(),
    );
    let injected = w.faults.take_task_failure("qmdestroy");
    drop(w);
    let shared2 = shared.clone();
    let task = upid.clone();
    tokio::spawn(async move {
        let result = locked_worker(&shared2, vmid, "qmdestroy", || async {
            {
                let mut w = shared2.world();
                if w.vms.get(&vmid).is_some_and(|vm| vm.running) {
                    return Err(format!("VM {vmid} is running - destroy failed"));
                }
                lock_error(&w, vmid)?;
                if let Some(vm) = w.vms.get_mut(&vmid) {
                    vm.lock = Some("destroyed".into());
                }
            }
            work(shared2.timing.task_duration).await;
            let mut w = shared2.world();
            if let Some(msg) = injected {
                if let Some(vm) = w.vms.get_mut(&vmid) {
                    vm.lock = None;
                }
                return Err(msg);
            }
            let mut removed = Vec::new();
            for s in w.storages.values_mut() {
                let names: Vec<String> = s
                    .volumes
                    .iter()
                    .filter(|(_, v)| v.vmid == Some(vmid))
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in names {
                    s.volumes.remove(&n);
                    removed.push(format!("{}:{n}", s.id));
                }
            }
            for r in removed {
                w.task_log(
                    &task,
                    format!("  Logical volume \"{r}\" successfully removed."),
                );
            }
            // `PVE::AccessControl::remove_vm_access`, purge or not: the VM's ACL entries and its pool
            // membership go with it.
            let path = format!("/vms/{vmid}");
            w.acl.entries.retain(|e| e.path != path);
            for members in w.pools.values_mut() {
                members.remove(&vmid);
            }
            w.vms.remove(&vmid);
            Ok(0)
        })
        .await;
        shared2.world().finish_task(&task, result);
    });
    Ok(Reply::data(json!(upid)))
}

async fn agent(
    shared: &Arc<Shared>,
    params: &BTreeMap<String, String>,
    interfaces: bool,
) -> ApiResult {
    let vmid = vmid_of(params);
    let answer = {
        let w = shared.world();
        let vm = w.vms.get(&vmid).ok_or_else(|| missing_config(&w, vmid))?;
        if !vm.config.contains_key("agent") || !vm.agent_enabled() {
            return Err(ApiError::die("No QEMU guest agent configured"));
        }
        if !vm.running {
            return Err(ApiError::die(format!("VM {vmid} is not running")));
        }
        let up = !w.faults.plan.agent_never_answers
            && vm.boot_refused.is_none()
            && vm
                .started_at
                .is_some_and(|s| s.elapsed() >= shared.timing.agent_delay);
        let gate = w.agent_gate.clone();
        up.then(|| (vm.mac(), vm.address)).map(|a| (a, gate))
    };
    // The gate asks the guest (outside the world lock: it looks at the simulated OS).
    let answer = answer.and_then(|(a, gate)| gate.is_none_or(|g| g(vmid)).then_some(a));
    let Some((mac, address)) = answer else {
        // PVE pings the agent for ~3 s before giving up.
        work(shared.timing.agent_timeout).await;
        return Err(ApiError::die("QEMU guest agent is not running"));
    };
    if !interfaces {
        return Ok(Reply::data(json!({"result": {}})));
    }
    let mut list = vec![json!({
        "name": "lo", "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                         {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}]
    })];
    if let Some(mac) = mac {
        let mut addrs = Vec::new();
        if let Some(ip) = address {
            addrs.push(
                json!({"ip-address": ip.to_string(), "ip-address-type": "ipv4", "prefix": 24}),
            );
        }
        addrs.push(json!({"ip-address": "fe80::be24:11ff:feca:fe01", "ip-address-type": "ipv6", "prefix": 64}));
        list.push(
            json!({"name": "ens18", "hardware-address": mac, "ip-addresses": addrs,
            "statistics": {"rx-bytes": 204800, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 300,
                           "tx-bytes": 102400, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 200}}),
        );
    }
    Ok(Reply::data(json!({"result": list})))
}
