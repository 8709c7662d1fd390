//! Fuzzes the kustomize/`check` YAML reader (`homelab_kustomize::yaml::parse_documents`, go-yaml v3
//! semantics with anchors, aliases and merge keys): any input must give documents or a positioned error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = homelab_kustomize::yaml::parse_documents(text);
});
