//! `flux add-component`: a new component directory under `infrastructure/`, registered in
//! `infrastructure/kustomization.yaml`. All or nothing: on any failure the tree is left as it was.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::component::{Component, ComponentError};
use crate::kustomization::{self, EditError};
use crate::tree::INFRASTRUCTURE_DIR;

/// Component files are plain manifests; the kustomization being replaced keeps its own permissions.
const NEW_FILE: homelab_fs::Mode = homelab_fs::Mode::KeepOr(0o644);

/// Why a component was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Invalid(#[from] ComponentError),
    #[error("{} does not exist: this is not a Flux tree made by `homelabctl init` (check gitops.path)", path.display())]
    NoInfrastructure { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot register the component in {}: {source}", path.display())]
    Kustomization { path: PathBuf, source: EditError },
    #[error("{} already exists; choose another name or remove it first", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Adds `component` to the tree rooted at `tree_root` (the `gitops.path` directory) and returns the
/// files written, the edited kustomization last.
pub fn add_component(tree_root: &Path, component: &Component) -> Result<Vec<PathBuf>, AddError> {
    component.validate()?;
    let infra = tree_root.join(INFRASTRUCTURE_DIR);
    let list = infra.join(kustomization::FILE_NAME);
    let text = match fs::read_to_string(&list) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AddError::NoInfrastructure { path: list });
        }
        Err(source) => return Err(AddError::Read { path: list, source }),
    };
    let dir = infra.join(&component.name);
    if fs::symlink_metadata(&dir).is_ok() {
        return Err(AddError::Exists { path: dir });
    }
    let edited = kustomization::add_resource(&text, &component.name).map_err(|source| {
        AddError::Kustomization {
            path: list.clone(),
            source,
        }
    })?;

    // Stage the directory next to its final place, then move it in with one rename.
    let staging = infra.join(format!(".{}.tmp-{}", component.name, std::process::id()));
    let staged = component.files(&staging);
    let write_staged =
        || -> Result<(), AddError> {
            fs::create_dir(&staging).map_err(|source| AddError::Write {
                path: staging.clone(),
                source,
            })?;
            for f in &staged {
                let created = homelab_fs::write_new(&f.path, f.contents.as_bytes(), NEW_FILE)
                    .map_err(|e| AddError::Write {
                        path: f.path.clone(),
                        source: e.source,
                    })?;
                if !created {
                    return Err(AddError::Write {
                        path: f.path.clone(),
                        source: io::ErrorKind::AlreadyExists.into(),
                    });
                }
            }
            fs::rename(&staging, &dir).map_err(|source| AddError::Write {
                path: dir.clone(),
                source,
            })
        };
    if let Err(e) = write_staged() {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = homelab_fs::write(&list, edited.as_bytes(), NEW_FILE) {
        let _ = fs::remove_dir_all(&dir);
        return Err(AddError::Write {
            path: list,
            source: e.source,
        });
    }
    let mut written: Vec<PathBuf> = component.files(&dir).into_iter().map(|f| f.path).collect();
    written.push(list);
    Ok(written)
}
