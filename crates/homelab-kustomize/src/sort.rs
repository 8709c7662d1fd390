//! Output order: kustomize's legacy order (kinds first/last, then group_version_kind, then
//! namespace/name) or FIFO (`sortOptions: {order: fifo}`).

use crate::kustomization::SortOptions;
use crate::resource::Resource;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn or(s: &str, d: &'static str) -> String {
    if s.is_empty() {
        d.to_string()
    } else {
        s.to_string()
    }
}

fn gvk_string(r: &Resource) -> String {
    let (g, v) = r.group_version();
    format!("{}_{}_{}", or(g, "~G"), or(v, "~V"), or(r.kind(), "~K"))
}

fn legacy_string(r: &Resource) -> String {
    let (g, v) = r.group_version();
    format!(
        "{}_{}_{}|{}|{}",
        or(r.kind(), "~K"),
        or(v, "~V"),
        or(g, "~G"),
        or(r.namespace(), "~X"),
        or(r.name(), "~N")
    )
}

/// Sorts `resources` per the root kustomization's `sortOptions`.
pub fn sort(resources: &mut [Resource], opts: Option<&SortOptions>) {
    if opts.is_some_and(|o| o.fifo) {
        return;
    }
    let first: Vec<String> = opts
        .and_then(|o| o.order_first.clone())
        .unwrap_or_else(|| ORDER_FIRST.iter().map(|s| s.to_string()).collect());
    let last: Vec<String> = opts
        .and_then(|o| o.order_last.clone())
        .unwrap_or_else(|| ORDER_LAST.iter().map(|s| s.to_string()).collect());
    let rank = |k: &str| -> i64 {
        if let Some(i) = first.iter().position(|x| x == k) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|x| x == k) {
            return 1 + i as i64;
        }
        0
    };
    resources.sort_by_cached_key(|r| (rank(r.kind()), gvk_string(r), legacy_string(r)));
}
