//! `replacements`: copy a field of one resource (source) into fields of others (targets), with kyaml's
//! field-path syntax (`a.b[name=x].c`, indexes, `*`) and the delimiter/index/create options.

use crate::kustomization::{Selector, parse_selector};
use crate::resource::Resource;
use crate::select::matches_exact;
use crate::yaml::{Map, Value, resolve::resolve_plain};

/// Splits a field path on dots outside brackets.
pub fn split_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    // `a[b=c]` written without a dot is two segments.
    out.into_iter()
        .flat_map(|s| {
            if let Some(i) = s.find('[').filter(|i| *i > 0) {
                vec![s[..i].to_string(), s[i..].to_string()]
            } else {
                vec![s]
            }
        })
        .collect()
}

fn seg_match(item: &Value, seg: &str) -> bool {
    let inner = &seg[1..seg.len() - 1];
    match inner.split_once('=') {
        Some(("", v)) => item.scalar_string().as_deref() == Some(v),
        Some((k, v)) => {
            item.as_map()
                .and_then(|m| m.get(k))
                .and_then(Value::scalar_string)
                .as_deref()
                == Some(v)
        }
        None => false,
    }
}

/// All nodes matching `path` (read-only).
fn find<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some(seg) = path.first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Map(m) => {
            if seg == "*" {
                for c in m.values() {
                    find(c, &path[1..], out);
                }
            } else if let Some(c) = m.get(seg) {
                find(c, &path[1..], out);
            }
        }
        Value::Seq(s) => {
            if seg == "*" {
                for c in s {
                    find(c, &path[1..], out);
                }
            } else if seg.starts_with('[') && seg.ends_with(']') {
                for c in s.iter().filter(|c| seg_match(c, seg)) {
                    find(c, &path[1..], out);
                }
            } else if let Ok(i) = seg.parse::<usize>()
                && let Some(c) = s.get(i)
            {
                find(c, &path[1..], out);
            }
        }
        _ => {}
    }
}

/// Applies `f` to every node matching `path`, creating missing map fields when `create` is set.
fn visit_mut(v: &mut Value, path: &[String], create: bool, f: &mut dyn FnMut(&mut Value, bool)) {
    visit_inner(v, path, create, false, f)
}

fn visit_inner(
    v: &mut Value,
    path: &[String],
    create: bool,
    created: bool,
    f: &mut dyn FnMut(&mut Value, bool),
) {
    let Some(seg) = path.first() else {
        f(v, created);
        return;
    };
    let is_list_seg =
        seg == "*" || (seg.starts_with('[') && seg.ends_with(']')) || seg.parse::<usize>().is_ok();
    if create && v.is_null() {
        *v = if is_list_seg {
            Value::Seq(Vec::new())
        } else {
            Value::Map(Map::new())
        };
    }
    match v {
        Value::Map(m) => {
            if seg == "*" {
                for c in m.values_mut() {
                    visit_inner(c, &path[1..], create, false, f);
                }
            } else {
                let mut made = false;
                if !m.contains_key(seg.as_str()) {
                    if !create {
                        return;
                    }
                    m.insert(seg.clone(), Value::Null);
                    made = true;
                }
                if let Some(c) = m.get_mut(seg.as_str()) {
                    visit_inner(c, &path[1..], create, made, f);
                }
            }
        }
        Value::Seq(s) => {
            if seg == "*" {
                for c in s.iter_mut() {
                    visit_inner(c, &path[1..], create, false, f);
                }
            } else if seg.starts_with('[') && seg.ends_with(']') {
                let mut any = false;
                for c in s.iter_mut().filter(|c| seg_match(c, seg)) {
                    any = true;
                    visit_inner(c, &path[1..], create, false, f);
                }
                if !any && create {
                    let inner = &seg[1..seg.len() - 1];
                    if let Some((k, val)) = inner.split_once('=').filter(|(k, _)| !k.is_empty()) {
                        let mut m = Map::new();
                        m.insert(k.to_string(), resolve_plain(val));
                        s.push(Value::Map(m));
                        if let Some(c) = s.last_mut() {
                            visit_inner(c, &path[1..], create, false, f);
                        }
                    }
                }
            } else if let Ok(i) = seg.parse::<usize>()
                && let Some(c) = s.get_mut(i)
            {
                visit_inner(c, &path[1..], create, false, f);
            }
        }
        _ => {}
    }
}

fn sel(v: Option<&Value>, what: &str) -> Result<Selector, String> {
    match v {
        None | Some(Value::Null) => Ok(Selector::default()),
        Some(v) => parse_selector(v).map_err(|e| match e {
            crate::kustomization::SelectorError::Unknown(f) => {
                format!("unsupported field `{what}.{f}` in replacement")
            }
            crate::kustomization::SelectorError::Shape(m) => format!("{what}: {m}"),
        }),
    }
}

struct FieldOptions {
    delimiter: String,
    index: i64,
    create: bool,
}

fn options(v: Option<&Value>) -> Result<FieldOptions, String> {
    let mut o = FieldOptions {
        delimiter: String::new(),
        index: 0,
        create: false,
    };
    if let Some(Value::Map(m)) = v {
        for (k, x) in m {
            match (k.as_str(), x) {
                ("delimiter", Value::Str(s)) => o.delimiter = s.clone(),
                ("index", Value::Int(i)) => o.index = *i,
                ("create", Value::Bool(b)) => o.create = *b,
                (other, _) => return Err(format!("unsupported replacement option `{other}`")),
            }
        }
    }
    Ok(o)
}

