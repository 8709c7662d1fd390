//! The simple builtin transformers: namespace, namePrefix/nameSuffix, labels/commonLabels,
//! commonAnnotations, images and replicas, each driven by kustomize's field-spec tables.

use crate::fieldspec::{self, Create, FieldSpec, visit};
use crate::kustomization::{ImageEntry, LabelEntry};
use crate::resource::Resource;
use crate::yaml::{Value, value::ensure_map};

fn apply_specs(
    r: &mut Resource,
    specs: &[FieldSpec],
    create: Create,
    f: &mut dyn FnMut(&mut Value),
) {
    for fs in specs {
        if !fs.selects(r) {
            continue;
        }
        let c = if fs.create { create } else { Create::No };
        let mut obj = Value::Map(std::mem::take(&mut r.obj));
        visit(&mut obj, &fs.path, c, f);
        if let Value::Map(m) = obj {
            r.obj = m;
        }
    }
}

/// `namespace:`: sets metadata.namespace on everything not known to be cluster-scoped, renames Namespace
/// objects, and fixes the builtin namespace fields (RoleBinding subjects named `default`, APIService,
/// CRD conversion webhooks).
pub fn namespace(resources: &mut [Resource], ns: &str) {
    for r in resources.iter_mut() {
        let specs = fieldspec::namespace();
        for fs in specs {
            if !fs.selects(r) {
                continue;
            }
            if fs.path == ["metadata", "name"] {
                r.set_name(ns);
                continue;
            }
            let c = if fs.create {
                Create::Scalar
            } else {
                Create::No
            };
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            visit(&mut obj, &fs.path, c, &mut |v| {
                *v = Value::Str(ns.to_string())
            });
            if let Value::Map(m) = obj {
                r.obj = m;
            }
        }
        if matches!(r.kind(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Seq(subjects)) = r.obj.get_mut("subjects")
        {
            for s in subjects.iter_mut() {
                if let Value::Map(m) = s
                    && m.get("name").and_then(Value::as_str) == Some("default")
                {
                    m.insert("namespace".into(), Value::Str(ns.to_string()));
                }
            }
        }
        if !fieldspec::is_cluster_scoped(r.api_version(), r.kind()) {
            r.set_namespace(ns);
        }
    }
}

fn skip_prefix(r: &Resource) -> bool {
    r.kind() == "CustomResourceDefinition"
        || r.kind() == "Namespace"
        || (r.kind() == "APIService" && r.group() == "apiregistration.k8s.io")
}

/// `namePrefix` / `nameSuffix`.
pub fn prefix_suffix(resources: &mut [Resource], prefix: &str, suffix: &str) {
    for r in resources.iter_mut() {
        if skip_prefix(r) {
            continue;
        }
        let name = format!("{prefix}{}{suffix}", r.name());
        r.set_name(&name);
    }
}

fn set_pairs(v: &mut Value, pairs: &[(String, String)]) {
    let m = ensure_map(v);
    for (k, val) in pairs {
        m.insert(k.clone(), Value::Str(val.clone()));
    }
}

fn label_specs_common() -> Vec<FieldSpec> {
    let mut v = fieldspec::metadata_labels().to_vec();
    v.extend(fieldspec::common_labels().iter().cloned());
    v
}

/// `commonLabels` (metadata, selectors and templates).
pub fn common_labels(resources: &mut [Resource], pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let specs = label_specs_common();
    for r in resources.iter_mut() {
        apply_specs(r, &specs, Create::Map, &mut |v| set_pairs(v, pairs));
    }
}

/// One `labels:` entry.
pub fn labels(resources: &mut [Resource], entry: &LabelEntry) {
    let mut specs: Vec<FieldSpec> = Vec::new();
    if entry.include_selectors {
        specs = label_specs_common();
    } else {
        if entry.include_templates {
            specs.extend(fieldspec::metadata_labels().iter().cloned());
            specs.extend(fieldspec::template_labels().iter().cloned());
        }
        let meta = FieldSpec::new("metadata/labels", true);
        if !specs.contains(&meta) {
            specs.push(meta);
        }
    }
    specs.extend(entry.fields.iter().cloned());
    for r in resources.iter_mut() {
        apply_specs(r, &specs, Create::Map, &mut |v| set_pairs(v, &entry.pairs));
    }
}

/// `commonAnnotations`.
pub fn annotations(resources: &mut [Resource], pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        apply_specs(r, fieldspec::common_annotations(), Create::Map, &mut |v| {
            set_pairs(v, pairs)
        });
    }
}

