//! Fuzzes the SOPS decrypt path (every store's parser, metadata, value decryption and MAC check) with the
//! throwaway identity of the repository's test vectors: any input must give `Ok` or a typed error, never a
//! panic. Seed corpus: `testdata/sops/enc/*` (see `fuzz/README.md`).
#![no_main]

use std::sync::OnceLock;

use homelab_sops::{Format, Identities, decrypt, parse_plaintext};
use libfuzzer_sys::fuzz_target;

fn identities() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        // Compiled in: the target reads nothing outside the repository at run time.
        Identities::from_text(include_str!("../../testdata/sops/key.txt")).unwrap_or_default()
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
