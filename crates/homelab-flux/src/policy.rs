//! The Kyverno ClusterPolicy that verifies the signatures of Flux and Kyverno images in audit mode.

use serde_json::{Value, json};

/// The policy's name.
pub const NAME: &str = "verify-ghcr-image-signatures";

/// Namespaces the policy never looks at.
pub const EXCLUDED_NAMESPACES: &[&str] = &["kube-system", "kyverno"];

/// (image pattern, keyless signing subject): both projects sign with cosign keyless from GitHub Actions.
const SIGNED: &[(&str, &str)] = &[
    ("ghcr.io/fluxcd/*", "https://github.com/fluxcd/*"),
    ("ghcr.io/kyverno/*", "https://github.com/kyverno/*"),
];

/// Audit mode: unverified images are admitted and reported in PolicyReports (`kubectl get policyreport -A`).
/// Moving to `Enforce` means reviewing those reports first.
pub fn cluster_policy() -> Value {
    let verify: Vec<Value> = SIGNED
        .iter()
        .map(|(image, subject)| {
            json!({
                "imageReferences": [image],
                "failureAction": "Audit",
                // Rewriting tags to digests is refused in audit mode, and tags stay allowed.
                "mutateDigest": false,
                "verifyDigest": false,
                "attestors": [{"entries": [{"keyless": {
                    "subject": subject,
                    "issuer": "https://token.actions.githubusercontent.com",
                    "rekor": {"url": "https://rekor.sigstore.dev"},
                }}]}],
            })
        })
        .collect();
    json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": NAME,
            "annotations": {
                "policies.kyverno.io/title": "Verify Flux and Kyverno image signatures",
                "policies.kyverno.io/description":
                    "Checks the cosign keyless signatures of ghcr.io/fluxcd and ghcr.io/kyverno images. \
                     Audit mode: violations are reported, not blocked.",
            },
        },
        "spec": {
            "background": false,
            "webhookTimeoutSeconds": 30,
            "rules": [{
                "name": "verify-signatures",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "exclude": {"any": [{"resources": {"namespaces": EXCLUDED_NAMESPACES}}]},
                "verifyImages": verify,
            }],
        },
    })
}
