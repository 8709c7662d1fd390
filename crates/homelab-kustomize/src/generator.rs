//! configMapGenerator / secretGenerator: build the objects from literals, files and env files, merge
//! them with generated objects of a base (`behavior`), and compute kustomize's name-suffix hash.

use base64::Engine;
use homelab_goyaml::json::write_string;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::loader::Loader;
use crate::resource::{Generated, Resource};
use crate::select::effective_ns;
use crate::yaml::{Map, Value, value::child_map};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    ConfigMap,
    Secret,
}

fn merge_options(local: &GeneratorOptions, global: Option<&GeneratorOptions>) -> GeneratorOptions {
    let mut o = GeneratorOptions::default();
    if let Some(g) = global {
        o.labels = g.labels.clone();
        o.annotations = g.annotations.clone();
        o.disable_name_suffix_hash = g.disable_name_suffix_hash;
        o.immutable = g.immutable;
    }
    for (k, v) in &local.labels {
        upsert(&mut o.labels, k, v);
    }
    for (k, v) in &local.annotations {
        upsert(&mut o.annotations, k, v);
    }
    if local.disable_name_suffix_hash == Some(true) {
        o.disable_name_suffix_hash = Some(true);
    }
    if local.immutable == Some(true) {
        o.immutable = Some(true);
    }
    o
}

fn upsert(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(x, _)| x == k) {
        Some(e) => e.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Key/value pairs of one generator, in declaration order; non-UTF-8 file content is kept as bytes.
fn collect(args: &GeneratorArgs, loader: &Loader) -> Result<Vec<(String, Vec<u8>)>> {
    let mut kvs: Vec<(String, Vec<u8>)> = Vec::new();
    let bad = |m: String| Error::invalid(&loader.kustomization_file(), m);
    for env in &args.envs {
        let content = loader.read_file(env)?;
        let text = String::from_utf8_lossy(&content);
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (line.to_string(), std::env::var(line).unwrap_or_default()),
            };
            if k.chars().any(char::is_whitespace) {
                return Err(bad(format!(
                    "{env}:{}: invalid key {k:?} (spaces are not allowed)",
                    n + 1
                )));
            }
            kvs.push((k, v.into_bytes()));
        }
    }
    for lit in &args.literals {
        let (k, v) = lit
            .split_once('=')
            .ok_or_else(|| bad(format!("literal {lit:?} must be KEY=VALUE")))?;
        kvs.push((k.to_string(), strip_quotes(v).as_bytes().to_vec()));
    }
    for f in &args.files {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => (
                std::path::Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                f.clone(),
            ),
        };
        kvs.push((key, loader.read_file(&path)?));
    }
    for (i, (k, _)) in kvs.iter().enumerate() {
        if kvs[..i].iter().any(|(x, _)| x == k) {
            return Err(bad(format!(
                "generator {:?}: key {k:?} is defined more than once; use a unique key",
                args.name
            )));
        }
    }
    Ok(kvs)
}

/// Builds the object of one generator entry.
pub fn generate(
    kind: Kind,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
    loader: &Loader,
) -> Result<Resource> {
    let opts = merge_options(&args.options, global);
    let kvs = collect(args, loader)?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), "v1".into());
    obj.insert(
        "kind".into(),
        if kind == Kind::ConfigMap {
            "ConfigMap"
        } else {
            "Secret"
        }
        .into(),
    );
    let mut md = Map::new();
    md.insert("name".into(), args.name.clone().into());
    if let Some(ns) = args.namespace.as_deref().filter(|n| !n.is_empty()) {
        md.insert("namespace".into(), ns.into());
    }
    if !opts.labels.is_empty() {
        md.insert("labels".into(), pairs(&opts.labels));
    }
    if !opts.annotations.is_empty() {
        md.insert("annotations".into(), pairs(&opts.annotations));
    }
    obj.insert("metadata".into(), Value::Map(md));
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in kvs {
        match kind {
            Kind::Secret => {
                data.insert(k, wrapped_base64(&v).into());
            }
            Kind::ConfigMap => match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(k, s.into());
                }
                Err(e) => {
                    binary.insert(k, wrapped_base64(&e.into_bytes()).into());
                }
            },
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Map(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Map(binary));
    }
    if kind == Kind::Secret {
        let t = args
            .secret_type
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Opaque".into());
        obj.insert("type".into(), t.into());
    }
    if opts.immutable == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut r = Resource::new(obj);
    r.origin = Some((loader.kustomization_file(), 1));
    r.generated = Some(Generated {
        hash_suffix: opts.disable_name_suffix_hash != Some(true),
    });
    Ok(r)
}

