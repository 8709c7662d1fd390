//! The crate's error type: every variant names the file (or input) that failed and, where useful, what to do.
//! No variant ever carries decrypted material.

use std::path::PathBuf;

/// Everything that can go wrong reading, writing or re-keying a SOPS file.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// A file could not be read or written.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },

    /// The input is not valid YAML/JSON/dotenv.
    #[error("{file}:{line}:{column}: invalid {format}: {message}")]
    Parse {
        /// The file (or input name).
        file: String,
        /// Format being parsed.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong (never contains secret values).
        message: String,
    },

    /// The document has a shape sops does not accept (a top-level list, a duplicate key, …).
    #[error("{file}: {message}")]
    Unsupported {
        /// The file (or input name).
        file: String,
        /// What is unsupported, and what to do.
        message: String,
    },

    /// The file has no `sops` metadata.
    #[error(
        "{file}: not a SOPS file: it has no `sops` metadata (hint: encrypt it first with `homelabctl sops encrypt`)"
    )]
    NotSops {
        /// The file (or input name).
        file: String,
    },

    /// The `sops` metadata is malformed.
    #[error("{file}: invalid sops metadata: {message}")]
    Metadata {
        /// The file (or input name).
        file: String,
        /// What is wrong.
        message: String,
    },

    /// The file was tampered with or corrupted: the MAC or an encrypted value does not authenticate.
    #[error(
        "{file}: MAC mismatch: {detail} (the file was modified outside sops or is corrupted; restore it from git)"
    )]
    MacMismatch {
        /// The file (or input name).
        file: String,
        /// Which check failed (never includes plaintext).
        detail: String,
    },

    /// None of the available age identities can unwrap the file's data key.
    #[error(
        "{file}: no age identity can decrypt the data key. The file is encrypted to: {recipients}. Identities were looked for in: {searched}. (hint: set SOPS_AGE_KEY_FILE to the identity file of one of these recipients)",
        recipients = recipients.join(", "),
        searched = if searched.is_empty() { "nowhere (no source found)".to_string() } else { searched.join("; ") }
    )]
    NoIdentity {
        /// The file (or input name).
        file: String,
        /// The file's age recipients.
        recipients: Vec<String>,
        /// Where identities were looked for.
        searched: Vec<String>,
    },

    /// An identity source could not be read.
    #[error("{source_name}: {message}")]
    Identity {
        /// The source (env var or file).
        source_name: String,
        /// What is wrong.
        message: String,
    },

    /// An age recipient string is invalid.
    #[error("invalid age recipient {recipient:?}: {reason}")]
    Recipient {
        /// The recipient text.
        recipient: String,
        /// Why it was refused.
        reason: String,
    },

    /// The `.sops.yaml` is invalid.
    #[error("{path}: invalid .sops.yaml: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// No creation rule in `.sops.yaml` matches the file.
    #[error(
        "{file}: no matching creation rules found in {config} (hint: add a creation rule whose path_regex matches this path)"
    )]
    NoCreationRule {
        /// The file being encrypted.
        file: String,
        /// The `.sops.yaml` that was used.
        config: PathBuf,
    },

    /// Encrypting needs recipients but neither a config nor explicit keys gave any.
    #[error(
        "{file}: config file not found, or has no creation rules, and no keys provided (hint: create a .sops.yaml with creation_rules, or pass --age / set SOPS_AGE_RECIPIENTS)"
    )]
    NoRecipients {
        /// The file being encrypted.
        file: String,
    },

    /// The input is already a SOPS file.
    #[error("{file}: the file is already encrypted (it has `sops` metadata)")]
    AlreadyEncrypted {
        /// The file (or input name).
        file: String,
    },

    /// A path given to `--extract` does not exist or does not name a value.
    #[error("{file}: component {component:?} of the extract path not found")]
    ExtractNotFound {
        /// The file.
        file: String,
        /// The missing component.
        component: String,
    },

    /// An `--extract` path is malformed.
    #[error("invalid extract path {path:?}: {message} (expected e.g. '[\"key\"][\"sub\"][0]')")]
    ExtractSyntax {
        /// The path text.
        path: String,
        /// What is wrong.
        message: String,
    },

    /// A cryptographic operation failed unexpectedly (random source, age library).
    #[error("{file}: {message}")]
    Crypto {
        /// The file (or input name).
        file: String,
        /// What failed.
        message: String,
    },

    /// The editor could not be run or the edit was abandoned.
    #[error("{message}")]
    Edit {
        /// What happened, and what to do.
        message: String,
    },
}

impl SopsError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> SopsError {
        SopsError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn unsupported(file: &str, message: impl Into<String>) -> SopsError {
        SopsError::Unsupported {
            file: file.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn metadata(file: &str, message: impl Into<String>) -> SopsError {
        SopsError::Metadata {
            file: file.to_string(),
            message: message.into(),
        }
    }
}

/// An atomic write that failed keeps its file and action ("replacing", "writing", …).
impl From<homelab_fs::WriteError> for SopsError {
    fn from(e: homelab_fs::WriteError) -> Self {
        SopsError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    }
}
