//! The schemas the binary carries, so that it needs no file beside it at run time: the Talos machine-config
//! schemas (one per Talos minor, newest patch), the Kubernetes 1.35 local-strict schemas kubeconform uses
//! (resource kinds plus `_definitions.json`), and CRD JSON schemas in the CRDs-catalog layout
//! (`crds/{group}/{kind}_{version}.json`: Flux, Kyverno, and the CRDs homelab repositories commonly use).
//!
//! The files live in this crate's `data/` directory (see `data/README.md` for where each came from);
//! `build.rs` deflates each file on its own into one blob, so a lookup inflates only the file it asks for.
//! This crate is the single owner of that knowledge: the simulator, the Talos validator and `check` all ask
//! here.

use std::io::Read;

mod talos_validator;

/// One packed file: its `/`-separated name below `data/`, where its deflated bytes sit in the blob, and its
/// inflated size.
struct Entry {
    name: &'static str,
    offset: usize,
    packed: usize,
    len: usize,
}

static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/schemas.bin"));
include!(concat!(env!("OUT_DIR"), "/index.rs"));

/// Why an embedded schema could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No embedded Talos config schema covers the requested Talos minor version.
    #[error(
        "no Talos config schema is built in for Talos {version} (built in: {available}); use one of those Talos minor versions"
    )]
    UnknownTalosVersion { version: String, available: String },
    /// The embedded blob does not inflate: the binary was built wrongly.
    #[error("the built-in schema {name} is corrupt ({reason}); rebuild homelabctl")]
    Corrupt { name: String, reason: String },
}

fn entry(name: &str) -> Option<&'static Entry> {
    INDEX
        .binary_search_by(|e| e.name.cmp(name))
        .ok()
        .and_then(|i| INDEX.get(i))
}

/// The names of every embedded file (`talos/config.schema.v1.12.4.json`, `crds/cert-manager.io/certificate_v1.json`, …).
pub fn names() -> impl Iterator<Item = &'static str> {
    INDEX.iter().map(|e| e.name)
}

/// Whether `name` is embedded, without inflating it.
pub fn contains(name: &str) -> bool {
    entry(name).is_some()
}

/// The inflated bytes of the embedded file `name`, or `None` when there is no such file.
pub fn get(name: &str) -> Result<Option<Vec<u8>>, Error> {
    let Some(e) = entry(name) else {
        return Ok(None);
    };
    let corrupt = |reason: String| Error::Corrupt {
        name: name.to_owned(),
        reason,
    };
    let packed = BLOB
        .get(e.offset..e.offset + e.packed)
        .ok_or_else(|| corrupt("index points past the blob".into()))?;
    let mut out = Vec::with_capacity(e.len);
    flate2::read::DeflateDecoder::new(packed)
        .read_to_end(&mut out)
        .map_err(|err| corrupt(err.to_string()))?;
    if out.len() != e.len {
        return Err(corrupt(format!("{} bytes, expected {}", out.len(), e.len)));
    }
    Ok(Some(out))
}

/// The Kubernetes schema file `file` (`deployment-apps-v1.json`, `_definitions.json`) of the
/// `{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}` directory, as kubeconform names it
/// (`v1.35.0`, strict). Only the strict 1.35.0 set is embedded.
pub fn kubernetes(
    normalized_version: &str,
    strict: bool,
    file: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let suffix = if strict { "-strict" } else { "" };
    get(&format!(
        "kubernetes/{normalized_version}-local{suffix}/{file}"
    ))
}

/// The CRD schema of `group`/`kind`/`version` in the CRDs-catalog layout (`kind` lower-cased as the catalog
/// names files).
pub fn crd(group: &str, kind: &str, version: &str) -> Result<Option<Vec<u8>>, Error> {
    get(&format!(
        "crds/{group}/{}_{version}.json",
        kind.to_lowercase()
    ))
}

/// Talos config schemas, one per Talos minor version.
pub mod talos {
    use super::Error;
    pub use crate::talos_validator::KindValidators;

