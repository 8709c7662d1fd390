//! `VmSpec`: a QEMU VM described in plain terms, and its translation into the form parameters of
//! `POST /nodes/{node}/qemu` (property strings such as `net0=virtio=MAC,bridge=vmbr0`).

use serde::{Deserialize, Serialize};

/// Firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bios {
    Seabios,
    Ovmf,
}

/// A disk allocated on a storage: `scsi0=STORAGE:SIZE_GIB,opt=val,…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Bus and index, e.g. `scsi0`, `virtio0`, `sata0`.
    pub slot: String,
    pub storage: String,
    pub size_gib: u32,
    /// Extra drive options in order, e.g. `("discard","on")`, `("ssd","1")`.
    #[serde(default)]
    pub options: Vec<(String, String)>,
}

/// The EFI vars disk (`efidisk0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EfiDisk {
    pub storage: String,
    /// `4m` is needed for Secure Boot; PVE's default is `2m`.
    pub efitype: String,
    /// `false` leaves the firmware in setup mode so the guest can enroll its own keys.
    pub pre_enrolled_keys: bool,
}

/// The TPM state volume (`tpmstate0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TpmState {
    pub storage: String,
    /// `v2.0` or `v1.2`; cannot be changed later.
    pub version: String,
}

/// A network card (`netN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub index: u8,
    /// `virtio`, `e1000`, …
    pub model: String,
    /// Fixed MAC (`BC:24:11:CA:FE:01`); `None` lets PVE pick one.
    pub mac: Option<String>,
    pub bridge: String,
    /// VLAN tag 1–4094.
    pub vlan: Option<u16>,
    pub firewall: bool,
}

/// A CD-ROM drive holding an ISO volume (`ide2=local:iso/x.iso,media=cdrom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdrom {
    /// e.g. `ide2`.
    pub slot: String,
    /// e.g. `local:iso/talos.iso`, or `none` for an empty drive.
    pub volid: String,
}

/// A cloud-init drive and what it carries (`ide0=STORAGE:cloudinit`, `ipconfigN`, `nameserver`,
/// `searchdomain`): PVE writes a NoCloud image (`cidata`) from these at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudInit {
    /// The drive slot, e.g. `ide0` (one the CD-ROM does not use).
    pub slot: String,
    /// Storage for the small `vm-N-cloudinit` volume (content type `images`).
    pub storage: String,
    /// `ipconfigN` values by NIC index: `ip=192.168.20.100/24,gw=192.168.20.1`.
    pub ipconfig: Vec<(u8, String)>,
    /// DNS servers (`nameserver`, space separated as PVE stores them).
    pub nameservers: Vec<String>,
    /// DNS search domain (`searchdomain`).
    pub searchdomain: Option<String>,
}

