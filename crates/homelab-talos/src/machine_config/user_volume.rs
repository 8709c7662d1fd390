//! `UserVolumeConfig` documents (Talos 1.10+): a data disk that Talos partitions, formats and mounts at
//! `/var/mnt/<name>`. Each is tied to exactly one disk through the serial number the hypervisor gives it,
//! so two disks of the same size can never be mixed up, and the system disk is never chosen.

use serde_json::{Value, json};

/// One user volume: its name and the serial number of the disk that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserVolume {
    /// `/var/mnt/<name>`; lower-case letters, digits and `-`.
    pub name: String,
    /// The disk's serial number as the guest sees it (Proxmox: the drive's `serial=` option).
    pub serial: String,
}

/// The `UserVolumeConfig` document of `volume`: one partition growing over the whole disk, XFS (Talos'
/// default filesystem for user volumes).
pub fn document(volume: &UserVolume) -> Value {
    json!({
        "apiVersion": "v1alpha1",
        "kind": "UserVolumeConfig",
        "name": volume.name,
        "provisioning": {
            "diskSelector": {
                "match": format!("disk.serial == \"{}\" && !system_disk", volume.serial),
            },
            "minSize": "1GiB",
            "grow": true,
        },
        "filesystem": {"type": "xfs"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_volume_selects_its_disk_by_serial() {
        let doc = document(&UserVolume {
            name: "data".into(),
            serial: "data".into(),
        });
        assert_eq!(doc["kind"], "UserVolumeConfig");
        assert_eq!(doc["name"], "data");
        assert_eq!(
            doc["provisioning"]["diskSelector"]["match"],
            "disk.serial == \"data\" && !system_disk"
        );
        assert_eq!(doc["provisioning"]["grow"], true);
    }
}
