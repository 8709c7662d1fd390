//! The Kubernetes simulator's object store: a generic JSON store keyed by group, resource,
//! namespace and name, with the API server's write semantics (resourceVersion, uid,
//! generation, create/update/merge-patch/apply, namespaces that must exist, Secret `stringData`,
//! CRDs registering new types) and Kubernetes-shaped `Status` errors.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use super::types::{ResourceType, builtin_types};

mod snapshot;
mod workloads;

pub use snapshot::{StoreSnapshot, StoredObject};
pub use workloads::KubeTiming;

/// A Kubernetes API error (rendered as a `Status` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code
    pub code: u16,
    /// machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `BadRequest`)
    pub reason: &'static str,
    /// human-readable message
    pub message: String,
    /// the `Status` details (causes, `retryAfterSeconds`), when the API server sends some
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// The `Status` object body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

type Key = (String, String, String, String);

/// Where an object lives.
#[derive(Debug, Clone)]
pub struct Target {
    /// its type
    pub ty: ResourceType,
    /// namespace (namespaced types only)
    pub namespace: Option<String>,
}

impl Target {
    fn key(&self, name: &str) -> Key {
        (
            self.ty.group.clone(),
            self.ty.plural.clone(),
            self.namespace.clone().unwrap_or_default(),
            name.to_owned(),
        )
    }

    fn qualified(&self) -> String {
        if self.ty.group.is_empty() {
            self.ty.plural.clone()
        } else {
            format!("{}.{}", self.ty.plural, self.ty.group)
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", self.qualified()),
        )
    }
}

/// The object store.
#[derive(Debug)]
pub struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    /// Random per store (see [`Store::version`]).
    id: String,
    /// What the workload controllers remember between requests.
    runtime: workloads::Runtime,
}

