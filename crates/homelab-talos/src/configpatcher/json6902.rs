//! RFC 6902 JSON patches on the config tree (as evanphx/json-patch applies them for talosctl): `add`,
//! `remove`, `replace`, `move`, `copy`, `test`. Values keep the line of the operation that wrote them.

use super::{Node, PatchError, Value};

/// Apply operations in order; the error names the operation's file and line.
pub fn apply(doc: &mut Node, ops: &[Node], source: &str) -> Result<(), PatchError> {
    for op in ops {
        let name = op.get("op").and_then(Node::as_str).unwrap_or("");
        let path = op.get("path").and_then(Node::as_str).unwrap_or("");
        let fail = |reason: &str| {
            PatchError::at(
                op.origin.as_ref(),
                source,
                format!("failure applying rfc6902 patches: `{name} {path}`: {reason}"),
            )
        };
        if op.get("path").and_then(Node::as_str).is_none() {
            return Err(fail("`path` is missing"));
        }
        let value = || {
            op.get("value").cloned().map(|mut v| {
                if let Some(o) = &op.origin {
                    v.stamp(o);
                }
                v
            })
        };
        let from = || op.get("from").and_then(Node::as_str).map(str::to_string);
        match name {
            "add" => {
                let v = value().ok_or_else(|| fail("`value` is missing"))?;
                add(doc, path, v).map_err(|e| fail(&e))?;
            }
            "remove" => {
                remove(doc, path).map_err(|e| fail(&e))?;
            }
            "replace" => {
                let v = value().ok_or_else(|| fail("`value` is missing"))?;
                let slot = pointer_mut(doc, path).ok_or_else(|| fail("the path does not exist"))?;
                *slot = v;
            }
            "move" => {
                let from = from().ok_or_else(|| fail("`from` is missing"))?;
                if path.starts_with(&format!("{from}/")) {
                    return Err(fail("cannot move a value into itself"));
                }
                let v = remove(doc, &from).map_err(|e| fail(&e))?;
                add(doc, path, v).map_err(|e| fail(&e))?;
            }
            "copy" => {
                let from = from().ok_or_else(|| fail("`from` is missing"))?;
                let v = pointer_mut(doc, &from)
                    .map(|n| n.clone())
                    .ok_or_else(|| fail("`from` does not exist"))?;
                add(doc, path, v).map_err(|e| fail(&e))?;
            }
            "test" => {
                let v = value().ok_or_else(|| fail("`value` is missing"))?;
                if pointer_mut(doc, path).map(|n| &*n) != Some(&v) {
                    return Err(fail("the value differs"));
                }
            }
            _ => {
                return Err(fail(
                    "unknown op (expected add, remove, replace, move, copy or test)",
                ));
            }
        }
    }
    Ok(())
}

fn unescape(part: &str) -> String {
    part.replace("~1", "/").replace("~0", "~")
}

fn pointer_mut<'a>(doc: &'a mut Node, path: &str) -> Option<&'a mut Node> {
    if path.is_empty() {
        return Some(doc);
    }
    let mut node = doc;
    for part in path.strip_prefix('/')?.split('/') {
        let part = unescape(part);
        node = match &mut node.value {
            Value::Map(m) => m.iter_mut().find(|(k, _)| *k == part).map(|(_, v)| v)?,
            Value::Seq(s) => s.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn split(path: &str) -> Result<(&str, String), String> {
    if path.is_empty() {
        return Err("the whole document cannot be replaced".into());
    }
    if !path.starts_with('/') {
        return Err("a JSON pointer starts with `/`".into());
    }
    let cut = path.rfind('/').unwrap_or(0);
    Ok((&path[..cut], unescape(&path[cut + 1..])))
}

fn add(doc: &mut Node, path: &str, value: Node) -> Result<(), String> {
    let (parent, last) = split(path)?;
    let parent = pointer_mut(doc, parent).ok_or("the parent of the path does not exist")?;
    match &mut parent.value {
        Value::Map(m) => {
            match m.iter_mut().find(|(k, _)| *k == last) {
                Some((_, v)) => *v = value,
                None => m.push((last, value)),
            }
            Ok(())
        }
        Value::Seq(s) => {
            if last == "-" {
                s.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| "not an array index".to_string())?;
            if i > s.len() {
                return Err("array index out of range".into());
            }
            s.insert(i, value);
            Ok(())
        }
        _ => Err("the parent of the path is not an object or array".into()),
    }
}

fn remove(doc: &mut Node, path: &str) -> Result<Node, String> {
    let (parent, last) = split(path)?;
    let parent = pointer_mut(doc, parent).ok_or("the parent of the path does not exist")?;
    match &mut parent.value {
        Value::Map(m) => {
            let p = m
                .iter()
                .position(|(k, _)| *k == last)
                .ok_or("the path does not exist")?;
            Ok(m.remove(p).1)
        }
        Value::Seq(s) => {
            let i: usize = last.parse().map_err(|_| "not an array index".to_string())?;
            if i >= s.len() {
                return Err("array index out of range".into());
            }
            Ok(s.remove(i))
        }
        _ => Err("the parent of the path is not an object or array".into()),
    }
}
