//! An infrastructure component: the pattern every directory under `infrastructure/` follows — a namespace,
//! a HelmRepository, a HelmRelease, any extra objects, and a kustomization listing them.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::charts::PinnedChart;
use crate::kustomization;
use crate::manifest::{self, TreeFile, metadata};

/// How often Flux checks the chart repository, and reconciles the release.
const REPOSITORY_INTERVAL: &str = "1h";
const RELEASE_INTERVAL: &str = "30m";

/// One Helm-packaged infrastructure component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Directory, namespace, HelmRepository and HelmRelease name (a DNS-1123 label).
    pub name: String,
    pub chart: String,
    /// `https://…` (a Helm repository index) or `oci://…` (an OCI registry).
    pub repo_url: String,
    /// An exact chart version (`1.2.3`, `1.2.3-rc.1`); ranges are refused so upgrades are commits.
    pub version: String,
    /// Helm values; `Value::Null` or an empty map for none.
    pub values: Value,
    /// More objects of the component, each in its own file: (file name, object).
    pub extra: Vec<(String, Value)>,
}

/// Why a component description is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ComponentError {
    #[error("component name `{name}` {reason}")]
    Name { name: String, reason: &'static str },
    #[error("chart name `{0}` is not a Helm chart name (lowercase letters, digits, `-`, `_`, `.`)")]
    Chart(String),
    #[error(
        "repository URL `{0}` must start with https:// (a Helm repository) or oci:// (an OCI registry)"
    )]
    RepoUrl(String),
    #[error(
        "chart version `{0}` is not an exact SemVer version like 1.2.3 (ranges are not pinned)"
    )]
    Version(String),
}

impl Component {
    /// A component without extra objects, from a pinned chart.
    pub fn from_chart(name: &str, chart: &PinnedChart, values: Value) -> Self {
        Self {
            name: name.to_string(),
            chart: chart.name.to_string(),
            repo_url: chart.repo_url.to_string(),
            version: chart.version.to_string(),
            values,
            extra: Vec::new(),
        }
    }

    /// Checks the name, chart, repository URL and version.
    pub fn validate(&self) -> Result<(), ComponentError> {
        check_name(&self.name)?;
        let chart_ok = !self.chart.is_empty()
            && self
                .chart
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !chart_ok {
            return Err(ComponentError::Chart(self.chart.clone()));
        }
        let url_ok = ["https://", "oci://"].iter().any(|scheme| {
            self.repo_url
                .strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
        });
        if !url_ok {
            return Err(ComponentError::RepoUrl(self.repo_url.clone()));
        }
        if !is_exact_semver(&self.version) {
            return Err(ComponentError::Version(self.version.clone()));
        }
        Ok(())
    }

    /// The component's files under `dir` (e.g. `kubernetes/infrastructure/<name>`), its kustomization last.
    pub fn files(&self, dir: &Path) -> Vec<TreeFile> {
        let mut files = vec![
            ("namespace.yaml".to_string(), self.namespace()),
            ("helmrepository.yaml".to_string(), self.helm_repository()),
            ("helmrelease.yaml".to_string(), self.helm_release()),
        ];
        files.extend(self.extra.iter().cloned());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let kustomization = kustomization::render(&names);
        let mut out: Vec<TreeFile> = files
            .iter()
            .map(|(name, object)| TreeFile {
                path: dir.join(name),
                contents: manifest::render(std::slice::from_ref(object)),
            })
            .collect();
        out.push(TreeFile {
            path: dir.join(kustomization::FILE_NAME),
            contents: kustomization,
        });
        out
    }

    fn namespace(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(&self.name, None)})
    }

    fn helm_repository(&self) -> Value {
        let mut spec = Map::new();
        if self.repo_url.starts_with("oci://") {
            spec.insert("type".into(), json!("oci"));
        }
        spec.insert("interval".into(), json!(REPOSITORY_INTERVAL));
        spec.insert("url".into(), json!(self.repo_url));
        json!({
            "apiVersion": crate::sync::SOURCE_API_VERSION,
            "kind": "HelmRepository",
            "metadata": metadata(&self.name, Some(&self.name)),
            "spec": spec,
        })
    }

    fn helm_release(&self) -> Value {
        let mut spec = Map::new();
        spec.insert("interval".into(), json!(RELEASE_INTERVAL));
        spec.insert(
            "chart".into(),
            json!({"spec": {
                "chart": self.chart,
                "version": self.version,
                "sourceRef": {"kind": "HelmRepository", "name": self.name},
            }}),
        );
        spec.insert(
            "install".into(),
            json!({"crds": "CreateReplace", "remediation": {"retries": 3}}),
        );
        spec.insert(
            "upgrade".into(),
            json!({"crds": "CreateReplace", "remediation": {"retries": 3}}),
        );
        let has_values = match &self.values {
            Value::Null => false,
            Value::Object(m) => !m.is_empty(),
            _ => true,
        };
        if has_values {
            spec.insert("values".into(), self.values.clone());
        }
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": metadata(&self.name, Some(&self.name)),
            "spec": spec,
        })
    }
}

/// A DNS-1123 label: what a namespace and a directory entry in a kustomization can both be.
pub(crate) fn check_name(name: &str) -> Result<(), ComponentError> {
    let err = |reason| {
        Err(ComponentError::Name {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return err("must be 1 to 63 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return err("may only contain lowercase letters, digits and `-`");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return err("must start and end with a letter or digit");
    }
    Ok(())
}

/// `MAJOR.MINOR.PATCH` with optional `-pre` and `+build`, as Helm chart versions are.
fn is_exact_semver(v: &str) -> bool {
    let (core, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let ident = |s: &str| {
        s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(ident)
        && build.is_none_or(ident)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn component() -> Component {
        Component {
            name: "cert-manager".into(),
            chart: "cert-manager".into(),
            repo_url: "https://charts.jetstack.io".into(),
            version: "1.19.1".into(),
            values: Value::Null,
            extra: Vec::new(),
        }
    }

    #[test]
    fn accepts_a_well_formed_component() {
        assert_eq!(component().validate(), Ok(()));
        let oci = Component {
            repo_url: "oci://ghcr.io/example/charts".into(),
            version: "0.1.0-rc.1+build.5".into(),
            ..component()
        };
        assert_eq!(oci.validate(), Ok(()));
    }

    #[test]
    fn refuses_names_that_are_not_dns_labels() {
        for bad in ["", "Cert", "a_b", "-a", "a-", "a/b", "..", &"a".repeat(64)] {
            let c = Component {
                name: bad.to_string(),
                ..component()
            };
            assert!(
                matches!(c.validate(), Err(ComponentError::Name { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_version_ranges_and_bad_urls() {
        for bad in [
            "", "1.2", "^1.2.3", ">=1.0.0", "1.2.x", "01.2.3", "v1.2.3", "1.2.3 ",
        ] {
            let c = Component {
                version: bad.into(),
                ..component()
            };
            assert_eq!(
                c.validate(),
                Err(ComponentError::Version(bad.into())),
                "{bad}"
            );
        }
        for bad in [
            "http://charts.example",
            "charts.example",
            "https://",
            "oci://a b",
        ] {
            let c = Component {
                repo_url: bad.into(),
                ..component()
            };
            assert_eq!(
                c.validate(),
                Err(ComponentError::RepoUrl(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn oci_repositories_are_typed_oci() {
        let c = Component {
            repo_url: "oci://ghcr.io/example/charts".into(),
            ..component()
        };
        let files = c.files(Path::new("infra/x"));
        let repo = &files[1];
        assert!(repo.contents.contains("type: oci"), "{}", repo.contents);
    }
}
