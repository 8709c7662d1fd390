//! Kustomize `kustomization.yaml` files: rendering one, and registering a new resource in an existing one
//! while keeping the user's comments and layout.

use serde_json::{Value, json};

use crate::manifest;

/// The file name kustomize looks for first in a directory (the one written here).
pub const FILE_NAME: &str = homelab_kustomize::kustomization::FILE_NAMES[0];

/// A kustomization listing `resources` in order.
pub(crate) fn render(resources: &[&str]) -> String {
    manifest::render(&[json!({
        "apiVersion": homelab_kustomize::kustomization::API_VERSION,
        "kind": homelab_kustomize::kustomization::KIND,
        "resources": resources,
    })])
}

/// Why a resource could not be registered in a kustomization.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("it is not valid YAML: {0}")]
    Yaml(String),
    #[error("it is not a kustomize Kustomization (a YAML mapping)")]
    NotAMapping,
    #[error("its `resources` is not a list of strings")]
    BadResources,
    #[error("`{0}` is already listed in its resources")]
    AlreadyListed(String),
}

/// The resource entries of a kustomization text.
pub fn resources(text: &str) -> Result<Vec<String>, EditError> {
    let value = parse(text)?;
    resources_of(&value)
}

/// Returns `text` with `entry` appended to its `resources`, keeping comments and layout when the list is in
/// block or empty-flow style (re-rendering the document otherwise). The result is checked by parsing it
/// back: it equals the input with exactly one more resource.
pub fn add_resource(text: &str, entry: &str) -> Result<String, EditError> {
    let mut value = parse(text)?;
    let mut list = resources_of(&value)?;
    if list.iter().any(|r| r.trim_end_matches('/') == entry) {
        return Err(EditError::AlreadyListed(entry.to_string()));
    }
    list.push(entry.to_string());
    let Value::Object(map) = &mut value else {
        return Err(EditError::NotAMapping);
    };
    map.insert("resources".into(), json!(list));
    if let Some(edited) = edit_in_place(text, entry)
        && parse(&edited).ok().as_ref() == Some(&value)
    {
        return Ok(edited);
    }
    Ok(manifest::render(&[value]))
}

fn parse(text: &str) -> Result<Value, EditError> {
    homelab_goyaml::alias::check(text).map_err(|e| EditError::Yaml(e.to_string()))?;
    let value: Value = serde_saphyr::from_str(text).map_err(|e| EditError::Yaml(e.to_string()))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        _ => Err(EditError::NotAMapping),
    }
}

fn resources_of(value: &Value) -> Result<Vec<String>, EditError> {
    match value.get("resources") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or(EditError::BadResources)
            })
            .collect(),
        Some(_) => Err(EditError::BadResources),
    }
}

/// A textual edit for the common layouts; `None` when the layout is not one of them.
fn edit_in_place(text: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let key = lines.iter().position(|l| is_top_level_key(l, "resources"));
    let Some(key) = key else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("resources:\n  - {entry}\n"));
        return Some(out);
    };
    let rest = lines[key].trim_end()["resources:".len()..].trim();
    let rest = rest.split(" #").next().unwrap_or("").trim();
    if rest == "[]" {
        let mut out: String = lines[..key].concat();
        out.push_str(&format!("resources:\n  - {entry}\n"));
        out.push_str(&lines[key + 1..].concat());
        return Some(out);
    }
    if !rest.is_empty() {
        return None;
    }
    // A block sequence: items at one indentation, possibly with blank and comment lines between.
    let mut last_item = None;
    let mut indent = None;
    for (i, line) in lines.iter().enumerate().skip(key + 1) {
        let trimmed = line.trim_start();
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - trimmed.len();
        if trimmed.starts_with("- ") || trimmed.trim_end() == "-" {
            match indent {
                None => indent = Some(this_indent),
                Some(n) if n != this_indent => return None,
                Some(_) => {}
            }
            last_item = Some(i);
        } else if this_indent == 0 {
            break;
        } else {
            // A continuation line of an item (multi-line scalar): not a layout we edit.
            return None;
        }
    }
    let indent = " ".repeat(indent.unwrap_or(2));
    let at = last_item.unwrap_or(key);
    let mut out: String = lines[..=at].concat();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{indent}- {entry}\n"));
    out.push_str(&lines[at + 1..].concat());
    Some(out)
}

fn is_top_level_key(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .and_then(|r| r.strip_prefix(':'))
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\n', '\r']))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_a_block_list_keeping_comments() {
        let text = "# mine\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - a  # first\n\n  # b next\n  - b\nnamespace: x\n";
        let out = add_resource(text, "c").unwrap();
        assert_eq!(
            out,
            "# mine\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - a  # first\n\n  # b next\n  - b\n  - c\nnamespace: x\n"
        );
    }

    #[test]
    fn appends_to_an_unindented_block_list() {
        let text = "kind: Kustomization\nresources:\n- a\n";
        assert_eq!(
            add_resource(text, "b").unwrap(),
            "kind: Kustomization\nresources:\n- a\n- b\n"
        );
    }

    #[test]
    fn replaces_an_empty_flow_list() {
        let text = "kind: Kustomization\nresources: []\n";
        assert_eq!(
            add_resource(text, "b").unwrap(),
            "kind: Kustomization\nresources:\n  - b\n"
        );
    }

    #[test]
    fn adds_a_missing_resources_key() {
        let text = "kind: Kustomization";
        assert_eq!(
            add_resource(text, "b").unwrap(),
            "kind: Kustomization\nresources:\n  - b\n"
        );
    }

    #[test]
    fn rerenders_a_flow_list() {
        let text = "kind: Kustomization\nresources: [a, b]\n";
        let out = add_resource(text, "c").unwrap();
        assert_eq!(resources(&out).unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn refuses_an_entry_already_listed() {
        let text = "resources:\n  - a/\n";
        assert_eq!(
            add_resource(text, "a"),
            Err(EditError::AlreadyListed("a".into()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_kustomization() {
        assert_eq!(add_resource("- a\n", "b"), Err(EditError::NotAMapping));
        assert_eq!(
            add_resource("resources: 3\n", "b"),
            Err(EditError::BadResources)
        );
        assert!(matches!(
            add_resource("a: [\n", "b"),
            Err(EditError::Yaml(_))
        ));
    }

    #[test]
    fn rendered_kustomization_lists_resources_in_order() {
        let text = render(&["b.yaml", "a"]);
        assert_eq!(resources(&text).unwrap(), ["b.yaml", "a"]);
    }
}