/// Applies one replacement (a parsed `{source, targets}` mapping).
pub fn apply(resources: &mut [Resource], repl: &Value) -> Result<(), String> {
    let m = repl.as_map().ok_or("a replacement must be a mapping")?;
    for k in m.keys() {
        if k != "source" && k != "targets" {
            return Err(format!("unsupported field `{k}` in replacement"));
        }
    }
    let src = m
        .get("source")
        .and_then(Value::as_map)
        .ok_or("a replacement needs a source")?;
    let mut src_sel_map = src.clone();
    let field_path = src_sel_map
        .shift_remove("fieldPath")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "metadata.name".into());
    let src_opts = options(src_sel_map.shift_remove("options").as_ref())?;
    let src_sel = sel(Some(&Value::Map(src_sel_map)), "source")?;
    let mut matched = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        if matches_exact(r, &src_sel)? {
            matched.push(i);
        }
    }
    let describe = || format!("{:?}", src_sel);
    let idx = match matched.as_slice() {
        [i] => *i,
        [] => {
            return Err(format!(
                "nothing selected by replacement source {}",
                describe()
            ));
        }
        _ => {
            return Err(format!(
                "multiple matches for replacement source {}",
                describe()
            ));
        }
    };
    let obj = Value::Map(resources[idx].obj.clone());
    let mut found = Vec::new();
    find(&obj, &split_path(&field_path), &mut found);
    let mut value = found.first().map(|v| (*v).clone()).ok_or_else(|| {
        format!(
            "fieldPath `{field_path}` is missing for replacement source {}",
            resources[idx].describe()
        )
    })?;
    if !src_opts.delimiter.is_empty() {
        let s = value
            .scalar_string()
            .ok_or("delimiter option can only be used with scalar nodes")?;
        let parts: Vec<&str> = s.split(src_opts.delimiter.as_str()).collect();
        let part = usize::try_from(src_opts.index)
            .ok()
            .and_then(|i| parts.get(i))
            .ok_or_else(|| {
                format!(
                    "options.index {} is out of bounds for value {s}",
                    src_opts.index
                )
            })?;
        value = Value::Str(part.to_string());
    }
    let targets = m
        .get("targets")
        .and_then(Value::as_seq)
        .cloned()
        .unwrap_or_default();
    for t in &targets {
        let tm = t.as_map().ok_or("replacement targets must be mappings")?;
        for k in tm.keys() {
            if !matches!(k.as_str(), "select" | "reject" | "fieldPaths" | "options") {
                return Err(format!("unsupported field `targets.{k}` in replacement"));
            }
        }
        let select = sel(tm.get("select"), "select")?;
        let rejects: Vec<Selector> = match tm.get("reject") {
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| sel(Some(i), "reject"))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let opts = options(tm.get("options"))?;
        let paths: Vec<String> = tm
            .get("fieldPaths")
            .and_then(Value::as_seq)
            .map(|s| {
                s.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for r in resources.iter_mut() {
            if !matches_exact(r, &select)? {
                continue;
            }
            let mut rejected = false;
            for rj in &rejects {
                if rj != &Selector::default() && matches_exact(r, rj)? {
                    rejected = true;
                }
            }
            if rejected {
                continue;
            }
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            let mut err = None;
            for p in &paths {
                let mut hits = 0;
                visit_mut(
                    &mut obj,
                    &split_path(p),
                    opts.create,
                    &mut |target, created| {
                        hits += 1;
                        if let Err(e) = set_value(target, &value, &opts, created) {
                            err = Some(e);
                        }
                    },
                );
                if hits == 0 && !opts.create && err.is_none() {
                    err = Some(format!(
                        "unable to find field \"{p}\" in replacement target"
                    ));
                }
            }
            if let Value::Map(m) = obj {
                r.obj = m;
            }
            if let Some(e) = err {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Map(_) | Value::Seq(_))
}

fn set_value(
    target: &mut Value,
    value: &Value,
    o: &FieldOptions,
    created: bool,
) -> Result<(), String> {
    let mut value = value.clone();
    if !o.delimiter.is_empty() {
        if !is_scalar(target) || created && !is_scalar(&value) {
            return Err("delimiter option can only be used with scalar nodes".into());
        }
        let cur = if created {
            String::new()
        } else {
            target.scalar_string().unwrap_or_default()
        };
        let mut parts: Vec<String> = cur
            .split(o.delimiter.as_str())
            .map(str::to_string)
            .collect();
        let v = value.scalar_string().unwrap_or_default();
        if o.index < 0 {
            parts.insert(0, v);
        } else if o.index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[o.index as usize] = v;
        }
        value = Value::Str(parts.join(&o.delimiter));
    }
    if created {
        *target = match &value {
            v if is_scalar(v) => resolve_plain(&v.scalar_string().unwrap_or_default()),
            v => v.clone(),
        };
    } else if is_scalar(target) && is_scalar(&value) {
        let s = value.scalar_string().unwrap_or_default();
        *target = match target {
            Value::Str(_) => Value::Str(s),
            _ => resolve_plain(&s),
        };
    } else {
        *target = value;
    }
    Ok(())
}