impl Default for Store {
    fn default() -> Self {
        let mut store = Self {
            types: builtin_types(),
            objects: BTreeMap::new(),
            revision: 0,
            id: {
                use rand::RngCore;
                let mut b = [0u8; 8];
                rand::thread_rng().fill_bytes(&mut b);
                hex::encode(b)
            },
            runtime: workloads::Runtime::default(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let t = store.target("", "v1", "namespaces", None);
            if let Some(t) = t {
                let _ = store.create(
                    &t,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    false,
                );
            }
        }
        store
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp (`2026-11-25T21:30:00Z`); the epoch for seconds beyond the years 1–9999
/// (the simulator only stamps the current time).
pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses the timestamps [`rfc3339`] writes.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn valid_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn without_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

impl Store {
    /// Resolves a URL's group/version/resource (and namespace) to a target.
    pub fn target(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Option<Target> {
        let ty = self
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)?
            .clone();
        Some(Target {
            namespace: if ty.namespaced {
                namespace.map(str::to_owned)
            } else {
                None
            },
            ty,
        })
    }

    /// All served types.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The current resourceVersion.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn bump(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn require_namespace(&self, t: &Target) -> Result<(), ApiError> {
        match &t.namespace {
            Some(ns) if t.ty.namespaced => {
                if self.objects.contains_key(&(
                    String::new(),
                    "namespaces".into(),
                    String::new(),
                    ns.clone(),
                )) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        404,
                        "NotFound",
                        format!("namespaces \"{ns}\" not found"),
                    ))
                }
            }
            None if t.ty.namespaced => Err(ApiError::new(
                400,
                "BadRequest",
                "a namespace is required for this resource",
            )),
            _ => Ok(()),
        }
    }

    /// Lists objects (all namespaces when the target has none), filtered by a label selector.
    pub fn list(&self, t: &Target, label_selector: Option<&str>) -> Value {
        self.list_selected(t, label_selector, None)
    }

    /// [`Store::list`] with a field selector too (`spec.nodeName=NAME`, `metadata.name=NAME`,
    /// `metadata.namespace=NS`, `status.phase=PHASE`, also with `!=`; other fields are refused).
    pub fn list_selected(
        &self,
        t: &Target,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Value {
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                *g == t.ty.group
                    && *p == t.ty.plural
                    && t.namespace.as_ref().is_none_or(|want| want == ns)
            })
            .map(|(_, v)| v)
            .filter(|v| label_selector.is_none_or(|s| matches_selector(v, s)))
            .filter(|v| field_selector.is_none_or(|s| matches_fields(v, s)))
            .cloned()
            .collect();
        json!({
            "kind": format!("{}List", t.ty.kind), "apiVersion": t.ty.group_version(),
            "metadata": {"resourceVersion": self.revision.to_string()}, "items": items,
        })
    }

    /// Reads one object.
    pub fn get(&self, t: &Target, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&t.key(name))
            .cloned()
            .ok_or_else(|| t.not_found(name))
    }

    fn check_body(
        &self,
        t: &Target,
        body: &mut Value,
        url_name: Option<&str>,
    ) -> Result<String, ApiError> {
        let Some(obj) = body.as_object_mut() else {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "the request body is not a JSON object",
            ));
        };
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != t.ty.kind {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "the kind {kind:?} of the body does not match the resource {} (kind {})",
                    t.qualified(),
                    t.ty.kind
                ),
            ));
        }
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if group != t.ty.group {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!(
                    "apiVersion {api_version:?} does not belong to group {:?}",
                    t.ty.group
                ),
            ));
        }
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "metadata must be an object",
            ));
        };
        let name = match (meta.get("name").and_then(Value::as_str), url_name) {
            (Some(n), Some(u)) if n != u => {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    format!(
                        "the name of the object ({n}) does not match the name on the URL ({u})"
                    ),
                ));
            }
            (Some(n), _) => n.to_owned(),
            (None, Some(u)) => u.to_owned(),
            (None, None) => {
                if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                    format!("{prefix}{:05x}", (self.revision * 7919 + 12_345) % 0xfffff)
                } else {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            t.ty.kind
                        ),
                    ));
                }
            }
        };
        if !valid_subdomain(&name) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                    t.ty.kind
                ),
            ));
        }
        meta.insert("name".into(), json!(name));
        match (&t.namespace, meta.get("namespace").and_then(Value::as_str)) {
            (Some(url), Some(body_ns)) if url != body_ns => {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(url), _) => {
                meta.insert("namespace".into(), json!(url));
            }
            (None, _) => {
                meta.remove("namespace");
            }
        }
        normalize_kind(&t.ty.kind, obj)?;
        Ok(name)
    }

    /// Creates an object (`POST`).
    pub fn create(
        &mut self,
        t: &Target,
        mut body: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let name = self.check_body(t, &mut body, None)?;
        self.require_namespace(t)?;
        let key = t.key(&name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.qualified()),
            ));
        }
        if dry_run {
            return Ok(body);
        }
        let rv = self.bump();
        let meta = &mut body["metadata"];
        meta["resourceVersion"] = json!(rv);
        meta["uid"] = json!(uid(self.revision));
        meta["creationTimestamp"] = json!(rfc3339(now_secs()));
        meta["generation"] = json!(1);
        self.objects.insert(key, body.clone());
        self.after_write(t);
        Ok(body)
    }

    /// Replaces an object (`PUT`); `status_only` for the `/status` subresource.
    pub fn update(
        &mut self,
        t: &Target,
        name: &str,
        mut body: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.check_body(t, &mut body, Some(name))?;
        let key = t.key(name);
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| t.not_found(name))?;
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != existing["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    t.qualified()
                ),
            ));
        }
        let merged = if status_only {
            let mut next = existing.clone();
            next["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            next
        } else {
            if t.ty.status {
                match existing.get("status") {
                    Some(s) => body["status"] = s.clone(),
                    None => {
                        if let Some(o) = body.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            body
        };
        Ok(self.commit(t, key, &existing, merged))
    }

    /// Applies a JSON merge patch (`PATCH` merge-patch / strategic-merge-patch).
    pub fn patch(
        &mut self,
        t: &Target,
        name: &str,
        patch: &Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let key = t.key(name);
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| t.not_found(name))?;
        let mut next = existing.clone();
        if status_only {
            if let Some(status) = patch.get("status") {
                merge_patch(&mut next["status"], status);
            }
        } else {
            merge_patch(&mut next, patch);
            if t.ty.status {
                next["status"] = existing.get("status").cloned().unwrap_or(Value::Null);
                if next["status"].is_null()
                    && let Some(o) = next.as_object_mut()
                {
                    o.remove("status");
                }
            }
        }
        self.check_body(t, &mut next, Some(name))?;
        Ok(self.commit(t, key, &existing, next))
    }

    /// Server-side apply (`PATCH` with `application/apply-patch+yaml`): creates the object when
    /// missing, else merges the applied fields into it (maps merge, lists are replaced).
    /// Returns the object and whether it was created.
    pub fn apply(
        &mut self,
        t: &Target,
        name: &str,
        mut body: Value,
    ) -> Result<(Value, bool), ApiError> {
        self.check_body(t, &mut body, Some(name))?;
        let key = t.key(name);
        let Some(existing) = self.objects.get(&key).cloned() else {
            return self.create(t, body, false).map(|v| (v, true));
        };
        let mut next = existing.clone();
        deep_merge(&mut next, &body);
        self.check_body(t, &mut next, Some(name))?;
        Ok((self.commit(t, key, &existing, next), false))
    }

    fn commit(&mut self, t: &Target, key: Key, existing: &Value, mut next: Value) -> Value {
        // Server-owned metadata survives updates.
        for field in ["uid", "creationTimestamp", "resourceVersion"] {
            next["metadata"][field] = existing["metadata"][field].clone();
        }
        let generation = existing["metadata"]["generation"].as_i64().unwrap_or(1);
        let changed = without_meta(existing) != without_meta(&next);
        next["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
        if next == *existing {
            return next;
        }
        next["metadata"]["resourceVersion"] = json!(self.bump());
        self.objects.insert(key, next.clone());
        self.after_write(t);
        next
    }

    /// Deletes an object (a namespace takes its contents with it).
    pub fn delete(&mut self, t: &Target, name: &str) -> Result<Value, ApiError> {
        let removed = self
            .objects
            .remove(&t.key(name))
            .ok_or_else(|| t.not_found(name))?;
        if t.ty.group.is_empty() && t.ty.plural == "namespaces" {
            self.objects.retain(|(_, _, ns, _), _| ns != name);
        }
        if t.ty.plural == "customresourcedefinitions" {
            self.reload_crd_types();
        }
        if t.ty.group.is_empty() && t.ty.plural == "nodes" {
            self.runtime.deleted_nodes.insert(name.to_owned());
        }
        self.bump();
        Ok(removed)
    }

    /// Keeps the served types in line with the stored CRDs after a write.
    fn after_write(&mut self, t: &Target) {
        if t.ty.group == "apiextensions.k8s.io" && t.ty.plural == "customresourcedefinitions" {
            self.reload_crd_types();
        }
    }

    fn reload_crd_types(&mut self) {
        let crds: Vec<Value> = self
            .objects
            .iter()
            .filter(|((g, p, _, _), _)| {
                g == "apiextensions.k8s.io" && p == "customresourcedefinitions"
            })
            .map(|(_, v)| v.clone())
            .collect();
        self.set_crd_types(&crds);
    }

    fn set_crd_types(&mut self, crds: &[Value]) {
        let mut types = builtin_types();
        for crd in crds {
            for ty in ResourceType::from_crd(crd) {
                if !types.iter().any(|t| {
                    t.group == ty.group && t.version == ty.version && t.plural == ty.plural
                }) {
                    types.push(ty);
                }
            }
        }
        self.types = types;
    }

    /// Updates the status of an existing Node object (the kubelet's heartbeat); `false` when
    /// the Node does not exist (a kubelet whose Node was deleted does not bring it back).
    pub fn put_node_status(&mut self, node: Value) -> bool {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let exists = self
            .target("", "v1", "nodes", None)
            .is_some_and(|t| self.objects.contains_key(&t.key(name)));
        if exists {
            self.put_node(node);
        }
        exists
    }

    /// Writes a Node object directly (the kubelet's job on a real cluster).
    pub fn put_node(&mut self, mut node: Value) {
        let Some(t) = self.target("", "v1", "nodes", None) else {
            return;
        };
        let name = node["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = t.key(&name);
        match self.objects.get(&key).cloned() {
            Some(existing) => {
                // The kubelet only registers once; afterwards it patches status, so what others
                // wrote (cordon's `spec.unschedulable`, taints, labels) stays. The control-plane
                // taint is Talos' own: its node-taint controller follows the machine config.
                let mut next = existing.clone();
                next["status"] = node["status"].take();
                follow_control_plane_taint(&mut next, &node);
                self.commit(&t, key, &existing, next);
            }
            None => {
                self.runtime.deleted_nodes.remove(&name);
                node["metadata"]["resourceVersion"] = json!(self.bump());
                node["metadata"]["uid"] = json!(uid(self.revision));
                node["metadata"]["creationTimestamp"] = json!(rfc3339(now_secs()));
                self.objects.insert(key, node);
            }
        }
    }
}

/// Kind-specific normalisation the API server does on every write.
fn normalize_kind(kind: &str, obj: &mut Map<String, Value>) -> Result<(), ApiError> {
    match kind {
        "Secret" => {
            let mut data = obj
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in &data {
                let text = v.as_str().unwrap_or_default();
                if base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .is_err()
                {
                    return Err(ApiError::new(
                        400,
                        "BadRequest",
                        format!("Secret.data[{k}]: illegal base64 data"),
                    ));
                }
            }
            if let Some(Value::Object(string_data)) = obj.remove("stringData") {
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
            if !data.is_empty() {
                obj.insert("data".into(), Value::Object(data));
            }
            obj.entry("type").or_insert_with(|| json!("Opaque"));
        }
        "Namespace" => {
            obj.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            obj.insert("status".into(), json!({"phase": "Active"}));
        }
        "CustomResourceDefinition" => {
            let names = obj
                .get("spec")
                .and_then(|s| s.get("names"))
                .cloned()
                .unwrap_or(Value::Null);
            obj.insert(
                "status".into(),
                json!({
                    "acceptedNames": names,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
                    ],
                }),
            );
        }
        _ => {}
    }
    Ok(())
}

/// Merge for apply: maps merge recursively, everything else is replaced.
fn deep_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

fn uid(n: u64) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(n.to_be_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The fields a field selector may name, as JSON pointers into the object.
pub(crate) fn field_pointer(field: &str) -> Option<&'static str> {
    Some(match field {
        "spec.nodeName" => "/spec/nodeName",
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "status.phase" => "/status/phase",
        "spec.unschedulable" => "/spec/unschedulable",
        _ => return None,
    })
}

/// `a=b,c!=d` field selectors over [`field_pointer`]'s fields (a missing field reads as "").
fn matches_fields(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|req| {
        let (field, want, negate) = match req.split_once("!=") {
            Some((f, v)) => (f, v, true),
            None => match req.split_once('=') {
                Some((f, v)) => (f, v.trim_start_matches('='), false),
                None => return false,
            },
        };
        let Some(pointer) = field_pointer(field.trim()) else {
            return false;
        };
        let have = match obj.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        (have == want.trim()) != negate
    })
}

/// `a=b,c!=d,e` equality-based label selectors.
fn matches_selector(obj: &Value, selector: &str) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector.split(',').filter(|s| !s.is_empty()).all(|req| {
        if let Some((k, v)) = req.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = req.split_once('=') {
            labels[k.trim().trim_end_matches('=')].as_str()
                == Some(v.trim().trim_start_matches('='))
        } else if let Some(k) = req.strip_prefix('!') {
            labels.get(k.trim()).is_none()
        } else {
            labels.get(req.trim()).is_some()
        }
    })
}

/// The taint Talos puts on a control plane's Node unless the config allows scheduling there.
const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// Brings `existing`'s control-plane taint to what `registered` (the Node as Talos would register it
/// now) carries, leaving every other taint alone.
fn follow_control_plane_taint(existing: &mut Value, registered: &Value) {
    let mut taints: Vec<Value> = existing["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["key"] != CONTROL_PLANE_TAINT)
        .cloned()
        .collect();
    taints.extend(
        registered["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["key"] == CONTROL_PLANE_TAINT)
            .cloned(),
    );
    match existing["spec"].as_object_mut() {
        Some(spec) if taints.is_empty() => {
            spec.remove("taints");
        }
        Some(spec) => {
            spec.insert("taints".into(), Value::Array(taints));
        }
        None if !taints.is_empty() => existing["spec"] = json!({"taints": taints}),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(store: &Store, ns: &str) -> Target {
        store
            .target("", "v1", "secrets", Some(ns))
            .unwrap_or_else(|| panic!("secrets type"))
    }

    #[test]
    fn timestamps_round_trip() {
        for secs in [0, 951_782_400, 1_764_106_200, 4_102_444_799] {
            assert_eq!(
                parse_rfc3339(&rfc3339(secs)),
                Some(secs),
                "{}",
                rfc3339(secs)
            );
        }
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn secret_string_data_is_folded_into_data_and_create_twice_conflicts() {
        let mut s = Store::default();
        let t = secrets(&s, "default");
        let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "stringData": {"k": "v"}});
        let created = s.create(&t, body.clone(), false);
        assert_eq!(
            created.as_ref().map(|v| v["data"]["k"].clone()).ok(),
            Some(json!("dg=="))
        );
        assert_eq!(
            s.create(&t, body, false).err().map(|e| e.reason),
            Some("AlreadyExists")
        );
    }

    #[test]
    fn writes_into_a_missing_namespace_are_not_found() {
        let mut s = Store::default();
        let t = secrets(&s, "flux-system");
        let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
        let err = s.create(&t, body, false).err();
        assert_eq!(
            err.map(|e| e.message),
            Some("namespaces \"flux-system\" not found".to_owned())
        );
    }

    #[test]
    fn unchanged_update_keeps_the_resource_version() {
        let mut s = Store::default();
        let t = secrets(&s, "default");
        let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}, "data": {"k": "dg=="}});
        let first = s.create(&t, body.clone(), false).unwrap_or_default();
        let second = s.apply(&t, "a", body).map(|(v, _)| v).unwrap_or_default();
        assert_eq!(
            first["metadata"]["resourceVersion"],
            second["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn crds_register_new_types() {
        let mut s = Store::default();
        let Some(t) = s.target(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            None,
        ) else {
            panic!()
        };
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
            "spec": {"group": "source.toolkit.fluxcd.io", "scope": "Namespaced",
                     "names": {"plural": "gitrepositories", "kind": "GitRepository"},
                     "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]},
        });
        assert!(s.create(&t, crd, false).is_ok());
        let gr = s.target(
            "source.toolkit.fluxcd.io",
            "v1",
            "gitrepositories",
            Some("default"),
        );
        assert!(gr.is_some_and(|t| t.ty.status && t.ty.namespaced));
    }

    #[test]
    fn selectors_match_labels() {
        let obj = json!({"metadata": {"labels": {"app": "x", "tier": "db"}}});
        assert!(matches_selector(&obj, "app=x,tier"));
        assert!(!matches_selector(&obj, "app!=x"));
        assert!(matches_selector(&obj, "!missing"));
    }
}