/// kustomize `image.Split`: name, tag, digest.
pub fn split_image(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|i| *i > 0).unwrap_or(0);
    let search = &image[slash..];
    let id = search.find('@');
    let ic = search.find(':');
    match (id, ic) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (Some(d), c) if c.is_none_or(|c| d < c) => {
            let d = d + slash;
            (
                image[..d].to_string(),
                String::new(),
                image[d + 1..].to_string(),
            )
        }
        (Some(d), Some(c)) => {
            let (d, c) = (d + slash, c + slash);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (None, Some(c)) => {
            let c = c + slash;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        (Some(_), None) => (image.to_string(), String::new(), String::new()),
    }
}

fn update_image(s: &mut String, e: &ImageEntry, re: &regex::Regex) {
    if !re.is_match(s) {
        return;
    }
    let (mut name, mut tag, mut digest) = split_image(s);
    if let Some(n) = e.new_name.as_deref().filter(|n| !n.is_empty()) {
        name = n.to_string();
    }
    let new_tag = e.new_tag.as_deref().unwrap_or("");
    let new_digest = e.digest.as_deref().unwrap_or("");
    match (new_tag.is_empty(), new_digest.is_empty()) {
        (false, false) => {
            tag = new_tag.to_string();
            digest = new_digest.to_string();
        }
        (false, true) => {
            tag = new_tag.to_string();
            digest.clear();
        }
        (true, false) => {
            tag.clear();
            digest = new_digest.to_string();
        }
        (true, true) => {}
    }
    if !tag.is_empty() {
        name.push(':');
        name.push_str(&tag);
    }
    if !digest.is_empty() {
        name.push('@');
        name.push_str(&digest);
    }
    *s = name;
}

/// kustomize's legacy image filter: every `image` in a list under a `containers`/`initContainers` field,
/// anywhere in the object.
fn legacy_images(v: &mut Value, e: &ImageEntry, re: &regex::Regex) {
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                legacy_images(child, e, re);
                if (k == "containers" || k == "initContainers")
                    && let Value::Seq(items) = child
                {
                    for item in items.iter_mut() {
                        if let Some(Value::Str(img)) =
                            item.as_map_mut().and_then(|m| m.get_mut("image"))
                        {
                            update_image(img, e, re);
                        }
                    }
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| legacy_images(i, e, re)),
        _ => {}
    }
}

/// `images:` (the legacy containers walk, then the field specs, as kustomize does).
pub fn images(resources: &mut [Resource], entries: &[ImageEntry]) {
    for e in entries {
        let Ok(re) = regex::Regex::new(&format!(
            "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
            e.name
        )) else {
            continue;
        };
        for r in resources.iter_mut() {
            if r.kind() == "CustomResourceDefinition" {
                continue;
            }
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            legacy_images(&mut obj, e, &re);
            if let Value::Map(m) = obj {
                r.obj = m;
            }
            apply_specs(r, fieldspec::images(), Create::No, &mut |v| {
                if let Value::Str(s) = v {
                    update_image(s, e, &re);
                }
            });
        }
    }
}

/// `replicas:`; a name that matches nothing is an error, as in kustomize.
pub fn replicas(resources: &mut [Resource], entries: &[(String, i64)]) -> Result<(), String> {
    for (name, count) in entries {
        let mut found = false;
        for fs in fieldspec::replicas() {
            for r in resources.iter_mut() {
                if !fs.selects(r) || !r.all_names().contains(&name.as_str()) {
                    continue;
                }
                found = true;
                let mut obj = Value::Map(std::mem::take(&mut r.obj));
                visit(&mut obj, &fs.path, Create::Scalar, &mut |v| {
                    *v = Value::Int(*count)
                });
                if let Value::Map(m) = obj {
                    r.obj = m;
                }
            }
        }
        if !found {
            let gvks: Vec<String> = fieldspec::replicas()
                .iter()
                .map(|f| f.kind.as_deref().unwrap_or("").to_string())
                .collect();
            return Err(format!(
                "resource with name {name} does not match a config with the following GVK [{}]",
                gvks.join(" ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split_handles_registry_ports_tags_and_digests() {
        assert_eq!(
            split_image("registry.local:5000/proxy"),
            ("registry.local:5000/proxy".into(), "".into(), "".into())
        );
        assert_eq!(
            split_image("nginx:1.2"),
            ("nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split_image("a/b:1@sha256:x"),
            ("a/b".into(), "1".into(), "sha256:x".into())
        );
        assert_eq!(
            split_image("a/b@sha256:x"),
            ("a/b".into(), "".into(), "sha256:x".into())
        );
    }
}
