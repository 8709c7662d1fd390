//! Random identifiers the simulated systems hand out: version-4-shaped UUIDs (PVE token secrets, SMBIOS and
//! VM generation ids, a kernel's boot ID).

use rand::RngCore;

/// A random UUID in its canonical 8-4-4-4-12 hex form.
pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
