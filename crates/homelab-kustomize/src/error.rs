//! The one error type of the crate: what failed, where (file), and a hint on how to fix it.

use std::path::PathBuf;

/// A kustomize build failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: crate::yaml::ParseError,
    },
    #[error("{path}: field `{field}` is not supported by homelabctl's kustomize{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unsupported {
        path: PathBuf,
        field: String,
        hint: Option<String>,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "security; file '{file}' is not in or below '{root}' (use --load-restrictor LoadRestrictionsNone to allow it)"
    )]
    Restricted { file: PathBuf, root: PathBuf },
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Emit(#[from] crate::yaml::EmitError),
}

impl Error {
    pub(crate) fn invalid(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
