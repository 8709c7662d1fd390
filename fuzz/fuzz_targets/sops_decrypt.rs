//! Fuzzes the SOPS decrypt path (every store's parser, metadata, value decryption and MAC check) with the
//! throwaway identity of the shared test vectors: any input must give `Ok` or a typed error, never a panic.
//! Seed corpus: `../shared/testdata/sops/enc/*` (see `fuzz/README.md`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use homelab_sops::{Format, Identities, decrypt, parse_plaintext};
use libfuzzer_sys::fuzz_target;

/// `HOMELAB_SHARED`, else `../shared` beside the workspace, else `/work/shared`.
fn shared() -> PathBuf {
    if let Some(p) = std::env::var_os("HOMELAB_SHARED") {
        return PathBuf::from(p);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if beside.is_dir() { beside } else { PathBuf::from("/work/shared") }
}

fn identities() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        let text = std::fs::read_to_string(shared().join("testdata/sops/key.txt")).unwrap_or_default();
        Identities::from_text(&text).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = match selector % 4 {
        0 => Format::Yaml,
        1 => Format::Json,
        2 => Format::Dotenv,
        _ => Format::Binary,
    };
    let _ = decrypt(rest, format, identities(), "fuzz");
    if format != Format::Binary {
        let _ = parse_plaintext(format, rest, "fuzz");
    }
});
