//! Which version changes homelabctl will make, decided before anything is touched: the Talos upgrade path
//! (the installer refuses a host that is too old), the Kubernetes versions each Talos minor runs, and the
//! one-minor-at-a-time rule of Kubernetes upgrades. Pure functions over [`Version`]s, so `plan` can refuse
//! early and tests can check every combination.
//!
//! The numbers are Talos' own (`pkg/machinery/compatibility/talos1xx`): `MinimumHostUpgradeVersion` and the
//! Kubernetes window `MinimumKubernetesVersion`..`MaximumKubernetesVersion` (that maximum is `1.N.99`,
//! exclusive, so "every 1.N patch"). Talos itself also installs an older minor over a newer host (a
//! downgrade); homelabctl refuses that: going back is a restore, not an upgrade.

use std::fmt;

pub use homelab_config::version::{TALOS_RULES, TalosRules, Version, talos_rules};

fn triple(v: &Version) -> (u64, u64, u64) {
    (v.major, v.minor, v.patch)
}

fn show((major, minor, patch): (u64, u64, u64)) -> String {
    format!("{major}.{minor}.{patch}")
}

fn known_talos_minors() -> String {
    TALOS_RULES
        .iter()
        .map(|r| format!("v{}.{}", r.minor.0, r.minor.1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a version change is refused. Each message says what is refused, why, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionRefusal {
    #[error(
        "Talos v{to} is a release homelabctl does not know the upgrade rules of (it knows {known}); \
         set image.talos_version to one of those, or use a homelabctl that knows v{to}"
    )]
    UnknownTalos { to: Version, known: String },
    #[error(
        "Talos v{to} cannot be installed over v{from}: its installer upgrades only from v{} or newer; \
         upgrade to the newest v{}.{} release first (set image.talos_version to it, apply), then to v{to}",
        show(*.oldest), .oldest.0, .oldest.1
    )]
    TalosTooOld {
        from: Version,
        to: Version,
        /// The oldest host version the target's installer accepts.
        oldest: (u64, u64, u64),
    },
    #[error(
        "Talos v{from} → v{to} is a downgrade, which homelabctl does not do; set image.talos_version back \
         to v{from} (what the nodes run), or restore the cluster from a snapshot taken on v{to}"
    )]
    TalosDowngrade { from: Version, to: Version },
    #[error(
        "Kubernetes {kubernetes} does not run on Talos v{talos} (it runs {} up to the last 1.{} patch); {}",
        show(.rules.kubernetes_min), .rules.kubernetes_max_exclusive.1, outside_hint(kubernetes, .rules)
    )]
    KubernetesOutsideTalos {
        kubernetes: Version,
        talos: Version,
        /// The rules of that Talos release (its Kubernetes range).
        rules: &'static TalosRules,
    },
    #[error(
        "Kubernetes {from} → {to} is a downgrade, which Kubernetes does not support; set \
         cluster.kubernetes_version back to {from}"
    )]
    KubernetesDowngrade { from: Version, to: Version },
    #[error(
        "Kubernetes {from} → {to} skips a minor release: Kubernetes upgrades one minor at a time; \
         go through {via} first (set cluster.kubernetes_version to {via}, apply, then {to})"
    )]
    KubernetesSkip {
        from: Version,
        to: Version,
        via: String,
    },
    #[error(
        "Kubernetes {from} → {to} changes the major version, which no Kubernetes upgrade supports; \
         keep cluster.kubernetes_version at {from}"
    )]
    KubernetesMajor { from: Version, to: Version },
}

/// Whether Talos `to`'s installer accepts a host running `from`. Equal versions are allowed: a schematic
/// change (extensions, SecureBoot) reinstalls the same version.
pub fn talos_upgrade_path(from: &Version, to: &Version) -> Result<(), VersionRefusal> {
    let Some(rules) = talos_rules(to) else {
        return Err(VersionRefusal::UnknownTalos {
            to: to.clone(),
            known: known_talos_minors(),
        });
    };
    if triple(from) > triple(to) {
        return Err(VersionRefusal::TalosDowngrade {
            from: from.clone(),
            to: to.clone(),
        });
    }
    if triple(from) < rules.upgrade_from {
        return Err(VersionRefusal::TalosTooOld {
            from: from.clone(),
            to: to.clone(),
            oldest: rules.upgrade_from,
        });
    }
    Ok(())
}

/// Whether Talos `talos` runs Kubernetes `kubernetes` (Talos refuses a config naming any other version).
pub fn kubernetes_supported(kubernetes: &Version, talos: &Version) -> Result<(), VersionRefusal> {
    let Some(rules) = talos_rules(talos) else {
        return Err(VersionRefusal::UnknownTalos {
            to: talos.clone(),
            known: known_talos_minors(),
        });
    };
    let k = triple(kubernetes);
    if k >= rules.kubernetes_min && k < rules.kubernetes_max_exclusive {
        return Ok(());
    }
    Err(VersionRefusal::KubernetesOutsideTalos {
        kubernetes: kubernetes.clone(),
        talos: talos.clone(),
        rules,
    })
}

