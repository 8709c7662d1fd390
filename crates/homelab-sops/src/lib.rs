//! SOPS files encrypted to age recipients, read and written so the real `sops` CLI (3.11) and Flux accept them
//! both ways: YAML (multi-document, comments), JSON, dotenv and binary files; every value type sops writes; the
//! MAC (including `mac_only_encrypted`); the suffix/regex rules; `.sops.yaml` discovery and creation rules; age
//! identity discovery as sops does it (plus homelabctl's repo-local `.age-key.txt`).
//!
//! It does not do key groups with Shamir sharing, PGP/KMS/Vault key sources, SSH or plugin age identities, or
//! the INI format; files using them are refused with a clear error. It never prints: errors are returned, and
//! decrypted material is zeroized when dropped.
//!
//! ```no_run
//! use std::path::Path;
//! use homelab_sops::{CreationRule, Format, Identities, decrypt_file, encrypt};
//!
//! # fn main() -> Result<(), homelab_sops::SopsError> {
//! let ids = Identities::discover(Some(Path::new(".")))?;
//! let secrets = decrypt_file(Path::new("secrets.enc.yaml"), &ids)?;
//! let token = secrets.lookup(&["proxmox", "token_secret"]).and_then(|v| v.as_str());
//!
//! let rule = CreationRule::for_recipients(&["age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy"]);
//! let file = encrypt(b"password: hunter2\n", Format::Yaml, &rule, "new.enc.yaml")?;
//! # let _ = (token, file);
//! # Ok(()) }
//! ```

// Without `crypto` the stores' helpers for encrypted files (metadata, timestamps) have no caller; they stay
// compiled rather than be split up by feature one by one.
#![cfg_attr(not(feature = "crypto"), allow(dead_code))]

#[cfg(feature = "crypto")]
mod cipher;
#[cfg(feature = "crypto")]
mod config;
#[cfg(feature = "crypto")]
mod crypt;
pub mod detect;
#[cfg(feature = "crypto")]
mod edit;
mod error;
#[cfg(feature = "crypto")]
mod identities;
#[cfg(feature = "crypto")]
mod metadata;
#[cfg(feature = "crypto")]
mod sopsfile;
mod store;
mod time;
mod value;

#[cfg(feature = "crypto")]
pub use config::{CreationRule, SopsConfig};
#[cfg(feature = "crypto")]
pub use crypt::CryptRule;
#[cfg(feature = "crypto")]
pub use edit::{
    EditOutcome, EditSession, edit_file, editor_candidates, editor_failed, editor_unstartable,
    no_editor, run_editor,
};
pub use error::SopsError;
#[cfg(feature = "crypto")]
pub use identities::{Identities, REPO_KEY_FILE, default_key_file, personal_key_file};
#[cfg(feature = "crypto")]
pub use sopsfile::{Decrypted, decrypt, decrypt_file, encrypt, encrypt_file, encrypt_with_style};
pub use store::{Format, Style, read_plain as parse_plaintext, write_plain as render_plaintext};
pub use value::{Entry, Key, Map, Value};
