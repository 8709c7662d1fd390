//! File access for one kustomization root, enforcing kustomize's load restrictor (files must be in or
//! below the root unless `LoadRestrictionsNone`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How far outside its root a kustomization may read files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// kustomize's default `LoadRestrictionsRootOnly`.
    #[default]
    RootOnly,
    /// `LoadRestrictionsNone` (what Flux uses).
    None,
}

/// Reads files relative to a kustomization directory.
#[derive(Debug, Clone)]
pub struct Loader {
    pub root: PathBuf,
    pub file: PathBuf,
    pub restrictor: LoadRestrictor,
}

impl Loader {
    pub fn new(root: &Path, file: &Path, restrictor: LoadRestrictor) -> Result<Self> {
        let root = std::fs::canonicalize(root).map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Loader {
            root,
            file: file.to_path_buf(),
            restrictor,
        })
    }
    pub fn kustomization_file(&self) -> PathBuf {
        self.file.clone()
    }
    /// Resolves `rel` against the root and checks the restrictor.
    pub fn resolve_file(&self, rel: &str) -> Result<PathBuf> {
        let p = self.root.join(rel);
        let real = std::fs::canonicalize(&p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        if self.restrictor == LoadRestrictor::RootOnly && !real.starts_with(&self.root) {
            return Err(Error::Restricted {
                file: real,
                root: self.root.clone(),
            });
        }
        Ok(real)
    }
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.resolve_file(rel)?;
        std::fs::read(&p).map_err(|source| Error::Io { path: p, source })
    }
    pub fn read_text(&self, rel: &str) -> Result<(PathBuf, String)> {
        let p = self.resolve_file(rel)?;
        let bytes = std::fs::read(&p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        let text =
            String::from_utf8(bytes).map_err(|_| Error::invalid(&p, "file is not UTF-8 text"))?;
        Ok((p, text))
    }
}
