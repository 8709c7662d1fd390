//! The Flux objects that tie the cluster to the repository: the source (GitRepository, or OCIRepository
//! for an `oci://` URL), the `flux-system` Kustomization, and the `infrastructure`/`apps` Kustomizations.

use std::path::{Component as PathPart, Path};

use homelab_config::Gitops;
use serde_json::{Map, Value, json};

use crate::manifest::metadata;

/// The API version of Flux's `Kustomization`, as written, listed and patched here (owned by
/// `homelab-kustomize-controller`).
pub use homelab_kustomize_controller::API_VERSION as KUSTOMIZATION_API_VERSION;
/// The kind of Flux's `Kustomization`.
pub use homelab_kustomize_controller::KIND as KUSTOMIZATION_KIND;
/// The API version of Flux's sources (GitRepository, OCIRepository, HelmRepository).
pub const SOURCE_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";

/// The namespace Flux runs in and its sync objects live in.
pub const NAMESPACE: &str = "flux-system";
/// The name of the source and of the root Kustomization, as `flux bootstrap` names them.
pub const SYNC_NAME: &str = "flux-system";
/// The Secret holding the age identity kustomize-controller decrypts SOPS files with.
pub const SOPS_SECRET: &str = "sops-age";
/// The key in [`SOPS_SECRET`] (kustomize-controller reads keys ending in `.agekey`).
pub const SOPS_SECRET_KEY: &str = "age.agekey";
/// The Secret with the deploy key a `ssh://` source authenticates with.
pub const GIT_AUTH_SECRET: &str = "flux-system";

const SOURCE_INTERVAL: &str = "1m";
const KUSTOMIZATION_INTERVAL: &str = "10m";

/// Why the sync objects cannot be made from `gitops`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    #[error(
        "gitops.path `{0}` must be a relative path inside the repository (no `..`, not absolute)"
    )]
    Path(String),
    #[error(
        "gitops.repository.url `{0}` is not a URL Flux can fetch (ssh://, https://, http://, git@HOST:PATH or oci://)"
    )]
    Url(String),
}

/// Where Flux fetches the repository from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `GitRepository` or `OCIRepository`.
    pub kind: &'static str,
    pub url: String,
    /// The branch (Git) or tag (OCI) to follow.
    pub reference: String,
}

impl Source {
    pub fn from_gitops(gitops: &Gitops) -> Result<Self, SyncError> {
        let url = &gitops.repository.url;
        let (kind, url) = if url.starts_with("oci://") {
            ("OCIRepository", url.clone())
        } else if ["ssh://", "https://", "http://"]
            .iter()
            .any(|s| url.starts_with(s))
        {
            ("GitRepository", url.clone())
        } else if let Some(rest) = url.strip_prefix("git@")
            && let Some((host, path)) = rest.split_once(':')
            && !host.is_empty()
            && !path.is_empty()
        {
            // Flux wants a URL; the scp-like form means the same repository over ssh.
            ("GitRepository", format!("ssh://git@{host}/{path}"))
        } else {
            return Err(SyncError::Url(url.clone()));
        };
        Ok(Self {
            kind,
            url,
            reference: gitops.repository.branch.clone(),
        })
    }

    /// The source object (`flux-system` in `flux-system`).
    pub fn object(&self) -> Value {
        let mut spec = Map::new();
        spec.insert("interval".into(), json!(SOURCE_INTERVAL));
        spec.insert("url".into(), json!(self.url));
        if self.kind == "OCIRepository" {
            spec.insert("ref".into(), json!({"tag": self.reference}));
        } else {
            spec.insert("ref".into(), json!({"branch": self.reference}));
            if self.url.starts_with("ssh://") {
                spec.insert("secretRef".into(), json!({"name": GIT_AUTH_SECRET}));
            }
        }
        json!({
            "apiVersion": SOURCE_API_VERSION,
            "kind": self.kind,
            "metadata": metadata(SYNC_NAME, Some(NAMESPACE)),
            "spec": spec,
        })
    }
}

/// `./<path>` as Flux Kustomizations write it, from a repository-relative directory.
pub fn flux_path(path: &Path) -> Result<String, SyncError> {
    let mut parts = Vec::new();
    for part in path.components() {
        match part {
            PathPart::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| SyncError::Path(path.display().to_string()))?
                    .to_string(),
            ),
            PathPart::CurDir => {}
            _ => return Err(SyncError::Path(path.display().to_string())),
        }
    }
    Ok(format!("./{}", parts.join("/")))
}

