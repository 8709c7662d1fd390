//! An in-memory Kubernetes API for the operation tests: resourceVersions, CRD-served types, whole-object
//! replacement like a PUT, and a count of writes so idempotency is observable.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use homelab_flux::apply::contains;
use homelab_flux::cluster::{Action, Cluster, ClusterError, ObjectRef};
use serde_json::Value;

#[derive(Default)]
pub struct MemCluster {
    objects: Mutex<BTreeMap<ObjectRef, Value>>,
    next_version: AtomicUsize,
    pub writes: AtomicUsize,
}

impl MemCluster {
    pub fn objects(&self) -> BTreeMap<ObjectRef, Value> {
        self.objects.lock().unwrap().clone()
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Puts an object as if another client had written it.
    pub fn seed(&self, object: Value) {
        let r = ObjectRef::of(&object).unwrap();
        let stamped = self.stamp(object);
        self.objects.lock().unwrap().insert(r, stamped);
    }

    fn stamp(&self, mut object: Value) -> Value {
        let v = self.next_version.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = Value::String(v.to_string());
        object
    }

    /// Built-in groups are always served; a custom group only once a CRD declares the kind.
    fn served(&self, r: &ObjectRef) -> bool {
        let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io") {
            return true;
        }
        self.objects.lock().unwrap().values().any(|o| {
            o["kind"] == "CustomResourceDefinition"
                && o["spec"]["group"] == group
                && o["spec"]["names"]["kind"] == r.kind.as_str()
        })
    }

    fn check(&self, r: &ObjectRef) -> Result<(), ClusterError> {
        if self.served(r) {
            Ok(())
        } else {
            Err(ClusterError::NotFound(format!(
                "the server could not find the requested resource ({})",
                r.kind
            )))
        }
    }
}

impl Cluster for MemCluster {
    async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        self.check(r)?;
        Ok(self.objects.lock().unwrap().get(r).cloned())
    }

    /// Create, or replace the whole object (as a PUT does) when it lacks a desired field.
    async fn apply(&self, object: &Value) -> Result<Action, ClusterError> {
        let r = ObjectRef::of(object).unwrap();
        self.check(&r)?;
        let live = self.objects.lock().unwrap().get(&r).cloned();
        let action = match &live {
            None => Action::Created,
            Some(live) if contains(live, object) => return Ok(Action::Unchanged),
            Some(_) => Action::Updated,
        };
        self.writes.fetch_add(1, Ordering::SeqCst);
        let stamped = self.stamp(object.clone());
        self.objects.lock().unwrap().insert(r, stamped);
        Ok(action)
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.check(&ObjectRef::new(api_version, kind, namespace, ""))?;
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _)| {
                r.api_version == api_version
                    && r.kind == kind
                    && (namespace.is_none() || r.namespace.as_deref() == namespace)
            })
            .map(|(_, o)| o.clone())
            .collect())
    }
}
