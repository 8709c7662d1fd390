//! Semantic versions for Talos and Kubernetes (`v1.12.4`, `1.35.0`), and which Kubernetes a Talos supports.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Pre-release suffix such as `beta.1`, kept for display; it sorts after the release here, which is
    /// only used for range checks on minor versions.
    pub pre: Option<String>,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: None,
        }
    }

    /// `v1.12.4` — the form Talos and the Image Factory use.
    pub fn with_v(&self) -> String {
        format!("v{self}")
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix('v').unwrap_or(s);
        let (core, pre) = match bare.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_string())),
            Some(_) => return Err(format!("`{s}` has an empty pre-release suffix")),
            None => (bare, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let number = |p: &str| -> Result<u64, String> {
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                Err(format!(
                    "`{s}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. v1.12.4)"
                ))
            } else {
                p.parse()
                    .map_err(|_| format!("`{s}` has a component that is too large"))
            }
        };
        match parts.as_slice() {
            [major, minor, patch] => Ok(Version {
                major: number(major)?,
                minor: number(minor)?,
                patch: number(patch)?,
                pre,
            }),
            _ => Err(format!(
                "`{s}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. v1.12.4)"
            )),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The oldest Talos homelabctl generates configs for: 1.12 introduced `HostnameConfig` and the other
/// multi-document network configs the generated machine config relies on.
pub const MINIMUM_TALOS: Version = Version::new(1, 12, 0);

/// The Kubernetes minor versions a Talos minor release supports (Talos `constants.go`:
/// `MinimumKubernetesVersion`/`MaximumKubernetesVersion`; six minors, ending with the one it ships), from
/// [`TALOS_RULES`]; `None` for a Talos minor homelabctl does not know.
pub fn supported_kubernetes_minors(talos: &Version) -> Option<(u64, u64)> {
    talos_rules(talos).map(|r| (r.kubernetes_min.1, r.kubernetes_max_exclusive.1))
}

/// What Talos allows for one minor release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalosRules {
    /// `(major, minor)` of the release.
    pub minor: (u64, u64),
    /// The oldest running version the installer of this release upgrades.
    pub upgrade_from: (u64, u64, u64),
    /// The oldest Kubernetes this release runs.
    pub kubernetes_min: (u64, u64, u64),
    /// The first Kubernetes version this release no longer runs (exclusive, `1.N.99` in Talos).
    pub kubernetes_max_exclusive: (u64, u64, u64),
}

/// The Talos releases homelabctl knows the rules of, oldest first.
pub const TALOS_RULES: &[TalosRules] = &[
    TalosRules {
        minor: (1, 10),
        upgrade_from: (1, 8, 0),
        kubernetes_min: (1, 28, 0),
        kubernetes_max_exclusive: (1, 33, 99),
    },
    TalosRules {
        minor: (1, 11),
        upgrade_from: (1, 9, 0),
        kubernetes_min: (1, 29, 0),
        kubernetes_max_exclusive: (1, 34, 99),
    },
    TalosRules {
        minor: (1, 12),
        upgrade_from: (1, 10, 0),
        kubernetes_min: (1, 30, 0),
        kubernetes_max_exclusive: (1, 35, 99),
    },
    TalosRules {
        minor: (1, 13),
        upgrade_from: (1, 11, 0),
        kubernetes_min: (1, 31, 0),
        kubernetes_max_exclusive: (1, 36, 99),
    },
];

/// The rules of the Talos release `talos` belongs to, if homelabctl knows them.
pub fn talos_rules(talos: &Version) -> Option<&'static TalosRules> {
    TALOS_RULES
        .iter()
        .find(|r| r.minor == (talos.major, talos.minor))
}

/// The Kubernetes version a Talos release installs by default.
pub fn default_kubernetes_for(talos: &Version) -> Version {
    let newest = supported_kubernetes_minors(talos).map_or(35, |(_, newest)| newest);
    Version::new(1, newest, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_v() {
        assert_eq!("v1.12.4".parse::<Version>(), Ok(Version::new(1, 12, 4)));
        assert_eq!("1.35.0".parse::<Version>(), Ok(Version::new(1, 35, 0)));
        assert!("1.12".parse::<Version>().is_err());
        assert!("v1.012.0".parse::<Version>().is_err());
        assert_eq!(
            "v1.13.0-beta.1".parse::<Version>().map(|v| v.pre),
            Ok(Some("beta.1".into()))
        );
    }

    #[test]
    fn talos_1_12_supports_kubernetes_1_30_to_1_35() {
        assert_eq!(
            supported_kubernetes_minors(&Version::new(1, 12, 4)),
            Some((30, 35))
        );
        assert_eq!(
            default_kubernetes_for(&Version::new(1, 12, 4)),
            Version::new(1, 35, 0)
        );
        assert_eq!(
            supported_kubernetes_minors(&Version::new(1, 13, 9)),
            Some((31, 36))
        );
        assert_eq!(supported_kubernetes_minors(&Version::new(1, 14, 0)), None);
    }
}