/// Everything the create call needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub vmid: u32,
    pub name: String,
    pub cores: u32,
    pub sockets: u32,
    pub memory_mib: u64,
    /// `Some(0)` turns ballooning off.
    pub balloon_mib: Option<u64>,
    /// CPU type, e.g. `host` (PVE's API default `kvm64` lacks x86-64-v2).
    pub cpu: String,
    /// e.g. `q35`.
    pub machine: String,
    pub bios: Bios,
    /// e.g. `l26`.
    pub ostype: String,
    /// e.g. `virtio-scsi-pci` or `virtio-scsi-single`.
    pub scsihw: String,
    pub disks: Vec<Disk>,
    pub efidisk: Option<EfiDisk>,
    pub tpmstate: Option<TpmState>,
    pub nics: Vec<Nic>,
    pub cdrom: Option<Cdrom>,
    /// A cloud-init drive with a static network config.
    #[serde(default)]
    pub cloudinit: Option<CloudInit>,
    /// Boot devices in order, e.g. `["scsi0", "ide2"]`.
    pub boot_order: Vec<String>,
    /// Enable the QEMU guest agent.
    pub agent: bool,
    pub onboot: Option<bool>,
    pub tags: Vec<String>,
    pub description: Option<String>,
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl VmSpec {
    /// The form parameters of `POST /nodes/{node}/qemu`, in a stable order (without `node`, which is in the
    /// path).
    pub fn to_create_params(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| p.push((k.to_string(), v));
        put("vmid", self.vmid.to_string());
        put("name", self.name.clone());
        put("ostype", self.ostype.clone());
        put("machine", self.machine.clone());
        put(
            "bios",
            match self.bios {
                Bios::Seabios => "seabios".into(),
                Bios::Ovmf => "ovmf".into(),
            },
        );
        if let Some(efi) = &self.efidisk {
            put(
                "efidisk0",
                format!(
                    "{}:1,efitype={},pre-enrolled-keys={}",
                    efi.storage,
                    efi.efitype,
                    flag(efi.pre_enrolled_keys)
                ),
            );
        }
        if let Some(tpm) = &self.tpmstate {
            put(
                "tpmstate0",
                format!("{}:1,version={}", tpm.storage, tpm.version),
            );
        }
        put("cpu", self.cpu.clone());
        put("sockets", self.sockets.to_string());
        put("cores", self.cores.to_string());
        put("memory", self.memory_mib.to_string());
        if let Some(b) = self.balloon_mib {
            put("balloon", b.to_string());
        }
        put("scsihw", self.scsihw.clone());
        for d in &self.disks {
            let mut v = format!("{}:{}", d.storage, d.size_gib);
            for (k, val) in &d.options {
                v.push_str(&format!(",{k}={val}"));
            }
            put(&d.slot, v);
        }
        if let Some(cd) = &self.cdrom {
            put(&cd.slot, format!("{},media=cdrom", cd.volid));
        }
        if let Some(ci) = &self.cloudinit {
            put(&ci.slot, format!("{}:cloudinit", ci.storage));
            for (index, value) in &ci.ipconfig {
                put(&format!("ipconfig{index}"), value.clone());
            }
            if !ci.nameservers.is_empty() {
                put("nameserver", ci.nameservers.join(" "));
            }
            if let Some(domain) = &ci.searchdomain {
                put("searchdomain", domain.clone());
            }
        }
        for n in &self.nics {
            let mut v = match &n.mac {
                Some(mac) => format!("{}={}", n.model, mac.to_ascii_uppercase()),
                None => format!("model={}", n.model),
            };
            v.push_str(&format!(",bridge={}", n.bridge));
            if n.firewall {
                v.push_str(",firewall=1");
            }
            if let Some(tag) = n.vlan {
                v.push_str(&format!(",tag={tag}"));
            }
            put(&format!("net{}", n.index), v);
        }
        put("agent", format!("enabled={}", flag(self.agent)));
        if !self.boot_order.is_empty() {
            put("boot", format!("order={}", self.boot_order.join(";")));
        }
        if let Some(onboot) = self.onboot {
            put("onboot", flag(onboot).into());
        }
        if !self.tags.is_empty() {
            let mut tags = self.tags.clone();
            tags.sort();
            tags.dedup();
            put("tags", tags.join(";"));
        }
        if let Some(d) = &self.description {
            put("description", d.clone());
        }
        p
    }

    /// The MAC of the first NIC, in the upper-case form PVE stores.
    pub fn primary_mac(&self) -> Option<String> {
        self.nics
            .first()
            .and_then(|n| n.mac.as_ref())
            .map(|m| m.to_ascii_uppercase())
    }

    /// The storages this VM allocates volumes on (disks, EFI, TPM).
    pub fn image_storages(&self) -> Vec<String> {
        let mut s: Vec<String> = self.disks.iter().map(|d| d.storage.clone()).collect();
        s.extend(self.efidisk.iter().map(|e| e.storage.clone()));
        s.extend(self.tpmstate.iter().map(|t| t.storage.clone()));
        s.sort();
        s.dedup();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> VmSpec {
        VmSpec {
            vmid: 9001,
            name: "talos-cp-01".into(),
            cores: 4,
            sockets: 1,
            memory_mib: 8192,
            balloon_mib: Some(0),
            cpu: "host".into(),
            machine: "q35".into(),
            bios: Bios::Ovmf,
            ostype: "l26".into(),
            scsihw: "virtio-scsi-single".into(),
            disks: vec![Disk {
                slot: "scsi0".into(),
                storage: "local-lvm".into(),
                size_gib: 64,
                options: vec![("discard".into(), "on".into()), ("ssd".into(), "1".into())],
            }],
            efidisk: Some(EfiDisk {
                storage: "local-lvm".into(),
                efitype: "4m".into(),
                pre_enrolled_keys: false,
            }),
            tpmstate: Some(TpmState {
                storage: "local-lvm".into(),
                version: "v2.0".into(),
            }),
            nics: vec![Nic {
                index: 0,
                model: "virtio".into(),
                mac: Some("bc:24:11:ca:fe:01".into()),
                bridge: "vmbr0".into(),
                vlan: None,
                firewall: false,
            }],
            cdrom: Some(Cdrom {
                slot: "ide2".into(),
                volid: "local:iso/talos.iso".into(),
            }),
            cloudinit: None,
            boot_order: vec!["scsi0".into(), "ide2".into()],
            agent: true,
            onboot: Some(true),
            tags: vec!["talos".into(), "k8s".into()],
            description: None,
        }
    }

    #[test]
    fn reference_vm_renders_the_documented_property_strings() {
        let params = reference().to_create_params();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("efidisk0"),
            Some("local-lvm:1,efitype=4m,pre-enrolled-keys=0")
        );
        assert_eq!(get("tpmstate0"), Some("local-lvm:1,version=v2.0"));
        assert_eq!(get("ide2"), Some("local:iso/talos.iso,media=cdrom"));
        assert_eq!(get("net0"), Some("virtio=BC:24:11:CA:FE:01,bridge=vmbr0"));
        assert_eq!(get("agent"), Some("enabled=1"));
        assert_eq!(get("boot"), Some("order=scsi0;ide2"));
        assert_eq!(get("bios"), Some("ovmf"));
        assert_eq!(get("machine"), Some("q35"));
        assert_eq!(get("cpu"), Some("host"));
        assert_eq!(get("scsihw"), Some("virtio-scsi-single"));
        assert_eq!(get("tags"), Some("k8s;talos"));
        assert_eq!(get("scsi0"), Some("local-lvm:64,discard=on,ssd=1"));
    }

    #[test]
    fn a_cloudinit_drive_carries_the_static_network_config() {
        let mut spec = reference();
        spec.cloudinit = Some(CloudInit {
            slot: "ide0".into(),
            storage: "local-lvm".into(),
            ipconfig: vec![(0, "ip=192.168.20.100/24,gw=192.168.20.1".into())],
            nameservers: vec!["192.168.20.1".into(), "1.1.1.1".into()],
            searchdomain: Some("home.arpa".into()),
        });
        let params = spec.to_create_params();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ide0"), Some("local-lvm:cloudinit"));
        assert_eq!(
            get("ipconfig0"),
            Some("ip=192.168.20.100/24,gw=192.168.20.1")
        );
        assert_eq!(get("nameserver"), Some("192.168.20.1 1.1.1.1"));
        assert_eq!(get("searchdomain"), Some("home.arpa"));
        // The cloud-init drive is no boot device.
        assert_eq!(get("boot"), Some("order=scsi0;ide2"));
    }

    #[test]
    fn vlan_and_firewall_are_rendered_on_the_nic() {
        let mut spec = reference();
        spec.nics[0].vlan = Some(20);
        spec.nics[0].firewall = true;
        let params = spec.to_create_params();
        let net0 = params
            .iter()
            .find(|(k, _)| k == "net0")
            .map(|(_, v)| v.clone());
        assert_eq!(
            net0.as_deref(),
            Some("virtio=BC:24:11:CA:FE:01,bridge=vmbr0,firewall=1,tag=20")
        );
    }
}
