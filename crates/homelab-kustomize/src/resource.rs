//! A resource in the build: its object, the names it had before (for name references), and how it was
//! generated (for hash suffixes and generator merging).

use crate::yaml::value::child_map;
use crate::yaml::{Map, Value};

/// Generator bookkeeping for ConfigMaps/Secrets made by `configMapGenerator`/`secretGenerator`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Append the content hash to the name at the end of the root build.
    pub hash_suffix: bool,
}

/// One Kubernetes object plus kustomize's internal tracking.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub obj: Map,
    /// Earlier (name, namespace) pairs, oldest first; nameReference rewrites refs that use any of them.
    pub previous: Vec<(String, String)>,
    pub generated: Option<Generated>,
    /// The file and 1-based line the object was read from (the kustomization file for generated objects).
    pub origin: Option<(std::path::PathBuf, usize)>,
}

impl Resource {
    pub fn new(obj: Map) -> Self {
        Resource {
            obj,
            previous: Vec::new(),
            generated: None,
            origin: None,
        }
    }
    fn str_at(&self, path: &[&str]) -> &str {
        let mut cur = match path.first().and_then(|k| self.obj.get(*k)) {
            Some(v) => v,
            None => return "",
        };
        for k in &path[1..] {
            cur = match cur.as_map().and_then(|m| m.get(*k)) {
                Some(v) => v,
                None => return "",
            };
        }
        cur.as_str().unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"])
    }
    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }
    pub fn namespace(&self) -> &str {
        self.str_at(&["metadata", "namespace"])
    }
    /// (group, version) of apiVersion.
    pub fn group_version(&self) -> (&str, &str) {
        split_api_version(self.api_version())
    }
    pub fn group(&self) -> &str {
        self.group_version().0
    }
    pub fn metadata_mut(&mut self) -> &mut Map {
        child_map(&mut self.obj, "metadata")
    }
    /// Renames, remembering the old (name, namespace).
    pub fn set_name(&mut self, name: &str) {
        if self.name() == name {
            return;
        }
        self.remember();
        self.metadata_mut()
            .insert("name".into(), Value::Str(name.to_string()));
    }
    pub fn set_namespace(&mut self, ns: &str) {
        if self.namespace() == ns {
            return;
        }
        self.remember();
        self.metadata_mut()
            .insert("namespace".into(), Value::Str(ns.to_string()));
    }
    fn remember(&mut self) {
        let cur = (self.name().to_string(), self.namespace().to_string());
        if !self.previous.contains(&cur) {
            self.previous.push(cur);
        }
    }
    /// Every name this resource has had, current first.
    pub fn all_names(&self) -> Vec<&str> {
        let mut v = vec![self.name()];
        for (n, _) in &self.previous {
            if !v.contains(&n.as_str()) {
                v.push(n);
            }
        }
        v
    }
    /// The name this resource had when it entered the build.
    pub fn original_name(&self) -> &str {
        self.previous
            .first()
            .map(|p| p.0.as_str())
            .unwrap_or_else(|| self.name())
    }
    /// Short description for messages: `Kind/name.namespace`.
    pub fn describe(&self) -> String {
        let ns = self.namespace();
        if ns.is_empty() {
            format!("{}/{}", self.kind(), self.name())
        } else {
            format!("{}/{}.{}", self.kind(), self.name(), ns)
        }
    }
    pub fn labels(&self) -> Option<&Map> {
        self.obj.get("metadata")?.as_map()?.get("labels")?.as_map()
    }
    pub fn annotations(&self) -> Option<&Map> {
        self.obj
            .get("metadata")?
            .as_map()?
            .get("annotations")?
            .as_map()
    }
}

/// Splits `group/version` (core: `v1` → ("", "v1")).
pub fn split_api_version(av: &str) -> (&str, &str) {
    match av.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}
