//! Every invalid fixture yields exactly the expected diagnostics: severity, line:column and message.

use homelab_config::{Diagnostic, Severity};

use super::{fixture, workspace_root};

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

/// (severity, line, column, message fragment)
type Expected = (Severity, usize, usize, &'static str);

/// (fixture, expected diagnostics): every error and warning, no more, no less.
const CASES: &[(&str, &[Expected])] = &[
    (
        "unknown-top-key",
        &[(E, 25, 1, "unknown key `clustr` at the top level")],
    ),
    (
        "unknown-key-typo",
        &[(E, 3, 3, "unknown key `nodee` in `proxmox`")],
    ),
    (
        "unknown-node-key",
        &[(E, 16, 5, "unknown key `vmid` in `nodes[0]`")],
    ),
    (
        "wrong-type-vm-id",
        &[(
            E,
            16,
            12,
            "`nodes[0].vm_id` must be a whole number, found a string",
        )],
    ),
    (
        "wrong-type-secureboot",
        &[(E, 9, 15, "`image.secureboot` must be true or false")],
    ),
    (
        "wrong-type-nodes-mapping",
        &[(E, 14, 3, "`nodes` must be a list, found a mapping")],
    ),
    (
        "vm-id-out-of-range",
        &[(E, 16, 12, "is 99, outside the allowed range 100–999999999")],
    ),
    (
        "mac-multicast",
        &[(E, 21, 12, "MAC 01:00:5E:00:00:01 is a multicast address")],
    ),
    (
        "mac-malformed",
        &[(E, 21, 12, "`BC:24:11:CA:FE` is not a MAC address")],
    ),
    (
        "address-network",
        &[(
            E,
            22,
            16,
            "192.168.20.0/24 is the network or broadcast address",
        )],
    ),
    (
        "address-bad-prefix",
        &[(E, 22, 16, "prefix /40 is longer than the 32 bits")],
    ),
    ("address-no-prefix", &[(E, 22, 16, "has no prefix length")]),
    (
        "gateway-outside-subnet",
        &[(
            E,
            23,
            16,
            "gateway 192.168.30.1 is outside the node's subnet 192.168.20.0/24",
        )],
    ),
    (
        "gateway-not-ip",
        &[(E, 23, 16, "`router.home` is not an IP address")],
    ),
    (
        "duplicate-node-name",
        &[
            (W, 11, 3, "several control planes"),
            (W, 25, 5, "share the Proxmox host `pve`"),
            (E, 25, 11, "node name `talos-cp-01` is used twice"),
        ],
    ),
    (
        "duplicate-vm-id",
        &[
            (W, 11, 3, "several control planes"),
            (W, 25, 5, "share the Proxmox host `pve`"),
            (E, 26, 12, "VM id 100 is used twice"),
        ],
    ),
    (
        "duplicate-mac",
        &[
            (W, 11, 3, "several control planes"),
            (W, 25, 5, "share the Proxmox host `pve`"),
            (E, 28, 12, "MAC BC:24:11:CA:FE:01 is used twice"),
        ],
    ),
    (
        "duplicate-address",
        &[
            (W, 11, 3, "several control planes"),
            (W, 25, 5, "share the Proxmox host `pve`"),
            (E, 29, 16, "address 192.168.20.100 is used twice"),
        ],
    ),
    (
        "talos-not-semver",
        &[(E, 7, 18, "`v1.12` is not a semantic version")],
    ),
    (
        "talos-too-old",
        &[(E, 7, 18, "Talos v1.11.5 is older than v1.12")],
    ),
    (
        "kubernetes-too-new",
        &[(
            E,
            12,
            23,
            "Kubernetes 1.36.1 is not supported by Talos v1.12.4 (it supports 1.30–1.35)",
        )],
    ),
    (
        "kubernetes-too-old",
        &[(E, 12, 23, "Kubernetes 1.29.4 is not supported")],
    ),
    (
        "no-control-plane",
        &[(E, 14, 3, "there is no control-plane node")],
    ),
    (
        "even-control-planes",
        &[
            (W, 11, 3, "several control planes"),
            (
                W,
                14,
                3,
                "2 control planes: an even number adds no etcd fault tolerance",
            ),
            (W, 25, 5, "share the Proxmox host `pve`"),
        ],
    ),
    (
        "endpoint-http",
        &[(
            E,
            2,
            13,
            "`proxmox.endpoint` must be an https URL, not http://",
        )],
    ),
    ("endpoint-not-url", &[(E, 2, 13, "`pve.home` is not a URL")]),
    (
        "cluster-endpoint-http",
        &[(E, 12, 13, "`cluster.endpoint` must be an https URL")],
    ),
    (
        "tls-insecure-and-fingerprint",
        &[(E, 7, 15, "`proxmox.tls.insecure: true` contradicts")],
    ),
    (
        "tls-fingerprint-and-ca",
        &[
            (E, 7, 14, "CA file `pve-root-ca.pem` does not exist"),
            (E, 8, 18, "sets both `fingerprint` and `ca_file`"),
        ],
    ),
    (
        "tls-fingerprint-malformed",
        &[(E, 7, 18, "is not a SHA-256 fingerprint")],
    ),
    (
        "tls-insecure-warning",
        &[(W, 7, 15, "TLS verification of Proxmox is turned off")],
    ),
    (
        "token-id-malformed",
        &[(E, 4, 13, "`homelabctl-provision` is not an API token id")],
    ),
    (
        "missing-endpoint",
        &[(E, 2, 3, "`endpoint` is required in `proxmox`")],
    ),
    (
        "missing-network",
        &[(E, 14, 5, "`network` is required in `nodes[0]`")],
    ),
    (
        "platform-typo",
        &[(E, 8, 13, "`nocluod` is not one of metal, nocloud")],
    ),
    (
        "encryption-without-secureboot",
        &[(E, 24, 17, "TPM-sealed disk encryption needs SecureBoot")],
    ),
    (
        "pod-subnet-overlaps-lan",
        &[(
            E,
            13,
            17,
            "192.168.0.0/16 overlaps the network of nodes[0] (192.168.20.0/24)",
        )],
    ),
    (
        "subnet-host-bits",
        &[(E, 13, 21, "10.96.0.1/12 has host bits set")],
    ),
    (
        "vlan-out-of-range",
        &[(E, 24, 13, "is 5000, outside the allowed range 1–4094")],
    ),
    ("memory-not-a-size", &[(E, 17, 13, "`lots` is not a size")]),
    (
        "node-name-invalid",
        &[(E, 14, 11, "node name `Talos_CP_01` is not a valid hostname")],
    ),
    ("yaml-syntax-error", &[(E, 4, 11, "YAML syntax error")]),
    ("duplicate-yaml-key", &[(E, 4, 3, "duplicate key `node`")]),
    ("nodes-empty", &[(E, 13, 8, "`nodes` is empty")]),
];

fn describe(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| {
            format!(
                "{:?} {:?} {}",
                d.severity,
                d.span.map(|s| (s.line, s.column)),
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_invalid_fixture_reports_exactly_its_mistakes_with_positions() {
    let dir = workspace_root().join("crates/homelab-config/tests/fixtures/invalid");
    let mut seen = 0;
    for (name, expected) in CASES {
        let path = dir.join(format!("{name}.yaml"));
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let diagnostics = homelab_config::diagnostics(&source, Some(&dir));
        assert_eq!(
            diagnostics.len(),
            expected.len(),
            "{name}: got\n{}",
            describe(&diagnostics)
        );
        for (severity, line, column, fragment) in *expected {
            let found = diagnostics.iter().any(|d| {
                d.severity == *severity
                    && d.span.map(|s| (s.line, s.column)) == Some((*line, *column))
                    && d.message.contains(fragment)
            });
            assert!(
                found,
                "{name}: expected {severity:?} at {line}:{column} containing {fragment:?}; got\n{}",
                describe(&diagnostics)
            );
        }
        assert!(
            diagnostics.iter().all(|d| d.hint.is_some()),
            "{name}: every diagnostic needs a hint:\n{}",
            describe(&diagnostics)
        );
        if expected.iter().any(|(s, ..)| *s == E) {
            assert!(
                homelab_config::parse(&source, Some(&dir)).is_err(),
                "{name} must not load"
            );
        }
        seen += 1;
    }
    let on_disk = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(seen, on_disk, "every fixture file needs an entry in CASES");
    assert!(seen >= 25);
}

#[test]
fn did_you_mean_is_offered_for_misspelt_keys() {
    let source = fixture("crates/homelab-config/tests/fixtures/invalid/unknown-node-key.yaml");
    let diagnostics = homelab_config::diagnostics(&source, None);
    assert_eq!(
        diagnostics[0].hint.as_deref(),
        Some("did you mean `vm_id`?")
    );
}
