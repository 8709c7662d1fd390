//! Strategic merge patch as kustomize applies it (kyaml merge2 with list prepend): maps merge, `null`
//! deletes, lists with a merge key merge by key (patch items first, then the untouched originals), other
//! lists are replaced; `$patch: delete|replace|merge` directives.

use crate::openapi;
use crate::yaml::{Map, Value};

/// Outcome of merging into a node.
pub enum Merged {
    Keep,
    Delete,
}

/// Merges `patch` into `dst`; `def` is the schema definition of `dst` when known.
pub fn merge(dst: &mut Value, patch: &Value, def: Option<&str>) -> Result<Merged, String> {
    match (dst, patch) {
        (Value::Map(d), Value::Map(p)) => merge_map(d, p, def),
        (dst, p) => {
            *dst = clean(p);
            Ok(Merged::Keep)
        }
    }
}

fn directive(p: &Map) -> Option<&str> {
    p.get("$patch").and_then(Value::as_str)
}

fn merge_map(d: &mut Map, p: &Map, def: Option<&str>) -> Result<Merged, String> {
    match directive(p) {
        Some("delete") => return Ok(Merged::Delete),
        Some("replace") => {
            let mut c = p.clone();
            c.shift_remove("$patch");
            *d = clean_map(&c);
            return Ok(Merged::Keep);
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown $patch directive {other:?}")),
    }
    for (k, pv) in p {
        if k == "$patch" {
            continue;
        }
        if k.starts_with("$setElementOrder/")
            || k.starts_with("$deleteFromPrimitiveList/")
            || k == "$retainKeys"
        {
            return Err(format!("strategic merge directive {k:?} is not supported"));
        }
        if pv.is_null() {
            d.shift_remove(k);
            continue;
        }
        let f = def.and_then(|d| openapi::field(d, k));
        let child_def = f.and_then(|f| f.reference.as_deref());
        match d.get_mut(k) {
            None => {
                if let Value::Map(pm) = pv
                    && directive(pm) == Some("delete")
                {
                    continue;
                }
                d.insert(k.clone(), clean(pv));
            }
            Some(dv) => match (dv, pv) {
                (Value::Seq(ds), Value::Seq(ps)) => {
                    let strategy = f.and_then(|f| f.strategy.as_deref()).unwrap_or("");
                    if strategy.split(',').any(|s| s == "merge") {
                        merge_list(ds, ps, f.and_then(|f| f.key.as_deref()), child_def)?;
                    } else {
                        *ds = ps.iter().filter(|i| !is_delete(i)).map(clean).collect();
                        if ps.iter().any(is_replace) {
                            ds.retain(|i| !is_replace(i));
                        }
                    }
                }
                (dv, pv) => {
                    if let Merged::Delete = merge(dv, pv, child_def)? {
                        d.shift_remove(k);
                    }
                }
            },
        }
    }
    Ok(Merged::Keep)
}

fn is_delete(v: &Value) -> bool {
    v.as_map().and_then(directive) == Some("delete")
}
fn is_replace(v: &Value) -> bool {
    v.as_map().and_then(directive) == Some("replace")
}

fn merge_list(
    d: &mut Vec<Value>,
    p: &[Value],
    key: Option<&str>,
    def: Option<&str>,
) -> Result<(), String> {
    if p.iter().any(is_replace) {
        *d = p
            .iter()
            .filter(|i| !is_replace(i) && !is_delete(i))
            .map(clean)
            .collect();
        return Ok(());
    }
    let Some(key) = key else {
        // A set of scalars: patch values first, then the originals not already present.
        let mut out: Vec<Value> = Vec::new();
        for v in p.iter().chain(d.iter()) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        *d = out;
        return Ok(());
    };
    let mut original: Vec<Option<Value>> = d.drain(..).map(Some).collect();
    let mut out = Vec::new();
    for pi in p {
        let Some(pm) = pi.as_map() else {
            out.push(clean(pi));
            continue;
        };
        let kv = pm.get(key);
        let pos = kv.and_then(|kv| {
            original.iter().position(|o| {
                o.as_ref().and_then(|o| o.as_map()).and_then(|m| m.get(key)) == Some(kv)
            })
        });
        if directive(pm) == Some("delete") {
            if let Some(i) = pos {
                original[i] = None;
            }
            continue;
        }
        match pos {
            Some(i) => {
                let mut item = original[i].take().unwrap_or(Value::Null);
                if let Merged::Keep = merge(&mut item, pi, def)? {
                    out.push(item);
                }
            }
            None => out.push(clean(pi)),
        }
    }
    out.extend(original.into_iter().flatten());
    *d = out;
    Ok(())
}

/// A patch value inserted where nothing existed: directives and nulls removed.
pub fn clean(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(clean_map(m)),
        Value::Seq(s) => Value::Seq(s.iter().filter(|i| !is_delete(i)).map(clean).collect()),
        other => other.clone(),
    }
}

fn clean_map(m: &Map) -> Map {
    m.iter()
        .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}
