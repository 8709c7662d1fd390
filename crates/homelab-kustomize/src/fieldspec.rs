//! Field specs: kustomize's tables of which fields, in which kinds, a transformer touches (embedded from
//! kustomize v5.5.0's builtin configuration), and the walker that visits those fields.

use std::sync::OnceLock;

use crate::resource::{Resource, split_api_version};
use crate::yaml::{Map, Value, parse_value};

/// One field spec: an optional GVK filter and a `/`-separated path (`[]` marks a list).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSpec {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    pub fn new(path: &str, create: bool) -> Self {
        FieldSpec {
            path: split_path(path),
            create,
            ..Default::default()
        }
    }
    /// Whether the spec applies to `r` (unset parts match anything).
    pub fn selects(&self, r: &Resource) -> bool {
        let (g, v) = split_api_version(r.api_version());
        self.kind.as_deref().is_none_or(|k| k == r.kind())
            && self.group.as_deref().is_none_or(|x| x == g)
            && self.version.as_deref().is_none_or(|x| x == v)
    }
}

fn split_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '/' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses a list of field specs (`[{path, kind, group, version, create}]`).
pub fn parse_list(v: &Value) -> Result<Vec<FieldSpec>, String> {
    let Some(items) = v.as_seq() else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|i| {
            let m = i.as_map().ok_or("field specs must be mappings")?;
            let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            Ok(FieldSpec {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
                path: split_path(&s("path").ok_or("a field spec needs a path")?),
                create: matches!(m.get("create"), Some(Value::Bool(true))),
            })
        })
        .collect()
}

fn table(text: &str, key: &str) -> Vec<FieldSpec> {
    // metadatalabels.yaml is a bare list (kustomize splices it into the commonLabels/templateLabels tables).
    match parse_value(text) {
        Ok(Value::Seq(items)) => parse_list(&Value::Seq(items)).unwrap_or_default(),
        Ok(v) => v
            .as_map()
            .and_then(|m| m.get(key))
            .map(|l| parse_list(l).unwrap_or_default())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

macro_rules! builtin {
    ($fn:ident, $file:literal, $key:literal) => {
        pub fn $fn() -> &'static [FieldSpec] {
            static T: OnceLock<Vec<FieldSpec>> = OnceLock::new();
            T.get_or_init(|| table(include_str!(concat!("../data/", $file)), $key))
        }
    };
}
builtin!(common_labels, "commonlabels.yaml", "commonLabels");
builtin!(metadata_labels, "metadatalabels.yaml", "metadataLabels");
builtin!(template_labels, "templatelabels.yaml", "templateLabels");
builtin!(
    common_annotations,
    "commonannotations.yaml",
    "commonAnnotations"
);
builtin!(images, "images.yaml", "images");
builtin!(namespace, "namespace.yaml", "namespace");
builtin!(name_prefix, "nameprefix.yaml", "namePrefix");
builtin!(name_suffix, "namesuffix.yaml", "nameSuffix");
builtin!(replicas, "replicas.yaml", "replicas");

/// A nameReference rule: resources of `kind` (and group/version) are referred to from `fields`.
#[derive(Debug, Clone)]
pub struct NameRef {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub fields: Vec<FieldSpec>,
}

pub fn name_references() -> &'static [NameRef] {
    static T: OnceLock<Vec<NameRef>> = OnceLock::new();
    T.get_or_init(|| {
        let v = parse_value(include_str!("../data/namereference.yaml")).unwrap_or(Value::Null);
        let items = v
            .get_path(&["nameReference"])
            .and_then(Value::as_seq)
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|i| {
                let m = i.as_map()?;
                let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                Some(NameRef {
                    group: s("group"),
                    version: s("version"),
                    kind: s("kind")?,
                    fields: m
                        .get("fieldSpecs")
                        .map(|f| parse_list(f).unwrap_or_default())
                        .unwrap_or_default(),
                })
            })
            .collect()
    })
}

/// `apiVersion kind` pairs kustomize knows as cluster-scoped.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    static T: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let t = T.get_or_init(|| {
        include_str!("../data/cluster-scoped-kinds.txt")
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(a, k)| (a.trim().to_string(), k.trim().to_string()))
            })
            .collect()
    });
    t.iter().any(|(a, k)| a == api_version && k == kind)
}

/// What to create when a field on the path is missing.
#[derive(Clone, Copy, PartialEq)]
pub enum Create {
    No,
    Map,
    Scalar,
}

/// Visits the value(s) at `path` under `obj` (lists are walked element by element), creating missing
/// fields per `create`, and calls `f` on each.
pub fn visit(obj: &mut Value, path: &[String], create: Create, f: &mut dyn FnMut(&mut Value)) {
    if path.is_empty() {
        f(obj);
        return;
    }
    match obj {
        Value::Seq(items) => {
            for i in items {
                visit(i, path, create, f);
            }
        }
        Value::Map(m) => {
            let (field, is_seq) = match path[0].strip_suffix("[]") {
                Some(x) => (x, true),
                None => (path[0].as_str(), false),
            };
            let last = path.len() == 1;
            let can_create = create != Create::No && !is_seq;
            if !m.contains_key(field) {
                if !can_create {
                    return;
                }
                let init = if !last || create == Create::Map {
                    Value::Map(Map::new())
                } else {
                    Value::Null
                };
                m.insert(field.to_string(), init);
            }
            let Some(child) = m.get_mut(field) else {
                return;
            };
            if child.is_null() && can_create && (!last || create == Create::Map) {
                *child = Value::Map(Map::new());
            }
            visit(child, &path[1..], create, f);
        }
        _ => {}
    }
}
