//! The seam to the Kubernetes API: the three calls the Flux operations make. `homelab-kube`'s client
//! implements it (`kube.rs`); tests implement it in memory.

use std::future::Future;

use serde_json::Value;

/// Which object: its type (apiVersion + kind) and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The reference of a manifest; `None` when apiVersion, kind or metadata.name is missing.
    pub fn of(object: &Value) -> Option<Self> {
        Some(Self {
            api_version: object["apiVersion"].as_str()?.to_string(),
            kind: object["kind"].as_str()?.to_string(),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            name: object["metadata"]["name"].as_str()?.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// How a call failed. Messages come from the API server's Status, never from request bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The object, or its type, does not exist (a CRD not yet established serves 404 too).
    #[error("not found: {0}")]
    NotFound(String),
    /// The object changed since it was read (resourceVersion conflict), or already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the API server refused: {0}")]
    Refused(String),
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
}

/// The Kubernetes calls Flux operations need.
pub trait Cluster: Sync {
    /// The live object, or `None` when it does not exist.
    fn get(
        &self,
        r: &ObjectRef,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;
    /// Creates `object`, or replaces the live object with it when the live one does not already hold
    /// every field of `object`; reports which. A type that is not served (yet) is `NotFound`.
    fn apply(&self, object: &Value) -> impl Future<Output = Result<Action, ClusterError>> + Send;
    /// Every object of a type in `namespace` (or cluster-wide when `None`).
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
        })
    }
}
