//! [`Hypervisor`] over the Proxmox VE client: VmWanted → the create form (OVMF, EFI disk in SecureBoot setup
//! mode, TPM 2.0, q35, cpu host, virtio-scsi, fixed MAC, agent, ISO on ide2, boot disk then cdrom), the VM
//! config back into [`VmLive`] with its lock and the task holding it, and power operations that wait for a
//! VM's lock to clear instead of failing on it.

use std::net::IpAddr;

use homelab_proxmox::{
    Bios, Cdrom, Client, CloudInit, Disk, DownloadRequest, EfiDisk, Error, ErrorKind, Nic,
    TpmState, VmConfig, VmSpec, WaitOptions,
};

use crate::ports::{
    ErrorKind as PortKind, Hypervisor, PortError, PortResult, VmLive, VmLock, VmWanted,
};

pub struct Proxmox {
    pub client: Client,
    pub wait: WaitOptions,
}

pub(crate) fn port_error(e: Error) -> PortError {
    // A certificate that does not verify (CA or fingerprint pin) is no network hiccup: retrying cannot
    // change it, so it is not transient, whatever the client thinks of connection failures.
    if let Error::Transport { detail, .. } = &e
        && detail.contains("certificate")
    {
        return PortError::new(PortKind::Tls, e.to_string());
    }
    // A lock held by a running task clears; one that no task holds (stale) stays until someone acts.
    let stale = matches!(e, Error::StaleLock { .. });
    let transient = !stale
        && (e.is_transient() || matches!(e.kind(), ErrorKind::Locked | ErrorKind::AgentNotReady));
    let kind = match e.kind() {
        _ if transient => PortKind::Transient,
        _ if stale => PortKind::Conflict,
        ErrorKind::NotFound => PortKind::NotFound,
        ErrorKind::AlreadyExists => PortKind::Conflict,
        ErrorKind::Auth => PortKind::Auth,
        _ => PortKind::Other,
    };
    PortError::new(kind, e.to_string())
}

/// The drive slot of the cloud-init drive: the ISO sits on `ide2`, so the NoCloud volume takes `ide0`
/// (Talos finds it by its `cidata` label, whatever the slot).
pub const CLOUDINIT_SLOT: &str = "ide0";

/// The cloud-init drive of a VM with a static address: `ipconfig0` (`ip=CIDR,gw=IP`, the `pve-qm-ipconfig`
/// format), `nameserver` and `searchdomain`, on the system disk's storage.
fn cloudinit(w: &VmWanted) -> Option<CloudInit> {
    let s = w.static_address.as_ref()?;
    Some(CloudInit {
        slot: CLOUDINIT_SLOT.into(),
        storage: w.disk_storage.clone(),
        ipconfig: vec![(0, format!("ip={},gw={}", s.cidr, s.gateway))],
        nameservers: s.nameservers.iter().map(ToString::to_string).collect(),
        searchdomain: s.search_domain.clone(),
    })
}