    /// A Talos version as the schema files name it (`v1.12.4`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Version {
        pub major: u64,
        pub minor: u64,
        pub patch: u64,
    }

    impl std::fmt::Display for Version {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
        }
    }

    fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim_start_matches('v').splitn(3, '.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        // A pre-release or build suffix (`1.13.0-beta.1`) does not change which schema applies.
        let patch = it
            .next()
            .map(|p| p.split(['-', '+']).next().unwrap_or(p))
            .map_or(Some(0), |p| p.parse().ok())?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// Every embedded Talos config schema version, oldest first.
    pub fn versions() -> Vec<Version> {
        let mut v: Vec<Version> = super::names()
            .filter_map(|n| {
                n.strip_prefix("talos/config.schema.")?
                    .strip_suffix(".json")
            })
            .filter_map(parse)
            .collect();
        v.sort();
        v
    }

    /// The schema version that applies to Talos `version` (`v1.12.7`, `1.12`): the newest embedded patch of
    /// the same minor version. Talos keeps the config format within a minor release, and later patches only
    /// add fixes, so the newest patch is the most faithful one.
    pub fn pick(version: &str) -> Result<Version, Error> {
        let unknown = || Error::UnknownTalosVersion {
            version: version.to_owned(),
            available: {
                let mut minors: Vec<String> = versions()
                    .iter()
                    .map(|v| format!("v{}.{}", v.major, v.minor))
                    .collect();
                minors.dedup();
                minors.join(", ")
            },
        };
        let want = parse(version).ok_or_else(unknown)?;
        versions()
            .into_iter()
            .filter(|v| v.major == want.major && v.minor == want.minor)
            .max()
            .ok_or_else(unknown)
    }

    /// The config schema JSON for Talos `version` (see [`pick`]) and the version it is.
    pub fn config_schema(version: &str) -> Result<(Version, Vec<u8>), Error> {
        let v = pick(version)?;
        let name = format!("talos/config.schema.{v}.json");
        let bytes = super::get(&name)?.ok_or_else(|| Error::Corrupt {
            name,
            reason: "listed but missing".into(),
        })?;
        Ok((v, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_inflates_to_json() {
        let mut n = 0;
        for name in names() {
            let bytes = get(name).ok().flatten().unwrap_or_default();
            assert!(
                bytes.first() == Some(&b'{'),
                "{name} does not inflate to a JSON object"
            );
            n += 1;
        }
        assert!(n > 300, "only {n} files embedded");
    }

    #[test]
    fn talos_schema_is_picked_by_minor_newest_patch() {
        let p = |v: &str| talos::pick(v).map(|v| v.to_string()).ok();
        assert_eq!(p("v1.12.0").as_deref(), Some("v1.12.11"));
        assert_eq!(p("1.12.4").as_deref(), Some("v1.12.11"));
        assert_eq!(p("v1.11.2").as_deref(), Some("v1.11.6"));
        assert_eq!(p("v1.13.0-beta.1").as_deref(), Some("v1.13.9"));
        let err = talos::pick("v1.9.0")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("v1.11, v1.12, v1.13"), "{err}");
    }

    #[test]
    fn kubernetes_and_crd_lookups_find_their_files() {
        for (got, what) in [
            (
                kubernetes("v1.35.0", true, "deployment-apps-v1.json"),
                "Deployment",
            ),
            (
                kubernetes("v1.35.0", true, "_definitions.json"),
                "_definitions",
            ),
            (
                crd("kustomize.toolkit.fluxcd.io", "Kustomization", "v1"),
                "Flux Kustomization",
            ),
            (
                crd("kyverno.io", "ClusterPolicy", "v1"),
                "Kyverno ClusterPolicy",
            ),
            (
                crd("cert-manager.io", "Certificate", "v1"),
                "cert-manager Certificate",
            ),
            (
                crd("monitoring.coreos.com", "ServiceMonitor", "v1"),
                "ServiceMonitor",
            ),
            (
                crd("gateway.networking.k8s.io", "HTTPRoute", "v1"),
                "HTTPRoute",
            ),
            (
                crd("external-secrets.io", "ExternalSecret", "v1"),
                "ExternalSecret",
            ),
        ] {
            assert!(matches!(got, Ok(Some(_))), "{what} is not embedded");
        }
        assert!(matches!(
            kubernetes("v1.35.0", false, "deployment-apps-v1.json"),
            Ok(None)
        ));
        assert!(matches!(get("nope.json"), Ok(None)));
    }
}
