//! The Kubernetes simulator's data as etcd would hold it on the control plane's disk: every object with its
//! key, the store's revision and an id that tells one cluster's data from another's (a fresh bootstrap starts
//! a new id), so a control plane that reboots, or a lab that restarts, keeps its objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;

/// The store's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    /// Random per store; kept across snapshots of the same store.
    pub id: String,
    /// The resourceVersion counter.
    pub revision: u64,
    pub objects: Vec<StoredObject>,
}

/// One object and where it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

impl Store {
    /// `(id, revision)`: which store and how far it got; equal versions mean equal content.
    pub fn version(&self) -> (String, u64) {
        (self.id.clone(), self.revision)
    }

    /// Everything in the store.
    pub fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            id: self.id.clone(),
            revision: self.revision,
            objects: self
                .objects
                .iter()
                .map(|((group, plural, namespace, name), object)| StoredObject {
                    group: group.clone(),
                    plural: plural.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    object: object.clone(),
                })
                .collect(),
        }
    }

    /// A store holding a snapshot's objects, serving the types of its CRDs.
    pub fn from_snapshot(snap: &StoreSnapshot) -> Self {
        let objects: BTreeMap<_, _> = snap
            .objects
            .iter()
            .map(|o| {
                let key = (
                    o.group.clone(),
                    o.plural.clone(),
                    o.namespace.clone(),
                    o.name.clone(),
                );
                (key, o.object.clone())
            })
            .collect();
        let mut store = Store {
            types: super::builtin_types(),
            objects,
            revision: snap.revision,
            id: snap.id.clone(),
            runtime: super::workloads::Runtime::default(),
        };
        store.reload_crd_types();
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_store_comes_back_from_its_snapshot_with_objects_types_and_revision() {
        let mut store = Store::default();
        let crds = store
            .target(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                None,
            )
            .expect("crd type");
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]},
        });
        store.create(&crds, crd, false).expect("crd");
        let back = Store::from_snapshot(&store.snapshot());
        assert_eq!(back.version(), store.version());
        assert_eq!(back.snapshot(), store.snapshot());
        assert!(
            back.target("example.com", "v1", "widgets", Some("default"))
                .is_some()
        );
        assert_ne!(
            Store::default().version().0,
            store.version().0,
            "stores differ in id"
        );
    }
}
