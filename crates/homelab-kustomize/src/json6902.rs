//! RFC 6902 JSON Patch (add, remove, replace, move, copy, test) over [`Value`], with the error cases of
//! evanphx/json-patch that kustomize uses.

use crate::yaml::Value;

/// Applies `ops` (a parsed YAML/JSON list) to `doc`.
pub fn apply(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let m = op
            .as_map()
            .ok_or("each JSON patch operation must be a mapping")?;
        let name = m
            .get("op")
            .and_then(Value::as_str)
            .ok_or("JSON patch operation without `op`")?;
        let path = m
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{name}` operation without `path`"))?;
        let value = || {
            m.get("value")
                .cloned()
                .ok_or_else(|| format!("`{name}` operation on {path} without `value`"))
        };
        match name {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                let v = value()?;
                let target = get_mut(doc, path)?.ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing path: {path}")
                })?;
                *target = v;
            }
            "move" => {
                let from = m
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("move without `from`")?;
                let v = remove(doc, from)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let from = m
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("copy without `from`")?;
                let v = get_mut(doc, from)?
                    .ok_or_else(|| format!("copy from missing path: {from}"))?
                    .clone();
                add(doc, path, v)?;
            }
            "test" => {
                let v = value()?;
                let cur = get_mut(doc, path)?
                    .ok_or_else(|| format!("testing value {path} failed: missing"))?;
                if *cur != v {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {path:?} must start with /"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Result<Option<&'a mut Value>, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Map(m) => match m.get_mut(&t) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Seq(s) => match t.parse::<usize>().ok().and_then(|i| s.get_mut(i)) {
                Some(v) => v,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
    }
    Ok(Some(cur))
}

fn parent<'a>(doc: &'a mut Value, path: &str, op: &str) -> Result<(&'a mut Value, String), String> {
    let mut t = tokens(path)?;
    let last = t
        .pop()
        .ok_or_else(|| format!("{op} operation on the document root is not supported"))?;
    let mut cur = doc;
    for tok in t {
        cur = match cur {
            Value::Map(m) => m.get_mut(&tok),
            Value::Seq(s) => tok.parse::<usize>().ok().and_then(|i| s.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("{op} operation does not apply: doc is missing path: {path}"))?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    let (p, last) = parent(doc, path, "add")?;
    match p {
        Value::Map(m) => {
            m.insert(last, v);
        }
        Value::Seq(s) => {
            if last == "-" {
                s.push(v);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("add operation: invalid index in {path}"))?;
                if i > s.len() {
                    return Err(format!(
                        "add operation does not apply: index out of bounds in {path}"
                    ));
                }
                s.insert(i, v);
            }
        }
        _ => {
            return Err(format!(
                "add operation does not apply: doc is missing path: {path}"
            ));
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (p, last) = parent(doc, path, "remove")?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path}");
    match p {
        Value::Map(m) => m.shift_remove(&last).ok_or_else(missing),
        Value::Seq(s) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < s.len() {
                Ok(s.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}
