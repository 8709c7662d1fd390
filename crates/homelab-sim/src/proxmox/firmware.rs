//! UEFI Secure Boot as OVMF runs it for a simulated VM: the state `efidisk0` starts in, who signed the boot
//! medium, and whether the firmware boots it.
//!
//! From qemu-server (`QemuServer/OVMF.pm`, `QemuServer/Drive.pm`): with `efitype=4m`, `pre-enrolled-keys=1`
//! copies an EFI vars template with the distribution's and Microsoft's keys enrolled, "this will enable
//! Secure Boot by default"; `pre-enrolled-keys=0` (the default) copies an empty template: the firmware is in
//! setup mode and boots anything. From Talos (`secureboot.mdx`): Sidero's SecureBoot ISO is signed with
//! Sidero's key, not Microsoft's, and enrols its own keys when it finds the firmware in setup mode in a VM
//! (`secure-boot-enroll: if-safe`); the plain ISO is not signed at all. So a Talos ISO never boots on
//! pre-enrolled keys, and after the SecureBoot ISO enrolled its keys only Sidero-signed media boot.
//!
//! The simulator tells signers apart by a marker the Image Factory simulator writes into a SecureBoot ISO
//! ([`SIGNATURE_MARKER`]); media without it are unsigned. The installed disk carries the bootloader of the
//! image it was installed from, so the medium in the CD-ROM drive stands for both.

use serde::{Deserialize, Serialize};

/// Where a signed ISO carries `SIGNATURE_MARKER` followed by the signer's name and a NUL.
pub const SIGNATURE_OFFSET: usize = 0x40;
/// The marker of a signed boot medium (see the module comment).
pub const SIGNATURE_MARKER: &[u8] = b"homelab-sim-signed-by:";
/// The signer of Talos' SecureBoot media.
pub const SIDERO: &str = "siderolabs";
/// The signer whose keys `pre-enrolled-keys=1` enrols (with the distribution's).
pub const MICROSOFT: &str = "microsoft";

/// The Secure Boot state kept in a VM's EFI vars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SecureBoot {
    /// No EFI vars with Secure Boot (SeaBIOS, `efitype=2m`, or no `efidisk0`): anything boots.
    #[default]
    Off,
    /// No platform key yet: anything boots, and a signed medium may enrol its keys.
    SetupMode,
    /// Enforcing: only media signed by a key in `db` boot.
    Enforcing { db: Vec<String> },
}

impl SecureBoot {
    /// The state a new VM's EFI vars start in, from its config.
    pub fn from_config(config: &std::collections::BTreeMap<String, String>) -> Self {
        if config.get("bios").map(String::as_str) != Some("ovmf") {
            return SecureBoot::Off;
        }
        let Some(efidisk) = config.get("efidisk0") else {
            return SecureBoot::Off;
        };
        let option = |key: &str| {
            efidisk.split(',').find_map(|part| {
                part.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('='))
            })
        };
        if option("efitype") != Some("4m") {
            return SecureBoot::Off;
        }
        let pre_enrolled = option("pre-enrolled-keys")
            .and_then(super::formats::parse_boolean)
            .unwrap_or(false);
        if pre_enrolled {
            SecureBoot::Enforcing {
                db: vec![MICROSOFT.to_string(), "debian".to_string()],
            }
        } else {
            SecureBoot::SetupMode
        }
    }

    /// Boots a medium signed by `signer` (`None`: unsigned). `Err` is what the firmware shows instead of
    /// booting; a Sidero-signed medium in setup mode enrols Sidero's keys as Talos does.
    pub fn boot(&mut self, signer: Option<&str>) -> Result<(), String> {
        match self {
            SecureBoot::Off => Ok(()),
            SecureBoot::SetupMode => {
                if signer == Some(SIDERO) {
                    *self = SecureBoot::Enforcing {
                        db: vec![SIDERO.to_string()],
                    };
                }
                Ok(())
            }
            SecureBoot::Enforcing { db } => match signer {
                Some(s) if db.iter().any(|k| k == s) => Ok(()),
                _ => Err(format!(
                    "Secure Boot refused the boot medium (signed by {}; enrolled keys: {}): Access Denied",
                    signer.unwrap_or("nobody"),
                    db.join(", ")
                )),
            },
        }
    }
}

/// The signer named in a medium's bytes, if it is signed.
pub fn signer(data: &[u8]) -> Option<String> {
    let start = SIGNATURE_OFFSET;
    let rest = data.get(start..)?.strip_prefix(SIGNATURE_MARKER)?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

/// Writes the signature marker of `signer` into ISO-like bytes (for the Image Factory simulator).
pub fn sign(data: &mut [u8], signer: &str) {
    let mut mark = SIGNATURE_MARKER.to_vec();
    mark.extend_from_slice(signer.as_bytes());
    mark.push(0);
    if let Some(slot) = data.get_mut(SIGNATURE_OFFSET..SIGNATURE_OFFSET + mark.len()) {
        slot.copy_from_slice(&mark);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(efidisk: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("bios".to_string(), "ovmf".to_string()),
            ("efidisk0".to_string(), efidisk.to_string()),
        ])
    }

    #[test]
    fn pre_enrolled_keys_refuse_every_talos_medium() {
        let mut fw = SecureBoot::from_config(&config(
            "local-lvm:vm-100-disk-0,efitype=4m,pre-enrolled-keys=1,size=4M",
        ));
        assert!(fw.boot(None).is_err());
        assert!(fw.boot(Some(SIDERO)).is_err());
        assert!(fw.boot(Some(MICROSOFT)).is_ok());
    }

    #[test]
    fn setup_mode_boots_anything_and_the_sidero_medium_enrols_its_keys() {
        let mut fw = SecureBoot::from_config(&config(
            "local-lvm:vm-100-disk-0,efitype=4m,pre-enrolled-keys=0,size=4M",
        ));
        assert_eq!(fw, SecureBoot::SetupMode);
        assert!(fw.boot(None).is_ok());
        assert_eq!(fw, SecureBoot::SetupMode);
        assert!(fw.boot(Some(SIDERO)).is_ok());
        assert!(fw.boot(Some(SIDERO)).is_ok());
        assert!(fw.boot(None).is_err(), "enforcing Sidero's keys now");
    }

    #[test]
    fn a_signature_round_trips_and_unmarked_bytes_are_unsigned() {
        let mut data = vec![7u8; 4096];
        assert_eq!(signer(&data), None);
        sign(&mut data, SIDERO);
        assert_eq!(signer(&data).as_deref(), Some(SIDERO));
    }
}