/// The create request for a Talos VM.
pub fn vm_spec(w: &VmWanted) -> VmSpec {
    let mut disks = vec![Disk {
        slot: "scsi0".into(),
        storage: w.disk_storage.clone(),
        size_gib: u32::try_from(w.disk_gib).unwrap_or(u32::MAX),
        options: vec![
            ("discard".into(), "on".into()),
            ("iothread".into(), "1".into()),
            ("ssd".into(), "1".into()),
        ],
    }];
    // `serial=` (drive format `urlencoded`, at most 60 characters) is what Talos' user volume selects the
    // disk by: the volume name, which validation keeps to `[a-z0-9-]`, at most 34 characters.
    disks.extend(w.extra_disks.iter().enumerate().map(|(i, d)| Disk {
        slot: format!("scsi{}", i + 1),
        storage: d.storage.clone(),
        size_gib: u32::try_from(d.size_gib).unwrap_or(u32::MAX),
        options: vec![
            ("discard".into(), "on".into()),
            ("iothread".into(), "1".into()),
            ("serial".into(), d.serial.clone()),
            ("ssd".into(), "1".into()),
        ],
    }));
    let mut nics = vec![Nic {
        index: 0,
        model: "virtio".into(),
        mac: Some(w.mac.clone()),
        bridge: w.bridge.clone(),
        vlan: w.vlan,
        firewall: false,
    }];
    nics.extend(w.extra_nics.iter().enumerate().map(|(i, n)| Nic {
        index: u8::try_from(i + 1).unwrap_or(u8::MAX),
        model: "virtio".into(),
        mac: n.mac.clone(),
        bridge: n.bridge.clone(),
        vlan: n.vlan,
        firewall: false,
    }));
    VmSpec {
        vmid: w.vm_id,
        name: w.name.clone(),
        cores: w.cores,
        sockets: 1,
        memory_mib: w.memory_mib,
        balloon_mib: Some(0),
        cpu: "host".into(),
        machine: "q35".into(),
        bios: Bios::Ovmf,
        ostype: "l26".into(),
        scsihw: "virtio-scsi-single".into(),
        disks,
        // No pre-enrolled keys in either mode: `pre-enrolled-keys=1` turns Secure Boot on with Microsoft's
        // keys, and the firmware then refuses every Talos ISO (none is Microsoft-signed). Setup mode lets the
        // SecureBoot ISO enrol Sidero's keys, and boots the plain ISO as ordinary UEFI.
        efidisk: Some(EfiDisk {
            storage: w.disk_storage.clone(),
            efitype: "4m".into(),
            pre_enrolled_keys: false,
        }),
        tpmstate: w.tpm.then(|| TpmState {
            storage: w.disk_storage.clone(),
            version: "v2.0".into(),
        }),
        nics,
        cdrom: Some(Cdrom {
            slot: "ide2".into(),
            volid: w.iso_volume.clone(),
        }),
        cloudinit: cloudinit(w),
        boot_order: vec!["scsi0".into(), "ide2".into()],
        agent: true,
        onboot: Some(true),
        tags: w.tags.clone(),
        description: Some("Talos node managed by homelabctl".into()),
    }
}

