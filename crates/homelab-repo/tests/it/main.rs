//! Integration tests of homelab-repo: real files in a temporary repository, real sops and kubectl as oracles.

mod backups;
mod bundle;
mod outputs;
mod support;
mod token;
