//! The `homelab.yaml` model: the declarative description of a homelab (Proxmox, Talos image, cluster, nodes,
//! GitOps), its defaults (which reproduce the original single-node deployment), and its validation.
//!
//! Validation reports every problem at once, each with line, column and a hint, before anything touches
//! Proxmox. This crate only reads and checks configuration; it knows nothing of Proxmox, Talos or SOPS clients.
//!
//! ```
//! let source = "proxmox: {endpoint: 'https://pve.home:8006', token_id: 'homelabctl@pve!provision'}\n\
//!               nodes:\n  - {name: talos-cp-01, vm_id: 100, network: {mac: 'BC:24:11:CA:FE:01', \
//!               address: 192.168.20.100/24, gateway: 192.168.20.1}}\n";
//! let loaded = homelab_config::parse(source, None).expect("valid");
//! assert_eq!(loaded.config.nodes[0].network.address.to_string(), "192.168.20.100/24");
//! assert_eq!(loaded.config.cluster.endpoint, "https://192.168.20.100:6443");
//! ```

pub mod diagnostic;
pub mod format;
pub mod model;
pub mod net;
pub mod patches;
mod read;
pub mod schema;
mod suggest;
pub mod template;
mod validate;
pub mod version;
mod yaml;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Severity, Span};
pub use model::*;

/// The file name homelabctl looks for in the repository root.
pub const FILE_NAME: &str = "homelab.yaml";

/// A configuration that validated, with any warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid: {} error(s)", file_label(path), diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid {
        path: Option<PathBuf>,
        /// The source text, so the caller can render snippets.
        source_text: String,
        /// Errors and warnings, sorted by position.
        diagnostics: Vec<Diagnostic>,
    },
}

fn file_label(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| FILE_NAME.to_string(), |p| p.display().to_string())
}

/// Reads and validates `path`. Relative paths inside it (patches, CA file) resolve against its directory.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    check(&source, base).map_err(|e| match e {
        LoadError::Invalid {
            source_text,
            diagnostics,
            ..
        } => LoadError::Invalid {
            path: Some(path.to_path_buf()),
            source_text,
            diagnostics,
        },
        other => other,
    })
}

/// Parses and validates configuration text; `base_dir`, when given, is used to check referenced files.
pub fn parse(source: &str, base_dir: Option<&Path>) -> Result<Loaded, LoadError> {
    check(source, base_dir)
}

/// Every finding for `source`, errors and warnings, sorted by position. Never panics.
pub fn diagnostics(source: &str, base_dir: Option<&Path>) -> Vec<Diagnostic> {
    match check(source, base_dir) {
        Ok(loaded) => loaded.warnings,
        Err(LoadError::Invalid { diagnostics, .. }) => diagnostics,
        Err(LoadError::Read { .. }) => Vec::new(),
    }
}

fn check(source: &str, base_dir: Option<&Path>) -> Result<Loaded, LoadError> {
    let invalid = |diagnostics| LoadError::Invalid {
        path: None,
        source_text: source.to_string(),
        diagnostics,
    };
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            let hint = if e.message == homelab_goyaml::alias::EXCESSIVE_ALIASING {
                "an alias here expands to far more than the file holds (as in a \"billion laughs\"); \
                 write the values out instead of nesting aliases of aliases"
            } else {
                "check indentation and quoting around this position"
            };
            let d = Diagnostic::error("", format!("YAML syntax error: {}", e.message))
                .at(Some(e.span))
                .with_hint(hint);
            return Err(invalid(vec![d]));
        }
    };
    let outcome = read::read(&root);
    let mut all = outcome.diagnostics;
    all.extend(validate::validate(
        &outcome.config,
        &outcome.spans,
        &outcome.failed,
        &outcome.present,
        base_dir,
    ));
    diagnostic::sort(&mut all);
    if all.iter().any(Diagnostic::is_error) {
        Err(invalid(all))
    } else {
        Ok(Loaded {
            config: outcome.config,
            warnings: all,
        })
    }
}
