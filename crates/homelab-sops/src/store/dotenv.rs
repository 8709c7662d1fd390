//! The dotenv store: `KEY=VALUE` lines (split at the first `=`, `\n` escapes), `#` comments, and sops metadata
//! flattened into `sops_…` keys (`__map_`, `__list_N`), exactly as sops reads and writes them.

use crate::error::SopsError;
use crate::value::{Entry, Key, Map, Value};

/// Parses dotenv text into a flat map of strings and comments.
pub fn read(text: &str, file: &str) -> Result<Map, SopsError> {
    let mut m = Map::default();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            m.entries.push(Entry::Comment(c.to_string()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(SopsError::Parse {
                file: file.to_string(),
                format: "dotenv",
                line: n + 1,
                column: 1,
                message: "invalid dotenv input line (expected KEY=VALUE)".into(),
            });
        };
        m.entries
            .push(Entry::Item(Key::new(k), Value::Str(v.replace("\\n", "\n"))));
    }
    Ok(m)
}

/// Writes a flat map as dotenv text. Nested values are refused by the caller before this point.
pub fn write(map: &Map) -> String {
    let mut out = String::new();
    for e in &map.entries {
        match e {
            Entry::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Entry::Item(k, v) => {
                out.push_str(&k.text);
                out.push('=');
                out.push_str(&scalar_text(v).replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    out
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::value::go_float_plain(*f),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Map(_) | Value::Seq(_) => String::new(),
    }
}

/// Flattens the metadata map into sorted `sops_…` entries.
pub fn flatten_metadata(meta: &Map) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Map(m) => {
                for (k, v) in m.items() {
                    walk(&format!("{prefix}__map_{k}"), v, out);
                }
            }
            Value::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}__list_{i}"), v, out);
                }
            }
            other => out.push((prefix.to_string(), scalar_text(other))),
        }
    }
    for (k, v) in meta.items() {
        walk(&format!("sops_{k}"), v, &mut out);
    }
    out.sort();
    out
}

/// Rebuilds the metadata map from `sops_…` entries (removing them from `map`).
pub fn take_metadata(map: &mut Map) -> Option<Map> {
    let mut flat = Vec::new();
    map.entries.retain(|e| match e {
        Entry::Item(k, v) if k.text.starts_with("sops_") => {
            flat.push((k.text["sops_".len()..].to_string(), v.clone()));
            false
        }
        _ => true,
    });
    if flat.is_empty() {
        return None;
    }
    let mut root = Value::Map(Map::default());
    for (path, v) in flat {
        insert_flat(&mut root, &path, v);
    }
    match root {
        Value::Map(m) => Some(m),
        _ => None,
    }
}

/// Inserts `v` at a flattened path like `age__list_0__map_enc`.
fn insert_flat(root: &mut Value, path: &str, v: Value) {
    // Split into components: first the top key, then `__map_X` / `__list_N` segments.
    let mut parts: Vec<(bool, String)> = Vec::new(); // (is_list, key)
    let (first, mut rest) = match path.find("__") {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    parts.push((false, first.to_string()));
    while !rest.is_empty() {
        let (is_list, body) = if let Some(b) = rest.strip_prefix("__list_") {
            (true, b)
        } else if let Some(b) = rest.strip_prefix("__map_") {
            (false, b)
        } else {
            // Not a flattening marker: keep the remainder as part of the last key.
            if let Some(last) = parts.last_mut() {
                last.1.push_str(rest);
            }
            break;
        };
        let end = body.find("__").unwrap_or(body.len());
        parts.push((is_list, body[..end].to_string()));
        rest = &body[end..];
    }
    let mut cur = root;
    for (i, (is_list, key)) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next_is_list = parts.get(i + 1).map(|p| p.0);
        let make = |nl: Option<bool>| match nl {
            Some(true) => Value::Seq(Vec::new()),
            Some(false) => Value::Map(Map::default()),
            None => Value::Null,
        };
        if *is_list {
            let Value::Seq(items) = cur else { return };
            let idx: usize = key.parse().unwrap_or(items.len());
            while items.len() <= idx {
                items.push(make(next_is_list));
            }
            if last {
                items[idx] = v;
                return;
            }
            cur = &mut items[idx];
        } else {
            let Value::Map(m) = cur else { return };
            if m.get(key).is_none() {
                m.push(key.clone(), make(next_is_list));
            }
            let Some(slot) = m.entries.iter_mut().find_map(|e| match e {
                Entry::Item(k, v) if k.text == *key => Some(v),
                _ => None,
            }) else {
                return;
            };
            if last {
                *slot = v;
                return;
            }
            cur = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_flattening_round_trips() {
        let mut meta = Map::default();
        let mut age = Map::default();
        age.push("recipient", Value::Str("age1x".into()));
        age.push("enc", Value::Str("a\nb\n".into()));
        meta.push("age", Value::Seq(vec![Value::Map(age)]));
        meta.push("version", Value::Str("3.11.0".into()));
        let flat = flatten_metadata(&meta);
        assert_eq!(flat[0].0, "sops_age__list_0__map_enc");
        let mut m = Map::default();
        for (k, v) in flat {
            m.push(k, Value::Str(v));
        }
        let back = take_metadata(&mut m).expect("metadata");
        assert_eq!(back.get("version"), Some(&Value::Str("3.11.0".into())));
        assert!(m.entries.is_empty());
        let age0 = back.get("age").and_then(|a| a.lookup(&["0", "enc"]));
        assert_eq!(age0, Some(&Value::Str("a\nb\n".into())));
    }
}
