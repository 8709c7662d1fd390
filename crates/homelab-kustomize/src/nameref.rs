//! Name references: after prefixes, suffixes and hashes changed names, rewrite the builtin fields that
//! refer to those resources (kustomize's `namereference` table; CRD fields are never touched).

use crate::fieldspec::{Create, name_references, visit};
use crate::resource::Resource;
use crate::select::effective_ns;
use crate::yaml::Value;

struct Candidate {
    kind: String,
    group: String,
    version: String,
    names: Vec<String>,
    namespace: String,
    cur_name: String,
    cluster_scoped: bool,
}

/// Rewrites references in `resources` to renamed resources.
pub fn fix(resources: &mut [Resource]) -> Result<(), String> {
    let cands: Vec<Candidate> = resources
        .iter()
        .filter(|r| !r.previous.is_empty())
        .map(|r| {
            let (g, v) = r.group_version();
            Candidate {
                kind: r.kind().to_string(),
                group: g.to_string(),
                version: v.to_string(),
                names: r.previous.iter().map(|p| p.0.clone()).collect(),
                namespace: r.namespace().to_string(),
                cur_name: r.name().to_string(),
                cluster_scoped: crate::fieldspec::is_cluster_scoped(r.api_version(), r.kind()),
            }
        })
        .collect();
    if cands.is_empty() {
        return Ok(());
    }
    for rule in name_references() {
        let rule_cands: Vec<&Candidate> = cands
            .iter()
            .filter(|c| {
                c.kind == rule.kind
                    && rule.group.as_deref().is_none_or(|g| g == c.group)
                    && rule.version.as_deref().is_none_or(|v| v == c.version)
            })
            .collect();
        if rule_cands.is_empty() {
            continue;
        }
        for r in resources.iter_mut() {
            let referrer_ns = r.namespace().to_string();
            for fs in &rule.fields {
                if !fs.selects(r) {
                    continue;
                }
                let mut obj = Value::Map(std::mem::take(&mut r.obj));
                let mut err = None;
                visit(&mut obj, &fs.path, Create::No, &mut |v| {
                    if let Err(e) = rewrite(v, &rule_cands, &rule.kind, &referrer_ns) {
                        err = Some(e);
                    }
                });
                if let Value::Map(m) = obj {
                    r.obj = m;
                }
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

fn pick<'a>(
    cands: &[&'a Candidate],
    name: &str,
    ns: Option<&str>,
) -> Result<Option<&'a Candidate>, String> {
    let by_name: Vec<&&Candidate> = cands
        .iter()
        .filter(|c| c.names.iter().any(|n| n == name))
        .collect();
    let chosen: Vec<&&Candidate> = match ns {
        Some(ns) => by_name
            .iter()
            .copied()
            .filter(|c| c.cluster_scoped || effective_ns(&c.namespace) == effective_ns(ns))
            .collect(),
        None => by_name,
    };
    match chosen.as_slice() {
        [] => Ok(None),
        [c] => Ok(Some(c)),
        many => {
            if many.iter().all(|c| c.cur_name == many[0].cur_name) {
                Ok(Some(many[0]))
            } else {
                Err(format!(
                    "found multiple possible referrals for {name}: rename them so the reference is unambiguous"
                ))
            }
        }
    }
}

fn rewrite(
    v: &mut Value,
    cands: &[&Candidate],
    kind: &str,
    referrer_ns: &str,
) -> Result<(), String> {
    match v {
        Value::Str(s) => {
            if let Some(c) = pick(cands, s, Some(referrer_ns))? {
                *s = c.cur_name.clone();
            }
        }
        Value::Seq(items) => {
            for i in items {
                rewrite(i, cands, kind, referrer_ns)?;
            }
        }
        Value::Map(m) => {
            if let Some(k) = m.get("kind").and_then(Value::as_str)
                && k != kind
            {
                return Ok(());
            }
            let Some(name) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
                return Ok(());
            };
            let ns = m
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string);
            let c = pick(cands, &name, Some(ns.as_deref().unwrap_or(referrer_ns)))?;
            if let Some(c) = c {
                m.insert("name".into(), Value::Str(c.cur_name.clone()));
                if ns.is_some() && !c.namespace.is_empty() {
                    m.insert("namespace".into(), Value::Str(c.namespace.clone()));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
