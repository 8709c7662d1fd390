//! Secret scanning for homelab repositories: the working tree, the whole git history (the added lines of
//! every commit, as gitleaks reads them) or the staged changes, with homelabctl's own rules for this domain
//! (age identities, Proxmox API tokens, Talos and kubeconfig keys, bootstrap tokens, PEM keys, forge and
//! cloud tokens, generic high-entropy assignments) or a user's gitleaks.toml.
//!
//! Like gitleaks it decodes base64, hex, percent and unicode-escaped text and rescans it (up to
//! [`Options::max_decode_depth`] passes). What it does not do: scan inside archives, or run composite
//! (`[[rules.required]]`) rules. It never prints: callers render a [`ScanOutcome`]
//! with [`report::render`]. SOPS-encrypted files and `ENC[…]` values are never findings.
//!
//! ```no_run
//! use homelab_scan::{ScanRequest, Source, scan};
//! let mut request = ScanRequest::tree(".");
//! request.source = Source::History;
//! let outcome = scan(&request)?;
//! for f in &outcome.findings {
//!     println!("{}:{} {}", f.file, f.start_line, f.rule_id); // never f.secret()
//! }
//! # Ok::<(), homelab_scan::ScanError>(())
//! ```

mod allowlist;
pub mod baseline;
mod codec;
mod config;
mod detect;
mod entropy;
mod finding;
pub mod gitdiff;
mod goregex;
mod history;
mod odb;
pub mod report;
mod scan;
#[cfg(test)]
mod testdata;

pub use baseline::Baseline;
pub use codec::DEFAULT_MAX_DECODE_DEPTH;
pub use config::{Config, ConfigError, Rule};
pub use detect::{ALLOW_MARKERS, Detector, Fragment, Options};
pub use entropy::shannon as shannon_entropy;
pub use finding::{CommitInfo, Finding, REDACTED, Sensitive};
pub use goregex::{GoRegexError, translate as translate_go_regex};
pub use homelab_sops::detect::is_sops_content;
pub use scan::{ScanError, ScanOutcome, ScanRequest, Source, run as scan, tree_files};

/// Scans a repository's working tree with its own configuration (`.gitleaks.toml` if present, else the
/// built-in rules) and `.gitleaksignore`; what `homelabctl check` runs.
pub fn scan_repository(root: &std::path::Path) -> Result<Vec<Finding>, ScanError> {
    Ok(scan(&ScanRequest::tree(root))?.findings)
}

/// Scans exactly `files` (repository-relative, `/`-separated) of the working tree at `root`, with the
/// repository's configuration and `.gitleaksignore`.
pub fn scan_listed_files(
    root: &std::path::Path,
    files: &[String],
) -> Result<Vec<Finding>, ScanError> {
    Ok(scan::run_listed(&ScanRequest::tree(root), Some(files))?.findings)
}

/// Scans only the staged changes of the repository at `root` (what a pre-commit check needs).
pub fn scan_staged(root: &std::path::Path) -> Result<Vec<Finding>, ScanError> {
    let mut request = ScanRequest::tree(root);
    request.source = Source::Staged;
    Ok(scan(&request)?.findings)
}
