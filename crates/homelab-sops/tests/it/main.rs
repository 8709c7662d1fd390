//! Integration tests for homelab-sops: the sops test vectors, interop with the real sops binary, edit, tampering
//! and property tests.

mod aliasing;
mod common;
mod edit;
mod interop;
mod props;
mod tamper;
mod vectors;
