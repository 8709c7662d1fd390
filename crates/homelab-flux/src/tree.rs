//! The whole Flux tree `homelabctl init` writes, generated from `homelab.yaml`.

use std::path::{Path, PathBuf};

use homelab_config::{Config, Gitops, Nfs};
use serde_json::{Value, json};

use crate::charts;
use crate::component::Component;
use crate::kustomization;
use crate::manifest::{self, TreeFile};
use crate::policy;
use crate::sync::{self, FluxKustomization, Source, SyncError};

/// The directory of the infrastructure components, under the tree root.
pub const INFRASTRUCTURE_DIR: &str = "infrastructure";
/// The directory of the workloads, under the tree root.
pub const APPS_DIR: &str = "apps";
/// The Flux Kustomization reconciling Kyverno policies once Kyverno's CRDs exist.
pub const POLICIES_KUSTOMIZATION: &str = "infrastructure-policies";

/// The StorageClass the NFS provisioner serves; the cluster's default.
pub const NFS_STORAGE_CLASS: &str = "nfs-client";
/// The provisioner name the chart registers and the StorageClass points at.
pub const NFS_PROVISIONER_NAME: &str = "k8s-sigs.io/nfs-subdir-external-provisioner";

/// Why no tree can be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("homelab.yaml has no `gitops` section, so there is no Flux tree to create")]
    NoGitops,
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Every file of the tree, with paths relative to the repository root (under `gitops.path`).
pub fn tree(config: &Config) -> Result<Vec<TreeFile>, TreeError> {
    let gitops = config.gitops.as_ref().ok_or(TreeError::NoGitops)?;
    let root = &gitops.path;
    let source = Source::from_gitops(gitops)?;
    let file = |rel: &str, contents: String| TreeFile {
        path: root.join(rel),
        contents,
    };
    let mut files = vec![
        file(
            kustomization::FILE_NAME,
            kustomization::render(&[sync::NAMESPACE]),
        ),
        file(
            "flux-system/kustomization.yaml",
            kustomization::render(&["gotk-sync.yaml", "infrastructure.yaml", "apps.yaml"]),
        ),
        file(
            "flux-system/gotk-sync.yaml",
            manifest::render(&sync::sync_objects(gitops)?),
        ),
        file(
            "flux-system/infrastructure.yaml",
            manifest::render(&infrastructure_kustomizations(gitops, &source)?),
        ),
        file(
            "flux-system/apps.yaml",
            manifest::render(&[apps_kustomization(gitops, &source)?]),
        ),
    ];

    let infra = root.join(INFRASTRUCTURE_DIR);
    let mut components = Vec::new();
    if let Some(nfs) = &gitops.nfs {
        components.push(nfs_provisioner(nfs));
    }
    components.push(kyverno());
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    files.push(TreeFile {
        path: infra.join(kustomization::FILE_NAME),
        contents: kustomization::render(&names),
    });
    for c in &components {
        files.extend(c.files(&infra.join(&c.name)));
    }
    let policies = policies_dir(Path::new(""));
    files.push(TreeFile {
        path: infra.join(&policies).join("clusterpolicy.yaml"),
        contents: manifest::render(&[policy::cluster_policy()]),
    });
    files.push(TreeFile {
        path: infra.join(&policies).join(kustomization::FILE_NAME),
        contents: kustomization::render(&["clusterpolicy.yaml"]),
    });
    files.push(file(
        &format!("{APPS_DIR}/{}", kustomization::FILE_NAME),
        kustomization::render(&[]),
    ));
    Ok(files)
}

/// `kyverno/policies` under `infra`: kept out of `kyverno/kustomization.yaml` because its ClusterPolicy
/// can only be applied once the Kyverno chart has installed the CRD; a separate Flux Kustomization that
/// depends on `infrastructure` applies it.
fn policies_dir(infra: &Path) -> PathBuf {
    infra.join("kyverno").join("policies")
}

fn infrastructure_kustomizations(
    gitops: &Gitops,
    source: &Source,
) -> Result<Vec<Value>, SyncError> {
    let infra = gitops.path.join(INFRASTRUCTURE_DIR);
    let infrastructure = FluxKustomization {
        name: "infrastructure",
        path: sync::flux_path(&infra)?,
        source_kind: source.kind,
        depends_on: &[],
        decrypt: true,
        wait: true,
    };
    let policies = FluxKustomization {
        name: POLICIES_KUSTOMIZATION,
        path: sync::flux_path(&policies_dir(&infra))?,
        source_kind: source.kind,
        depends_on: &["infrastructure"],
        decrypt: true,
        wait: false,
    };
    Ok(vec![infrastructure.object(), policies.object()])
}

fn apps_kustomization(gitops: &Gitops, source: &Source) -> Result<Value, SyncError> {
    Ok(FluxKustomization {
        name: "apps",
        path: sync::flux_path(&gitops.path.join(APPS_DIR))?,
        source_kind: source.kind,
        depends_on: &["infrastructure"],
        decrypt: true,
        wait: false,
    }
    .object())
}

/// The NFS subdir external provisioner on the NAS export, and the default StorageClass it serves.
fn nfs_provisioner(nfs: &Nfs) -> Component {
    let values = json!({
        "nfs": {"server": nfs.server, "path": nfs.export},
        // The StorageClass is a file of its own (below), so it is visible and reviewable in the tree.
        "storageClass": {"create": false, "provisionerName": NFS_PROVISIONER_NAME},
    });
    let storage_class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": NFS_STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": NFS_PROVISIONER_NAME,
        "parameters": {"archiveOnDelete": "true"},
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": true,
        "volumeBindingMode": "Immediate",
    });
    let mut c = Component::from_chart(
        "nfs-provisioner",
        &charts::NFS_SUBDIR_EXTERNAL_PROVISIONER,
        values,
    );
    c.extra.push(("storageclass.yaml".into(), storage_class));
    c
}

/// Kyverno, the policy engine; its image-verification policy lives in `kyverno/policies`.
fn kyverno() -> Component {
    Component::from_chart("kyverno", &charts::KYVERNO, Value::Null)
}
