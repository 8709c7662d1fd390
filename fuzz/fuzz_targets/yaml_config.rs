//! Fuzzes the homelab.yaml reader (`homelab_config::parse`: the spanned YAML tree, then validation): any
//! input must give a value or diagnostics, never a panic, a hang or an alias expansion out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = homelab_config::parse(text, None);
});
