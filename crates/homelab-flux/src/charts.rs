//! The Helm charts the scaffolded infrastructure pins, with the exact versions (never ranges).

/// A Helm chart pinned to one version in one chart repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedChart {
    pub name: &'static str,
    /// A Helm repository index URL (`https://…`) or an OCI registry path (`oci://…`).
    pub repo_url: &'static str,
    pub version: &'static str,
}

/// kubernetes-sigs/nfs-subdir-external-provisioner, chart 4.0.18 (app v4.0.2), the latest chart release.
pub const NFS_SUBDIR_EXTERNAL_PROVISIONER: PinnedChart = PinnedChart {
    name: "nfs-subdir-external-provisioner",
    repo_url: "https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner/",
    version: "4.0.18",
};

/// kyverno/kyverno, chart 3.9.1 (Kyverno v1.19.1; supports Kubernetes 1.33–1.35).
pub const KYVERNO: PinnedChart = PinnedChart {
    name: "kyverno",
    repo_url: "https://kyverno.github.io/kyverno/",
    version: "3.9.1",
};
