//! The VM's hardware beyond the basics, compared in plain terms: the static address its cloud-init drive
//! carries, its extra data disks (by the serial number Talos selects them by) and its extra NICs. A
//! difference is an in-place update (a cloud-init value, a disk to add, a NIC to set): none of them needs a
//! new VM. A disk that exists with another size or storage is left alone and not planned (a resize or a
//! move is no job for `apply`, and setting the slot again would allocate a new volume); what is no longer
//! wanted (a NIC, a disk, the cloud-init drive) is not removed either.

use crate::plan::FieldChange;
use crate::ports::{VmLive, VmWanted};

/// The plan form of the static address: `ADDRESS/PREFIX gw=GATEWAY dns=A,B search=DOMAIN`.
pub fn static_address_text(wanted: &VmWanted) -> Option<String> {
    let s = wanted.static_address.as_ref()?;
    let dns: Vec<String> = s.nameservers.iter().map(ToString::to_string).collect();
    let mut text = format!("{} gw={} dns={}", s.cidr, s.gateway, dns.join(","));
    if let Some(domain) = &s.search_domain {
        text.push_str(&format!(" search={domain}"));
    }
    Some(text)
}

/// The plan form of extra NIC `i` (0-based among the extra ones): `bridge=B[,tag=T][,mac=M]`.
pub fn nic_text(bridge: &str, vlan: Option<u16>, mac: Option<&str>) -> String {
    let mut text = format!("bridge={bridge}");
    if let Some(tag) = vlan {
        text.push_str(&format!(",tag={tag}"));
    }
    if let Some(mac) = mac {
        text.push_str(&format!(",mac={}", mac.to_ascii_uppercase()));
    }
    text
}

/// The differences between `wanted` and `live` in the static address, the extra disks and the extra NICs.
/// Field names: `static_address`, `disk.NAME`, `nicN` (N from 1, as the hypervisor numbers them).
pub fn changes(wanted: &VmWanted, live: &VmLive) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let want = static_address_text(wanted);
    if want.is_some() && want != live.static_address {
        out.push(FieldChange::new(
            "static_address",
            live.static_address.clone(),
            want,
        ));
    }
    for disk in &wanted.extra_disks {
        let want = format!("{}:{}G", disk.storage, disk.size_gib);
        let have = live
            .extra_disks
            .iter()
            .find(|(serial, _)| *serial == disk.serial)
            .map(|(_, text)| text.clone());
        if have.is_none() {
            out.push(FieldChange::new(
                format!("disk.{}", disk.serial),
                None,
                Some(want),
            ));
        }
    }
    for (i, nic) in wanted.extra_nics.iter().enumerate() {
        let have = live.extra_nics.get(i).cloned().flatten();
        // A NIC without a fixed MAC keeps whichever one the hypervisor gave it.
        let have_cmp = have.as_ref().map(|h| match &nic.mac {
            Some(_) => h.clone(),
            None => h.split(",mac=").next().unwrap_or(h).to_string(),
        });
        let want = nic_text(&nic.bridge, nic.vlan, nic.mac.as_deref());
        if have_cmp.as_deref() != Some(want.as_str()) {
            out.push(FieldChange::new(format!("nic{}", i + 1), have, Some(want)));
        }
    }
    out
}

/// Whether an update of `field` is one [`changes`] produces (the hypervisor adapter sets it in place).
pub fn is_hardware_field(field: &str) -> bool {
    field == "static_address" || field.starts_with("disk.") || field.starts_with("nic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{DiskWanted, NicWanted, StaticAddress};

    fn wanted() -> VmWanted {
        VmWanted {
            proxmox_node: "pve".into(),
            vm_id: 100,
            name: "n".into(),
            cores: 2,
            memory_mib: 4096,
            disk_storage: "local-lvm".into(),
            disk_gib: 32,
            bridge: "vmbr0".into(),
            vlan: None,
            mac: "BC:24:11:00:00:01".into(),
            iso_volume: "local:iso/t.iso".into(),
            tpm: true,
            tags: vec![],
            static_address: Some(StaticAddress {
                cidr: "192.168.20.100/24".into(),
                gateway: "192.168.20.1".parse().expect("ip"),
                nameservers: vec!["192.168.20.1".parse().expect("ip")],
                search_domain: None,
            }),
            extra_disks: vec![DiskWanted {
                storage: "local-lvm".into(),
                size_gib: 20,
                serial: "data".into(),
            }],
            extra_nics: vec![NicWanted {
                bridge: "vmbr1".into(),
                vlan: Some(30),
                mac: None,
            }],
        }
    }

    #[test]
    fn a_vm_without_the_extras_gets_each_as_an_update() {
        let fields: Vec<String> = changes(&wanted(), &VmLive::default())
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["static_address", "disk.data", "nic1"]);
    }

    #[test]
    fn a_vm_that_has_them_is_unchanged_whatever_mac_the_hypervisor_picked() {
        let live = VmLive {
            static_address: static_address_text(&wanted()),
            extra_disks: vec![("data".into(), "local-lvm:20G".into())],
            extra_nics: vec![Some("bridge=vmbr1,tag=30,mac=BC:24:11:12:34:56".into())],
            ..VmLive::default()
        };
        assert!(changes(&wanted(), &live).is_empty());
    }
}
