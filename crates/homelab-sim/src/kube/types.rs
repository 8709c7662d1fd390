//! The resource types the Kubernetes simulator serves: built-in groups plus whatever
//! CustomResourceDefinitions register, with the discovery documents derived from them.

use serde_json::{Value, json};

/// One served resource type (a group/version/plural).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for core)
    pub group: String,
    /// version (`v1`)
    pub version: String,
    /// plural resource name (`secrets`)
    pub plural: String,
    /// singular name
    pub singular: String,
    /// kind (`Secret`)
    pub kind: String,
    /// whether objects live in a namespace
    pub namespaced: bool,
    /// whether the type has a `status` subresource
    pub status: bool,
    /// kubectl short names
    pub short_names: Vec<String>,
}

impl ResourceType {
    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        status: bool,
        short: &[&str],
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            status,
            short_names: short.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `group/version` (or `v1` for core).
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Types a CustomResourceDefinition object declares (served versions only).
    pub fn from_crd(crd: &Value) -> Vec<Self> {
        let spec = &crd["spec"];
        let (Some(group), Some(plural), Some(kind)) = (
            spec["group"].as_str(),
            spec["names"]["plural"].as_str(),
            spec["names"]["kind"].as_str(),
        ) else {
            return Vec::new();
        };
        let singular = spec["names"]["singular"]
            .as_str()
            .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
        let short_names: Vec<String> = spec["names"]["shortNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .filter_map(|v| {
                Some(Self {
                    group: group.into(),
                    version: v["name"].as_str()?.into(),
                    plural: plural.into(),
                    singular: singular.clone(),
                    kind: kind.into(),
                    namespaced,
                    status: v["subresources"]["status"].is_object(),
                    short_names: short_names.clone(),
                })
            })
            .collect()
    }
}

/// The built-in types (the subset a homelab bootstrap touches).
pub fn builtin_types() -> Vec<ResourceType> {
    let b = ResourceType::builtin;
    vec![
        b("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
        b("", "v1", "nodes", "Node", false, true, &["no"]),
        b("", "v1", "secrets", "Secret", true, false, &[]),
        b("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
        b(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            false,
            &["sa"],
        ),
        b("", "v1", "services", "Service", true, true, &["svc"]),
        b("", "v1", "pods", "Pod", true, true, &["po"]),
        b(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            true,
            &["pvc"],
        ),
        b(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            true,
            &["deploy"],
        ),
        b("apps", "v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
        b(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            true,
            &["rs"],
        ),
        b(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            true,
            &["sts"],
        ),
        b("batch", "v1", "jobs", "Job", true, true, &[]),
        b("batch", "v1", "cronjobs", "CronJob", true, true, &["cj"]),
        b(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            false,
            &["netpol"],
        ),
        b(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            true,
            true,
            &["ing"],
        ),
        b(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
            false,
            &["sc"],
        ),
        b(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            true,
            &["pdb"],
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            false,
            &[],
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            false,
            &[],
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            false,
            &[],
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            false,
            &[],
        ),
        b(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
            &["crd", "crds"],
        ),
    ]
}

const VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update"];

/// `GET /api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": VERBS, "shortNames": t.short_names,
        }));
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn group_doc(types: &[ResourceType], group: &str) -> Option<Value> {
    let mut versions: Vec<&str> = types
        .iter()
        .filter(|t| t.group == group)
        .map(|t| t.version.as_str())
        .collect();
    versions.dedup();
    let preferred = *versions.first()?;
    let v: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    Some(json!({
        "name": group, "versions": v,
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred},
    }))
}

/// `GET /apis`.
pub fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<&str> = types
        .iter()
        .map(|t| t.group.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let docs: Vec<Value> = groups.iter().filter_map(|g| group_doc(types, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

/// `GET /apis/<group>`.
pub fn group(types: &[ResourceType], group: &str) -> Option<Value> {
    let mut doc = group_doc(types, group)?;
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}
