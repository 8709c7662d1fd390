//! What the simulated guest takes from its boot medium besides the bootloader: the Talos platform the ISO
//! was built for. Only Talos' `nocloud` platform reads a cloud-init (NoCloud, `cidata`) drive for its
//! network config (siderolabs/talos `platform/nocloud`); `metal` and the rest never look at it, so a VM
//! booting a metal ISO ignores its cloud-init drive and waits for DHCP.
//!
//! The Image Factory simulator writes a marker with the platform into the ISOs it serves
//! ([`mark_platform`]); a medium without one (not a Talos ISO from the simulator) is taken to read the drive.

/// Where an ISO carries `PLATFORM_MARKER` followed by the platform name and a NUL (after the signature
/// slot of [`super::firmware`]).
pub const PLATFORM_OFFSET: usize = 0x100;
/// The marker of a Talos ISO's platform.
pub const PLATFORM_MARKER: &[u8] = b"homelab-sim-talos-platform:";

/// Writes the platform marker into ISO-like bytes (for the Image Factory simulator); too short bytes stay
/// unmarked.
pub fn mark_platform(data: &mut [u8], platform: &str) {
    let mut mark = PLATFORM_MARKER.to_vec();
    mark.extend_from_slice(platform.as_bytes());
    mark.push(0);
    if let Some(slot) = data.get_mut(PLATFORM_OFFSET..PLATFORM_OFFSET + mark.len()) {
        slot.copy_from_slice(&mark);
    }
}

/// The Talos platform a medium was built for, when it says.
pub fn platform(data: &[u8]) -> Option<String> {
    let rest = data.get(PLATFORM_OFFSET..)?.strip_prefix(PLATFORM_MARKER)?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

/// Whether a guest booted from `medium` reads its cloud-init drive.
pub fn reads_cloudinit(medium: Option<&[u8]>) -> bool {
    medium.and_then(platform).is_none_or(|p| p == "nocloud")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nocloud_platform_reads_the_drive() {
        let mut nocloud = vec![0u8; 4096];
        mark_platform(&mut nocloud, "nocloud");
        let mut metal = vec![0u8; 4096];
        mark_platform(&mut metal, "metal");
        assert_eq!(platform(&nocloud).as_deref(), Some("nocloud"));
        assert!(reads_cloudinit(Some(&nocloud)));
        assert!(!reads_cloudinit(Some(&metal)));
        assert!(reads_cloudinit(Some(&[0u8; 16])));
        assert!(reads_cloudinit(None));
    }
}