/// A Flux Kustomization in `flux-system` reconciling `path` from the repository source.
pub(crate) struct FluxKustomization<'a> {
    pub name: &'a str,
    pub path: String,
    pub source_kind: &'a str,
    pub depends_on: &'a [&'a str],
    /// Decrypt SOPS files with the `sops-age` Secret.
    pub decrypt: bool,
    /// Wait for every applied object to become ready before reporting Ready.
    pub wait: bool,
}

impl FluxKustomization<'_> {
    pub fn object(&self) -> Value {
        let spec = homelab_kustomize_controller::Spec {
            interval: Some(KUSTOMIZATION_INTERVAL.into()),
            depends_on: self.depends_on.iter().map(|d| d.to_string()).collect(),
            path: Some(self.path.clone()),
            prune: true,
            wait: self.wait,
            timeout: self.wait.then(|| "5m".into()),
            source_ref: Some(homelab_kustomize_controller::SourceRef {
                kind: self.source_kind.into(),
                name: SYNC_NAME.into(),
            }),
            decryption: self
                .decrypt
                .then(|| homelab_kustomize_controller::Decryption {
                    provider: "sops".into(),
                    secret: Some(SOPS_SECRET.into()),
                }),
            ..Default::default()
        }
        .to_json();
        json!({
            "apiVersion": KUSTOMIZATION_API_VERSION,
            "kind": KUSTOMIZATION_KIND,
            "metadata": metadata(self.name, Some(NAMESPACE)),
            "spec": spec,
        })
    }
}

/// The objects `flux bootstrap` applies and `flux-system/gotk-sync.yaml` holds: the source and the root
/// Kustomization reconciling the tree at `gitops.path`.
pub fn sync_objects(gitops: &Gitops) -> Result<Vec<Value>, SyncError> {
    let source = Source::from_gitops(gitops)?;
    let root = FluxKustomization {
        name: SYNC_NAME,
        path: flux_path(&gitops.path)?,
        source_kind: source.kind,
        depends_on: &[],
        decrypt: false,
        wait: false,
    };
    Ok(vec![source.object(), root.object()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn gitops(url: &str) -> Gitops {
        Gitops {
            path: PathBuf::from("kubernetes"),
            repository: homelab_config::Repository {
                url: url.into(),
                branch: "main".into(),
            },
            nfs: None,
        }
    }

    #[test]
    fn ssh_sources_authenticate_with_the_deploy_key_secret() {
        let objects = sync_objects(&gitops("ssh://git@github.com/o/r.git")).unwrap();
        assert_eq!(objects[0]["kind"], "GitRepository");
        assert_eq!(objects[0]["spec"]["secretRef"]["name"], GIT_AUTH_SECRET);
        assert_eq!(objects[1]["spec"]["path"], "./kubernetes");
        let https = sync_objects(&gitops("https://github.com/o/r")).unwrap();
        assert!(https[0]["spec"].get("secretRef").is_none());
    }

    #[test]
    fn scp_like_urls_become_ssh_urls() {
        let source = Source::from_gitops(&gitops("git@github.com:o/r.git")).unwrap();
        assert_eq!(source.url, "ssh://git@github.com/o/r.git");
    }

    #[test]
    fn oci_urls_use_an_oci_repository_and_the_tag() {
        let objects = sync_objects(&gitops("oci://ghcr.io/o/manifests")).unwrap();
        assert_eq!(objects[0]["kind"], "OCIRepository");
        assert_eq!(objects[0]["spec"]["ref"]["tag"], "main");
        assert_eq!(objects[1]["spec"]["sourceRef"]["kind"], "OCIRepository");
    }

    #[test]
    fn paths_are_relative_and_contained() {
        assert_eq!(flux_path(Path::new("kubernetes")).unwrap(), "./kubernetes");
        assert_eq!(flux_path(Path::new("./a/b/")).unwrap(), "./a/b");
        assert_eq!(flux_path(Path::new(".")).unwrap(), "./");
        assert!(flux_path(Path::new("../x")).is_err());
        assert!(flux_path(Path::new("/x")).is_err());
        assert_eq!(
            Source::from_gitops(&gitops("ftp://x")),
            Err(SyncError::Url("ftp://x".into()))
        );
    }
}