/// What to do about a Kubernetes version outside a Talos release's range.
fn outside_hint(kubernetes: &Version, rules: &TalosRules) -> String {
    let (min, max_minor) = (rules.kubernetes_min, rules.kubernetes_max_exclusive.1);
    if triple(kubernetes) < min {
        format!(
            "upgrade Kubernetes to at least {} before this Talos",
            show(min)
        )
    } else {
        format!(
            "upgrade Talos to a release that runs Kubernetes 1.{}, or keep cluster.kubernetes_version at a 1.{max_minor} release",
            kubernetes.minor
        )
    }
}

/// What a Kubernetes version change amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubernetesStep {
    /// Nothing to do: the same version.
    None,
    /// A patch release of the same minor.
    Patch,
    /// The next minor release.
    Minor,
}

/// An allowed Kubernetes upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesPath {
    pub from: Version,
    pub to: Version,
    pub step: KubernetesStep,
}

impl fmt::Display for KubernetesPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kubernetes {} → {}", self.from, self.to)
    }
}

/// Whether Kubernetes may go from `from` to `to` on nodes running `talos_versions`: one minor at a time
/// (a skip names the minor to go through), never down, and `to` inside the range of every node's Talos.
pub fn kubernetes_upgrade_path(
    from: &Version,
    to: &Version,
    talos_versions: &[Version],
) -> Result<KubernetesPath, VersionRefusal> {
    let step = if triple(from) == triple(to) {
        KubernetesStep::None
    } else if from.major != to.major {
        return Err(VersionRefusal::KubernetesMajor {
            from: from.clone(),
            to: to.clone(),
        });
    } else if triple(to) < triple(from) {
        return Err(VersionRefusal::KubernetesDowngrade {
            from: from.clone(),
            to: to.clone(),
        });
    } else if to.minor == from.minor {
        KubernetesStep::Patch
    } else if to.minor == from.minor + 1 {
        KubernetesStep::Minor
    } else {
        return Err(VersionRefusal::KubernetesSkip {
            from: from.clone(),
            to: to.clone(),
            via: format!("{}.{}", from.major, from.minor + 1),
        });
    };
    let mut seen: Vec<&Version> = Vec::new();
    for talos in talos_versions {
        if seen.iter().any(|s| triple(s) == triple(talos)) {
            continue;
        }
        seen.push(talos);
        kubernetes_supported(to, talos)?;
    }
    Ok(KubernetesPath {
        from: from.clone(),
        to: to.clone(),
        step,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v(s: &str) -> Version {
        s.parse().expect("version")
    }

    #[test]
    fn talos_1_13_upgrades_from_1_11_and_1_12_only() {
        assert_eq!(talos_upgrade_path(&v("v1.12.11"), &v("v1.13.9")), Ok(()));
        assert_eq!(talos_upgrade_path(&v("v1.11.0"), &v("v1.13.9")), Ok(()));
        let refused = talos_upgrade_path(&v("v1.10.7"), &v("v1.13.9")).expect_err("too old");
        let text = refused.to_string();
        assert!(
            text.contains("v1.11.0 or newer") && text.contains("newest v1.11 release first"),
            "{text}"
        );
    }

    #[test]
    fn talos_1_12_upgrades_from_1_10() {
        assert_eq!(talos_upgrade_path(&v("v1.10.0"), &v("v1.12.4")), Ok(()));
        assert!(matches!(
            talos_upgrade_path(&v("v1.9.5"), &v("v1.12.4")),
            Err(VersionRefusal::TalosTooOld { .. })
        ));
    }

    #[test]
    fn talos_same_version_is_allowed_downgrade_and_unknown_are_refused() {
        assert_eq!(talos_upgrade_path(&v("v1.12.4"), &v("v1.12.4")), Ok(()));
        let down = talos_upgrade_path(&v("v1.13.9"), &v("v1.12.11")).expect_err("downgrade");
        assert!(
            down.to_string()
                .contains("set image.talos_version back to v1.13.9"),
            "{down}"
        );
        assert!(matches!(
            talos_upgrade_path(&v("v1.12.11"), &v("v1.12.4")),
            Err(VersionRefusal::TalosDowngrade { .. })
        ));
        let unknown = talos_upgrade_path(&v("v1.13.9"), &v("v1.14.0")).expect_err("unknown");
        assert!(unknown.to_string().contains("v1.12, v1.13"), "{unknown}");
    }

    #[test]
    fn kubernetes_ranges_per_talos_minor() {
        let ok = |k: &str, t: &str| kubernetes_supported(&v(k), &v(t)).is_ok();
        assert!(ok("1.30.0", "v1.12.4") && ok("1.35.7", "v1.12.11"));
        assert!(!ok("1.29.9", "v1.12.4") && !ok("1.36.0", "v1.12.11"));
        assert!(ok("1.31.0", "v1.13.9") && ok("1.36.2", "v1.13.9"));
        assert!(!ok("1.30.9", "v1.13.9") && !ok("1.37.0", "v1.13.9"));
        // Talos' maximum is 1.N.99, exclusive.
        assert!(ok("1.36.98", "v1.13.0") && !ok("1.36.99", "v1.13.0"));
    }

    #[test]
    fn a_skipped_minor_names_the_one_to_go_through() {
        let refused =
            kubernetes_upgrade_path(&v("1.35.0"), &v("1.37.0"), &[v("v1.13.9")]).expect_err("skip");
        assert_eq!(
            refused,
            VersionRefusal::KubernetesSkip {
                from: v("1.35.0"),
                to: v("1.37.0"),
                via: "1.36".into()
            }
        );
        assert!(
            refused.to_string().contains("go through 1.36 first"),
            "{refused}"
        );
    }

    #[test]
    fn one_minor_up_inside_every_nodes_range_is_allowed() {
        let path = kubernetes_upgrade_path(
            &v("1.35.0"),
            &v("1.36.2"),
            &[v("v1.13.9"), v("v1.13.9"), v("v1.13.0")],
        )
        .expect("allowed");
        assert_eq!(path.step, KubernetesStep::Minor);
        // A node still on Talos 1.12 cannot run 1.36: the refusal names it.
        let refused =
            kubernetes_upgrade_path(&v("1.35.0"), &v("1.36.2"), &[v("v1.13.9"), v("v1.12.11")])
                .expect_err("1.12 node");
        assert!(
            matches!(&refused, VersionRefusal::KubernetesOutsideTalos { talos, .. } if *talos == v("v1.12.11")),
            "{refused}"
        );
        assert!(matches!(
            kubernetes_upgrade_path(&v("1.36.1"), &v("1.36.0"), &[v("v1.13.9")]),
            Err(VersionRefusal::KubernetesDowngrade { .. })
        ));
        assert_eq!(
            kubernetes_upgrade_path(&v("1.35.0"), &v("1.35.0"), &[v("v1.12.4")]).map(|p| p.step),
            Ok(KubernetesStep::None)
        );
    }

    fn version() -> impl Strategy<Value = Version> {
        (1u64..2, 8u64..40, 0u64..100).prop_map(|(a, b, c)| Version::new(a, b, c))
    }

    proptest! {
        /// Every allowed Kubernetes path moves up by at most one minor and lands inside every node's range;
        /// every skip names exactly the next minor.
        #[test]
        fn kubernetes_paths_move_one_minor_at_most(
            from in version(), to in version(), talos in proptest::collection::vec(version(), 0..4)
        ) {
            match kubernetes_upgrade_path(&from, &to, &talos) {
                Ok(path) => {
                    prop_assert!(triple(&to) >= triple(&from));
                    prop_assert!(to.minor <= from.minor + 1);
                    for t in &talos {
                        prop_assert!(kubernetes_supported(&to, t).is_ok());
                    }
                    prop_assert_eq!(path.step == KubernetesStep::None, triple(&from) == triple(&to));
                }
                Err(VersionRefusal::KubernetesSkip { via, .. }) => {
                    prop_assert!(to.minor > from.minor + 1);
                    prop_assert_eq!(via, format!("1.{}", from.minor + 1));
                }
                Err(VersionRefusal::KubernetesDowngrade { .. }) => prop_assert!(triple(&to) < triple(&from)),
                Err(VersionRefusal::KubernetesOutsideTalos { talos: t, .. }) => {
                    prop_assert!(talos.contains(&t));
                    prop_assert!(kubernetes_supported(&to, &t).is_err());
                }
                Err(VersionRefusal::UnknownTalos { to: t, .. }) => prop_assert!(talos_rules(&t).is_none()),
                Err(other) => prop_assert!(false, "unexpected refusal {other}"),
            }
        }

        /// A Talos upgrade is allowed exactly when the target's minor is known, it is not older than the
        /// host, and the host is at least the target's minimum.
        #[test]
        fn talos_paths_follow_the_table(from in version(), to in version()) {
            let allowed = talos_upgrade_path(&from, &to).is_ok();
            let expected = talos_rules(&to)
                .is_some_and(|r| triple(&from) <= triple(&to) && triple(&from) >= r.upgrade_from);
            prop_assert_eq!(allowed, expected);
        }
    }
}
