//! Integration tests of homelab-scan: differential against real gitleaks, and the built-in rules on
//! planted secrets, SOPS files and a Flux tree.

mod decoding;
mod differential;
mod domain_rules;
mod lazy_rules;
mod support;