/// `key=value` options of a property string such as `virtio=BC:…,bridge=vmbr0,tag=20`.
fn options(property: &str) -> Vec<(String, String)> {
    property
        .split(',')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn option(property: &str, key: &str) -> Option<String> {
    options(property)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn size_gib(size: &str) -> Option<u64> {
    let (number, unit) = size.split_at(
        size.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len()),
    );
    let n: u64 = number.parse().ok()?;
    match unit {
        "G" => Some(n),
        "T" => Some(n * 1024),
        "M" => Some(n.div_ceil(1024)),
        _ => None,
    }
}

/// Reads the VM config Proxmox reports into [`VmLive`].
pub fn vm_live(config: &VmConfig, running: bool) -> VmLive {
    let net = config.get("net0").unwrap_or_default();
    let mac = nic_mac(&net);
    let efidisk = config.get("efidisk0").map(|e| {
        (
            option(&e, "efitype").unwrap_or_else(|| "2m".into()),
            option(&e, "pre-enrolled-keys")
                .is_some_and(|v| matches!(v.as_str(), "1" | "on" | "yes" | "true")),
        )
    });
    VmLive {
        name: config.get("name"),
        cores: config.get("cores").and_then(|c| c.parse().ok()),
        memory_mib: config.get("memory").and_then(|m| m.parse().ok()),
        disk_gib: config
            .get("scsi0")
            .and_then(|d| option(&d, "size"))
            .and_then(|s| size_gib(&s)),
        bridge: option(&net, "bridge"),
        vlan: option(&net, "tag").and_then(|t| t.parse().ok()),
        mac,
        iso_volume: config
            .get("ide2")
            .and_then(|i| i.split(',').next().map(str::to_string)),
        bios: Some(config.get("bios").unwrap_or_else(|| "seabios".into())),
        machine: config.get("machine").map(|m| {
            if m.starts_with("pc-q35") {
                "q35".to_string()
            } else {
                m
            }
        }),
        efidisk,
        tpm_version: config.get("tpmstate0").and_then(|t| option(&t, "version")),
        running,
        lock: None,
        static_address: live_static_address(config),
        extra_disks: live_extra_disks(config),
        extra_nics: live_extra_nics(config),
        // PVE stores tags `;`-separated and accepts `,` and spaces on input.
        tags: config
            .get("tags")
            .map(|t| {
                t.split([';', ',', ' '])
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The volume of a drive option (`local-lvm:vm-100-cloudinit,media=cdrom` → `local-lvm:vm-100-cloudinit`).
fn volume_of(property: &str) -> &str {
    property.split(',').next().unwrap_or("")
}

/// The drive slot holding a cloud-init volume, if any (`drive_is_cloudinit`: a volume named
/// `vm-N-cloudinit`, with or without a format suffix).
fn cloudinit_slot(config: &VmConfig) -> Option<String> {
    ["ide0", "ide1", "ide2", "ide3", "sata0", "sata1", "scsi30"]
        .into_iter()
        .find(|slot| {
            config
                .get(slot)
                .is_some_and(|v| volume_of(&v).contains("cloudinit"))
        })
        .map(str::to_string)
}

/// The static address a cloud-init drive carries, in `hardware::static_address_text`'s form.
fn live_static_address(config: &VmConfig) -> Option<String> {
    cloudinit_slot(config)?;
    let ipconfig = config.get("ipconfig0")?;
    let ip = option(&ipconfig, "ip")?;
    let gw = option(&ipconfig, "gw").unwrap_or_default();
    let dns: Vec<String> = config
        .get("nameserver")
        .map(|n| n.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut text = format!("{ip} gw={gw} dns={}", dns.join(","));
    if let Some(domain) = config.get("searchdomain") {
        text.push_str(&format!(" search={domain}"));
    }
    Some(text)
}

/// Extra disks (`scsi1`…`scsi30`) that carry a serial number: `(serial, "storage:SIZEG")`.
fn live_extra_disks(config: &VmConfig) -> Vec<(String, String)> {
    (1..=30)
        .filter_map(|i| config.get(&format!("scsi{i}")))
        .filter_map(|d| {
            let serial = option(&d, "serial")?;
            let storage = volume_of(&d).split(':').next()?.to_string();
            let gib = option(&d, "size").and_then(|s| size_gib(&s))?;
            Some((serial, format!("{storage}:{gib}G")))
        })
        .collect()
}

/// Extra NICs from `net1` up to the last one present, in `hardware::nic_text`'s form.
fn live_extra_nics(config: &VmConfig) -> Vec<Option<String>> {
    let nics: Vec<Option<String>> = (1..32)
        .map(|i| {
            let net = config.get(&format!("net{i}"))?;
            let mac = nic_mac(&net);
            let bridge = option(&net, "bridge").unwrap_or_default();
            let tag = option(&net, "tag").and_then(|t| t.parse().ok());
            Some(crate::hardware::nic_text(&bridge, tag, mac.as_deref()))
        })
        .collect();
    let last = nics.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
    nics.into_iter().take(last).collect()
}

/// The MAC of a NIC property string (`virtio=BC:…` or `macaddr=…`), upper case.
fn nic_mac(net: &str) -> Option<String> {
    options(net)
        .into_iter()
        .find(|(k, _)| {
            matches!(
                k.as_str(),
                "virtio" | "e1000" | "vmxnet3" | "rtl8139" | "macaddr"
            )
        })
        .map(|(_, v)| v.to_ascii_uppercase())
}

impl Hypervisor for Proxmox {
    async fn iso_exists(&self, node: &str, storage: &str, file: &str) -> PortResult<bool> {
        let volid = format!("{storage}:iso/{file}");
        let content = self
            .client
            .storage_content(node, storage, Some("iso"))
            .await
            .map_err(port_error)?;
        Ok(content.iter().any(|v| v.volid == volid))
    }

    async fn download_iso(
        &self,
        node: &str,
        storage: &str,
        file: &str,
        url: &str,
    ) -> PortResult<()> {
        let request = DownloadRequest {
            url: url.to_string(),
            content: "iso".into(),
            filename: file.to_string(),
            checksum: None,
            verify_certificates: true,
        };
        self.client
            .ensure_downloaded(node, storage, &request, &self.wait)
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn storage_shared(&self, node: &str, storage: &str) -> PortResult<bool> {
        let storages = self.client.storages(node, None).await.map_err(port_error)?;
        Ok(storages.iter().any(|s| s.storage == storage && s.shared))
    }

    async fn delete_iso(&self, node: &str, storage: &str, file: &str) -> PortResult<()> {
        let volid = format!("{storage}:iso/{file}");
        if let Some(upid) = self
            .client
            .delete_volume(node, storage, &volid)
            .await
            .map_err(port_error)?
        {
            self.client
                .wait_task(&upid, &self.wait)
                .await
                .map_err(port_error)?;
        }
        Ok(())
    }

    async fn vm(&self, node: &str, vm_id: u32) -> PortResult<Option<VmLive>> {
        let status = match self.client.vm_status(node, vm_id).await {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(port_error(e)),
        };
        let config = self
            .client
            .vm_config(node, vm_id)
            .await
            .map_err(port_error)?;
        let mut live = vm_live(&config, status.is_running());
        if config.lock().is_some() {
            // Which task holds it, from the node's running tasks.
            live.lock = match self.client.lock_holder(node, vm_id).await {
                Ok(Some(h)) => Some(VmLock {
                    kind: h.lock,
                    task: h.task,
                }),
                // Cleared between the two reads: read it again next time.
                Ok(None) => None,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(port_error(e)),
            };
        }
        Ok(Some(live))
    }

    async fn wait_unlocked(&self, node: &str, vm_id: u32) -> PortResult<()> {
        self.client
            .wait_unlocked(node, vm_id, self.wait.timeout)
            .await
            .map_err(port_error)
    }

    async fn create_vm(&self, wanted: &VmWanted) -> PortResult<()> {
        self.client
            .create_vm(&wanted.proxmox_node, &vm_spec(wanted), &self.wait)
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn update_vm(&self, wanted: &VmWanted, fields: &[String]) -> PortResult<()> {
        let spec = vm_spec(wanted);
        let all = spec.to_create_params();
        // A cloud-init drive is attached once: setting the slot again would allocate a second volume.
        let has_cloudinit = if fields.iter().any(|f| f == "static_address") {
            let config = self
                .client
                .vm_config(&wanted.proxmox_node, wanted.vm_id)
                .await
                .map_err(port_error)?;
            cloudinit_slot(&config).is_some()
        } else {
            false
        };
        let disk_slot = |serial: &str| {
            spec.disks
                .iter()
                .find(|d| d.options.iter().any(|(k, v)| k == "serial" && v == serial))
                .map(|d| d.slot.clone())
        };
        let wanted_keys: Vec<String> = fields
            .iter()
            .flat_map(|f| match f.as_str() {
                "cores" => vec!["cores".to_string()],
                "memory" => vec!["memory".to_string()],
                "mac" | "bridge" | "vlan" => vec!["net0".to_string()],
                "static_address" => {
                    let mut keys: Vec<String> = ["ipconfig0", "nameserver", "searchdomain"]
                        .map(str::to_string)
                        .to_vec();
                    if !has_cloudinit {
                        keys.push(CLOUDINIT_SLOT.to_string());
                    }
                    keys
                }
                other => match other.strip_prefix("disk.") {
                    Some(serial) => disk_slot(serial).into_iter().collect(),
                    None => other
                        .strip_prefix("nic")
                        .map(|n| vec![format!("net{n}")])
                        .unwrap_or_default(),
                },
            })
            .collect();
        let params: Vec<(String, String)> = all
            .into_iter()
            .filter(|(k, _)| wanted_keys.contains(k))
            .collect();
        if params.is_empty() {
            return Ok(());
        }
        self.client
            .set_vm_config(&wanted.proxmox_node, wanted.vm_id, &params, None)
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn start_vm(&self, node: &str, vm_id: u32) -> PortResult<()> {
        self.client
            .ensure_started(node, vm_id, &self.wait)
            .await
            .map_err(port_error)
    }

    async fn stop_vm(&self, node: &str, vm_id: u32) -> PortResult<()> {
        self.client
            .ensure_stopped(node, vm_id, &self.wait)
            .await
            .map_err(port_error)
    }

    async fn delete_vm(&self, node: &str, vm_id: u32) -> PortResult<()> {
        self.client
            .destroy_vm(node, vm_id, &self.wait)
            .await
            .map_err(port_error)
    }

    async fn guest_ipv4(&self, node: &str, vm_id: u32, mac: &str) -> PortResult<Option<IpAddr>> {
        match self.client.agent_network_interfaces(node, vm_id).await {
            Ok(interfaces) => Ok(homelab_proxmox::ipv4_for_mac(&interfaces, mac).map(IpAddr::V4)),
            Err(e) if e.kind() == ErrorKind::Auth => Err(port_error(e)),
            // Agent not running yet, VM still booting, a 5xx: all mean "not yet".
            Err(e) => Err(PortError::transient(e.to_string())),
        }
    }
}