/// Base64 as kyaml writes generated Secret data: lines of 70 characters, each ending in a newline when
/// there is more than one line.
fn wrapped_base64(v: &[u8]) -> String {
    const LINE: usize = 70;
    let enc = base64::engine::general_purpose::STANDARD.encode(v);
    let lines = enc.len() / LINE + 1;
    if lines == 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    for chunk in enc.as_bytes().chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn pairs(p: &[(String, String)]) -> Value {
    Value::Map(
        p.iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect(),
    )
}

/// Adds a generated resource to the accumulator honouring `behavior` (create, merge, replace).
pub fn absorb(
    resources: &mut Vec<Resource>,
    mut new: Resource,
    behavior: &str,
    file: &std::path::Path,
) -> Result<()> {
    let pos = resources.iter().position(|r| {
        r.kind() == new.kind()
            && r.all_names().contains(&new.name())
            && (new.namespace().is_empty()
                || effective_ns(r.namespace()) == effective_ns(new.namespace()))
    });
    match (behavior, pos) {
        ("create" | "", None) => resources.push(new),
        ("create" | "", Some(_)) => {
            return Err(Error::invalid(
                file,
                format!(
                    "{} {:?} already exists; use behavior: merge or replace to change it",
                    new.kind(),
                    new.name()
                ),
            ));
        }
        ("merge" | "replace", None) => {
            return Err(Error::invalid(
                file,
                format!(
                    "{} {:?} does not exist; cannot {behavior} it",
                    new.kind(),
                    new.name()
                ),
            ));
        }
        (behavior @ ("merge" | "replace"), Some(i)) => {
            // The new object wins except for data (merged on `merge`), labels and annotations (merged),
            // and the identity (name, namespace, earlier names) of the existing object.
            let old = &mut resources[i];
            if behavior == "merge" {
                for field in ["data", "binaryData"] {
                    if let Some(Value::Map(od)) = old.obj.get(field) {
                        let mut merged = od.clone();
                        if let Some(Value::Map(nd)) = new.obj.get(field) {
                            for (k, v) in nd {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        new.obj.insert(field.to_string(), Value::Map(merged));
                    }
                }
            }
            for field in ["labels", "annotations"] {
                let old_meta = old
                    .obj
                    .get("metadata")
                    .and_then(Value::as_map)
                    .and_then(|m| m.get(field))
                    .cloned();
                if let Some(Value::Map(ol)) = old_meta {
                    let nl = child_map(new.metadata_mut(), field);
                    let mut merged = ol;
                    for (k, v) in std::mem::take(nl) {
                        merged.insert(k, v);
                    }
                    *nl = merged;
                }
            }
            let name = old.name().to_string();
            let ns = old.namespace().to_string();
            new.metadata_mut().insert("name".into(), name.into());
            if ns.is_empty() {
                new.metadata_mut().shift_remove("namespace");
            } else {
                new.metadata_mut().insert("namespace".into(), ns.into());
            }
            new.previous = std::mem::take(&mut old.previous);
            if let (Some(o), Some(n)) = (old.generated.as_ref(), new.generated.as_mut()) {
                n.hash_suffix = o.hash_suffix || n.hash_suffix;
            }
            *old = new;
        }
        (other, _) => {
            return Err(Error::invalid(
                file,
                format!("unknown generator behavior {other:?} (create, merge or replace)"),
            ));
        }
    }
    Ok(())
}

fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Map(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Seq(s) => {
            out.push('[');
            for (i, x) in s.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::Str(s) => write_string(out, s),
        Value::Null => out.push_str("null"),
        other => out.push_str(&other.scalar_string().unwrap_or_default()),
    }
}

/// kustomize's content hash of a ConfigMap or Secret (10 characters).
pub fn hash(r: &Resource) -> String {
    let mut m = Map::new();
    let data = r
        .obj
        .get("data")
        .cloned()
        .unwrap_or(Value::Str(String::new()));
    m.insert(
        "data".into(),
        if data.is_null() {
            Value::Str(String::new())
        } else {
            data
        },
    );
    m.insert("kind".into(), r.kind().into());
    m.insert("name".into(), "".into());
    if r.kind() == "ConfigMap" {
        if let Some(b) = r
            .obj
            .get("binaryData")
            .filter(|b| b.as_map().is_some_and(|m| !m.is_empty()))
        {
            m.insert("binaryData".into(), b.clone());
        }
    } else {
        m.insert(
            "type".into(),
            r.obj
                .get("type")
                .cloned()
                .unwrap_or(Value::Str(String::new())),
        );
        if let Some(sd) = r
            .obj
            .get("stringData")
            .filter(|b| b.as_map().is_some_and(|m| !m.is_empty()))
        {
            m.insert("stringData".into(), sd.clone());
        }
    }
    let mut json = String::new();
    go_json(&Value::Map(m), &mut json);
    let digest = hex::encode(Sha256::digest(json.as_bytes()));
    digest[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_kustomize_for_a_literal_configmap() {
        let mut obj = Map::new();
        obj.insert("kind".into(), "ConfigMap".into());
        let mut data = Map::new();
        data.insert("FOO".into(), "bar".into());
        obj.insert("data".into(), Value::Map(data));
        assert_eq!(hash(&Resource::new(obj)), "59m54fbgh2");
    }
}
