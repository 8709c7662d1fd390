//! Talos' own configpatcher cases (`testdata/talos-v1.12.4/configpatcher/testdata`, from upstream's
//! `apply_test.go` and `load_test.go`): every case must give upstream's expected output byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use homelab_talos::configpatcher::{Config, JsonTarget, Patch};
use proptest::prelude::*;

fn dir() -> PathBuf {
    super::testdata().join("talos-v1.12.4/configpatcher/testdata")
}

fn read(rel: &str) -> String {
    let path = dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

enum Expect {
    Output(&'static str),
    Error(&'static str),
}

/// upstream's test table: (config, patches in order, expected).
const CASES: &[(&str, &[&str], Expect)] = &[
    (
        "apply/config.yaml",
        &[
            "apply/strategic1.yaml",
            "apply/jsonpatch1.yaml",
            "apply/jsonpatch2.yaml",
            "apply/strategic2.yaml",
            "apply/strategic3.yaml",
        ],
        Expect::Output("apply/expected.yaml"),
    ),
    (
        "apply/config.yaml",
        &["apply/strategic4.yaml"],
        Expect::Output("apply/expected_manifests.yaml"),
    ),
    (
        "multidoc/config.yaml",
        &["multidoc/jsonpatch.yaml", "multidoc/strategic1.yaml"],
        Expect::Error(
            "JSON6902 patches are not supported for multi-document machine configuration",
        ),
    ),
    (
        "multidoc/config.yaml",
        &["multidoc/strategic1.yaml", "multidoc/strategic2.yaml"],
        Expect::Output("multidoc/expected.yaml"),
    ),
    (
        "auditpolicy/config.yaml",
        &["auditpolicy/patch1.yaml"],
        Expect::Output("auditpolicy/expected.yaml"),
    ),
    (
        "patchdelete/config.yaml",
        &["patchdelete/strategic1.yaml"],
        Expect::Output("patchdelete/expected.yaml"),
    ),
    (
        "patchdelete/controlplane_orig.yaml",
        &[
            "patchdelete/strategic2.yaml",
            "patchdelete/strategic3.yaml",
            "patchdelete/strategic4.yaml",
        ],
        Expect::Output("patchdelete/controlplane_expected.yaml"),
    ),
    (
        "patchdeletemissing/config.yaml",
        &["patchdeletemissing/strategic1.yaml"],
        Expect::Error(
            "patch delete: path 'machine.network.hostname' in document '/v1alpha1': failed to delete path 'machine.network.hostname': lookup failed",
        ),
    ),
];

fn run(config: &str, patches: &[&str]) -> Result<String, String> {
    let cfg = Config::load(&read(config), config).map_err(|e| e.to_string())?;
    let patches = patches
        .iter()
        .map(|p| Patch::load(&read(p), p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let out = cfg
        .apply(&patches, JsonTarget::WholeConfig)
        .map_err(|e| e.to_string())?;
    Ok(out.to_yaml())
}

#[test]
fn every_upstream_case_reproduces_byte_for_byte() {
    let entries = std::fs::read_dir(dir()).unwrap_or_else(|e| {
        panic!(
            "the configpatcher cases are missing ({}): {e}",
            dir().display()
        )
    });
    let mut on_disk = BTreeSet::new();
    for entry in entries {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            for file in std::fs::read_dir(entry.path()).unwrap() {
                let name = file.unwrap().file_name().to_string_lossy().to_string();
                on_disk.insert(format!("{}/{name}", entry.file_name().to_string_lossy()));
            }
        }
    }
    assert!(
        !on_disk.is_empty(),
        "no configpatcher cases in {}",
        dir().display()
    );
    let mut used = BTreeSet::new();
    let mut failures = Vec::new();
    for (config, patches, expect) in CASES {
        used.insert((*config).to_string());
        used.extend(patches.iter().map(|p| (*p).to_string()));
        let got = run(config, patches);
        match (expect, got) {
            (Expect::Output(want), Ok(got)) => {
                used.insert((*want).to_string());
                if got != read(want) {
                    failures.push(format!(
                        "{config} + {patches:?}: differs from {want}\n--- got\n{got}--- want\n{}",
                        read(want)
                    ));
                }
            }
            (Expect::Error(want), Err(got)) if got.contains(want) => {}
            (_, got) => failures.push(format!("{config} + {patches:?}: unexpected {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let unused: Vec<_> = on_disk.difference(&used).collect();
    assert!(unused.is_empty(), "case files no test uses: {unused:?}");
}

#[test]
fn patch_files_load_as_upstream_expects() {
    assert!(matches!(
        Patch::load(&read("patch.json"), "patch.json").unwrap(),
        Patch::Json6902 { .. }
    ));
    assert!(matches!(
        Patch::load(&read("patch.yaml"), "patch.yaml").unwrap(),
        Patch::Json6902 { .. }
    ));
    assert!(matches!(
        Patch::load(&read("strategic.yaml"), "strategic.yaml").unwrap(),
        Patch::Strategic(_)
    ));
}

#[test]
fn an_unknown_field_in_a_patch_names_its_file_and_line() {
    let err = Patch::load("machine:\n  network:\n    hostnme: x\n", "p.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("p.yaml:3: unknown field `hostnme`"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Patching with a patch that sets nothing (only the document's identity) leaves the config unchanged,
    /// and merging a config into itself is stable for scalars and keyed lists.
    #[test]
    fn an_empty_patch_is_the_identity(hostname in "[a-z][a-z0-9-]{0,20}", mtu in 1280u32..9000, dhcp: bool) {
        let text = format!(
            "version: v1alpha1\nmachine:\n  network:\n    hostname: {hostname}\n    interfaces:\n      - interface: eth0\n        mtu: {mtu}\n        dhcp: {dhcp}\n"
        );
        let cfg = Config::load(&text, "c.yaml").unwrap();
        let before = cfg.to_yaml();
        let empty = Patch::load("machine: {}\n", "empty.yaml").unwrap();
        let after = cfg.clone().apply(&[empty], JsonTarget::WholeConfig).unwrap();
        prop_assert_eq!(&after.to_yaml(), &before);
        let same = Patch::load(&text, "same.yaml").unwrap();
        let again = cfg.apply(&[same], JsonTarget::WholeConfig).unwrap();
        prop_assert_eq!(again.to_yaml(), before);
    }
}

#[test]
fn patches_are_read_with_the_types_of_the_nodes_talos_release() {
    use homelab_talos::machine_config::Patch as NodePatch;
    // BlackholeRouteConfig exists from Talos 1.13 on.
    let text = "apiVersion: v1alpha1\nkind: BlackholeRouteConfig\nname: 10.99.0.0/16\n";
    assert!(NodePatch::parse_for(text, "b.yaml", "v1.13.9").is_ok());
    let err = NodePatch::parse_for(text, "b.yaml", "v1.12.4").unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown document kind v1alpha1/BlackholeRouteConfig"),
        "{err}"
    );
}
