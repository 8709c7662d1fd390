//! Fuzzes go-yaml's alias-expansion guard (`homelab_goyaml::alias`) on its own: any input must end, and a
//! document it accepts may have needed at most about a hundred decodes per event it holds (what bounds the
//! memory of every reader that expands aliases).
#![no_main]

use homelab_goyaml::alias::AliasGuard;
use libfuzzer_sys::fuzz_target;
use saphyr_parser::Parser;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut guard = AliasGuard::new();
    let mut events: u64 = 0;
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        events += 1;
        if guard.observe(&event, &span).is_err() {
            return;
        }
    }
    // Accepted: at most 99 % of decodes came from aliases (or fewer than 1000 decodes / 100 aliased ones).
    assert!(guard.peak_decodes() <= 101 * events + 1000, "{} decodes for {events} events", guard.peak_decodes());
});
