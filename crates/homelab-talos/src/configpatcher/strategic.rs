//! Strategic merge as Talos does it: `$patch: delete` turned into delete selectors (applied before the rest
//! of their document), documents matched by apiVersion/kind/name and merged field by field with Talos'
//! `merge` rules: scalars replace unless the patch's value is zero (booleans always replace), pointers merge
//! through, lists append unless tagged `merge:"replace"`, keyed lists (interfaces, VLANs, admission plugins,
//! extension config files) merge matching items, maps merge key by key, `[]byte` is replaced.

use super::types::{LEGACY, ListMerge, Registry, Ty};
use super::{Document, Node, PatchError, Value, decode_document};

/// A delete selector (`$patch: delete`).
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    path: Vec<String>,
    api_version: String,
    kind: String,
    name: Option<String>,
    key: String,
    value: String,
    origin: Option<super::Origin>,
}

/// One step of a strategic patch.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Merge(Document),
    Delete(Selector),
}

/// Load a strategic patch: delete selectors first, then what is left of each document.
pub fn load(reg: &Registry, docs: Vec<Node>, source: &str) -> Result<Vec<Item>, PatchError> {
    let mut items = Vec::new();
    for mut doc in docs {
        if doc.is_null() {
            continue;
        }
        let root = doc.clone();
        let mut path = Vec::new();
        let (_, delete_doc) = process(&root, None, &mut doc, &mut path, &mut items, source)?;
        if delete_doc || is_empty_doc(&doc) {
            continue;
        }
        items.push(Item::Merge(decode_document(reg, doc, source)?));
    }
    // Selectors found in one document precede it; `process` pushed them in order.
    Ok(items)
}

#[derive(Clone, Copy, PartialEq)]
enum Parent {
    Doc,
    Map,
    Seq,
}

/// Walks a node, turning `$patch: delete` mappings into selectors and removing them; returns whether the
/// node itself is to be removed (it held the directive, or became empty by removals).
fn process(
    root: &Node,
    parent: Option<Parent>,
    node: &mut Node,
    path: &mut Vec<String>,
    out: &mut Vec<Item>,
    source: &str,
) -> Result<(bool, bool), PatchError> {
    let parent = parent.unwrap_or(Parent::Doc);
    match &mut node.value {
        Value::Map(entries) => {
            if entries
                .iter()
                .any(|(k, v)| k == "$patch" && v.as_str() == Some("delete"))
            {
                if parent != Parent::Seq && path.iter().any(|p| p.starts_with('[')) {
                    return Err(PatchError::at(
                        node.origin.as_ref(),
                        source,
                        format!("cannot delete an inner key in '{}'", path.join(".")),
                    ));
                }
                let (key, value) = if parent == Parent::Seq {
                    entries
                        .iter()
                        .find(|(k, _)| k != "$patch")
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .ok_or_else(|| {
                            PatchError::at(
                                node.origin.as_ref(),
                                source,
                                format!(
                                    "no key:val found in sequence node for path {}",
                                    path.join(".")
                                ),
                            )
                        })?
                } else {
                    (String::new(), String::new())
                };
                out.push(Item::Delete(selector(
                    root,
                    path,
                    key,
                    value,
                    node.origin.clone(),
                    source,
                )?));
                return Ok((true, true));
            }
            let mut i = 0;
            while i < entries.len() {
                path.push(entries[i].0.clone());
                let (_, del) = process(
                    root,
                    Some(Parent::Map),
                    &mut entries[i].1,
                    path,
                    out,
                    source,
                )?;
                path.pop();
                if del {
                    entries.remove(i);
                    if entries.is_empty() {
                        return Ok((true, true));
                    }
                } else {
                    i += 1;
                }
            }
            Ok((true, false))
        }
        Value::Seq(items) => {
            let mut i = 0;
            while i < items.len() {
                path.push(format!("[{i}]"));
                let (_, del) = process(root, Some(Parent::Seq), &mut items[i], path, out, source)?;
                path.pop();
                if del {
                    items.remove(i);
                    if items.is_empty() {
                        return Ok((true, true));
                    }
                } else {
                    i += 1;
                }
            }
            Ok((true, false))
        }
        _ => Ok((true, false)),
    }
}

fn selector(
    root: &Node,
    path: &[String],
    key: String,
    value: String,
    origin: Option<super::Origin>,
    source: &str,
) -> Result<Selector, PatchError> {
    let api_version = root.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let kind = root.get("kind").and_then(Node::as_str).unwrap_or("");
    let (api_version, kind) = match (api_version, kind) {
        ("", "") if !path.is_empty() => (String::new(), "v1alpha1".to_string()),
        ("", _) | (_, "") => {
            return Err(PatchError::at(
                origin.as_ref(),
                source,
                format!(
                    "kind and apiVersion must be both set for path {}",
                    path.join(".")
                ),
            ));
        }
        (a, k) => (a.to_string(), k.to_string()),
    };
    let name = root
        .get("name")
        .and_then(Node::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Ok(Selector {
        path: path.to_vec(),
        api_version,
        kind,
        name,
        key,
        value,
        origin,
    })
}

/// A document left with only `version`, `kind` and `name` (Talos drops it).
fn is_empty_doc(doc: &Node) -> bool {
    match &doc.value {
        Value::Map(m) => m.iter().all(|(k, v)| {
            matches!(v.value, Value::Scalar(..) | Value::Null)
                && matches!(k.as_str(), "version" | "kind" | "name")
        }),
        _ => false,
    }
}

/// Apply one strategic patch to the documents (Talos' `StrategicMerge`).
pub fn apply(reg: &Registry, left: &mut Vec<Document>, items: &[Item]) -> Result<(), PatchError> {
    // Talos indexes the documents once: documents appended by this patch are not matched again.
    let mut indexed: Vec<bool> = vec![true; left.len()];
    for item in items {
        match item {
            Item::Merge(right) => {
                let id = right.id(reg);
                match left
                    .iter()
                    .zip(&indexed)
                    .position(|(d, ix)| *ix && d.id(reg) == id)
                {
                    Some(i) => {
                        let mut slot =
                            Some(std::mem::replace(&mut left[i].node, Node::new(Value::Null)));
                        let ty = Ty::Struct(left[i].type_name.clone());
                        merge(reg, &mut slot, Some(&right.node), &ty, false, false)?;
                        left[i].node = slot.unwrap_or_else(|| Node::new(Value::Map(Vec::new())));
                    }
                    None => {
                        left.push(right.clone());
                        indexed.push(false);
                    }
                }
            }
            Item::Delete(sel) => {
                let mut id = format!("{}/{}", sel.api_version, sel.kind);
                if let Some(n) = &sel.name {
                    id.push('/');
                    id.push_str(n);
                }
                let Some(i) = left
                    .iter()
                    .zip(&indexed)
                    .position(|(d, ix)| *ix && d.id(reg) == id)
                else {
                    return Err(PatchError::at(
                        sel.origin.as_ref(),
                        "patch",
                        format!("patch delete: the config has no document {id}"),
                    ));
                };
                let doc_label = format!("{}/{}", left[i].api_version(), left[i].kind());
                let path = sel.path.join(".");
                let fail = |msg: String| {
                    let inner = format!("failed to delete path '{path}': {msg}");
                    let message = match &sel.name {
                        Some(_) => format!("named patch delete: document {doc_label}: {inner}"),
                        None => format!(
                            "patch delete: path '{path}' in document '{doc_label}': {inner}"
                        ),
                    };
                    match &sel.origin {
                        Some(o) => PatchError::At {
                            source_name: o.source.to_string(),
                            line: o.line,
                            message,
                        },
                        None => PatchError::Other(message),
                    }
                };
                if sel.path.is_empty() {
                    if left[i].type_name == LEGACY {
                        return Err(fail("can't delete the root of the legacy document".into()));
                    }
                    left.remove(i);
                    indexed.remove(i);
                    continue;
                }
                let ty = Ty::Struct(left[i].type_name.clone());
                let mut slot = Some(std::mem::replace(&mut left[i].node, Node::new(Value::Null)));
                let result = delete(reg, &mut slot, &ty, &sel.path, &sel.key, &sel.value);
                left[i].node = slot.unwrap_or_else(|| Node::new(Value::Map(Vec::new())));
                result.map_err(fail)?;
            }
        }
    }
    Ok(())
}

const LOOKUP_FAILED: &str = "lookup failed";

/// Talos' `deleteForPath`: walk struct fields by yaml name and map keys; in a list, remove the first struct
/// whose string field `key` equals `value`.
fn delete(
    reg: &Registry,
    slot: &mut Option<Node>,
    ty: &Ty,
    path: &[String],
    key: &str,
    value: &str,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("path is empty".into());
    };
    match ty {
        Ty::Ptr(inner) => {
            if slot.as_ref().is_none_or(Node::is_null) {
                return Err(LOOKUP_FAILED.into());
            }
            delete(reg, slot, inner, path, key, value)
        }
        Ty::Struct(name) => {
            let Some(field) = reg.fields(name).iter().find(|f| f.name == *first) else {
                return Err(LOOKUP_FAILED.into());
            };
            let node = slot.get_or_insert_with(|| Node::new(Value::Map(Vec::new())));
            if node.is_null() {
                node.value = Value::Map(Vec::new());
            }
            let Value::Map(entries) = &mut node.value else {
                return Err(LOOKUP_FAILED.into());
            };
            let pos = entries.iter().position(|(k, _)| k == first);
            if rest.is_empty() {
                if let Some(p) = pos {
                    entries.remove(p);
                }
                return Ok(());
            }
            let mut child = pos.map(|p| entries.remove(p).1);
            let result = delete(reg, &mut child, &field.ty, rest, key, value);
            if let Some(c) = child {
                let at = pos.unwrap_or(entries.len());
                entries.insert(at, (first.clone(), c));
            }
            result
        }
        Ty::Map(elem) => {
            let Some(Node {
                value: Value::Map(entries),
                ..
            }) = slot
            else {
                return Err(LOOKUP_FAILED.into());
            };
            let Some(p) = entries.iter().position(|(k, _)| k == first) else {
                return Err(LOOKUP_FAILED.into());
            };
            if rest.is_empty() {
                entries.remove(p);
                return Ok(());
            }
            let mut child = Some(entries[p].1.clone());
            delete(reg, &mut child, elem, rest, key, value)?;
            if let Some(c) = child {
                entries[p].1 = c;
            }
            Ok(())
        }
        Ty::Slice(elem, _) => {
            if !rest.is_empty() {
                return Err("searching for complex paths in slices is not supported".into());
            }
            if !first.starts_with('[') {
                return Err("searching for non-integer keys in slices is not supported".into());
            }
            let mut elem = elem.as_ref();
            while let Ty::Ptr(inner) = elem {
                elem = inner;
            }
            let Ty::Struct(name) = elem else {
                return Err(LOOKUP_FAILED.into());
            };
            let is_string_field = reg
                .fields(name)
                .iter()
                .any(|f| f.name == key && f.ty == Ty::Str);
            let Some(Node {
                value: Value::Seq(items),
                ..
            }) = slot
            else {
                return Err(LOOKUP_FAILED.into());
            };
            let found = items.iter().position(|item| {
                is_string_field && item.get(key).and_then(Node::as_str).unwrap_or("") == value
            });
            match found {
                Some(i) => {
                    items.remove(i);
                    Ok(())
                }
                None => Err(LOOKUP_FAILED.into()),
            }
        }
        _ => Err(LOOKUP_FAILED.into()),
    }
}

fn is_nil(n: Option<&Node>) -> bool {
    n.is_none_or(Node::is_null)
}

/// Whether a value is its type's zero value as Go's `reflect.Value.IsZero` sees it.
fn is_zero(reg: &Registry, n: Option<&Node>, ty: &Ty) -> bool {
    let Some(n) = n.filter(|n| !n.is_null()) else {
        return true;
    };
    match (ty, &n.value) {
        (Ty::Struct(name), Value::Map(_)) => reg
            .fields(name)
            .iter()
            .all(|f| is_zero(reg, n.get(&f.name), &f.ty)),
        (Ty::Str | Ty::Duration | Ty::Opaque | Ty::Any, Value::Scalar(s, _)) => s.is_empty(),
        (Ty::Int | Ty::Float, Value::Scalar(s, _)) => s
            .trim_start_matches(['+', '-'])
            .chars()
            .all(|c| matches!(c, '0' | '.' | '_')),
        (Ty::Bool, Value::Scalar(s, _)) => !s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Talos' `merge.merge(left, right, replace, overwrite)` on nodes; `None` or null is Go's nil/zero value.
pub fn merge(
    reg: &Registry,
    left: &mut Option<Node>,
    right: Option<&Node>,
    ty: &Ty,
    replace: bool,
    overwrite: bool,
) -> Result<(), PatchError> {
    match ty {
        Ty::Slice(elem, Some(how)) => {
            let Some(Node {
                value: Value::Seq(items),
                ..
            }) = right
            else {
                return Ok(());
            };
            for item in items {
                merge_keyed(reg, left, item, elem, *how)?;
            }
            Ok(())
        }
        Ty::Ptr(inner) => {
            if is_nil(right) {
                return Ok(());
            }
            if is_nil(left.as_ref()) {
                *left = right.cloned();
                return Ok(());
            }
            merge(reg, left, right, inner, replace, true)
        }
        Ty::Slice(_, None) | Ty::Bytes => {
            let Some(r) = right.filter(|r| !r.is_null()) else {
                return Ok(());
            };
            if replace || *ty == Ty::Bytes {
                *left = Some(r.clone());
                return Ok(());
            }
            let Value::Seq(add) = &r.value else {
                *left = Some(r.clone());
                return Ok(());
            };
            match left {
                Some(Node {
                    value: Value::Seq(items),
                    ..
                }) => items.extend(add.iter().cloned()),
                _ => *left = Some(r.clone()),
            }
            Ok(())
        }
        Ty::Map(elem) => merge_map(reg, left, right, elem, replace),
        Ty::Unstructured => {
            if replace {
                if !is_zero_map(right) {
                    *left = right.cloned();
                }
                return Ok(());
            }
            merge_map(reg, left, right, &Ty::Any, false)
        }
        Ty::Struct(name) => {
            if replace {
                if !is_zero(reg, right, ty) {
                    *left = right.cloned();
                }
                return Ok(());
            }
            let created = is_nil(left.as_ref());
            let l = left.get_or_insert_with(|| Node::new(Value::Map(Vec::new())));
            if l.is_null() {
                l.value = Value::Map(Vec::new());
            }
            // A struct the patch brings into being was written by the patch; an existing one was not.
            if created && let Some(r) = right {
                l.origin = r.origin.clone();
            }
            for f in reg.fields(name) {
                let r = right.and_then(|r| r.get(&f.name));
                let Value::Map(entries) = &mut l.value else {
                    return Ok(());
                };
                let pos = entries.iter().position(|(k, _)| *k == f.name);
                let mut child = pos.map(|p| entries[p].1.clone());
                merge(reg, &mut child, r, &f.ty, f.replace, false)?;
                match (pos, child) {
                    (Some(p), Some(c)) => entries[p].1 = c,
                    (Some(p), None) => {
                        entries.remove(p);
                    }
                    (None, Some(c)) => entries.push((f.name.clone(), c)),
                    (None, None) => {}
                }
            }
            Ok(())
        }
        Ty::Bool => {
            // Talos' merge always takes the right boolean, even a false it only has as zero value.
            match right.filter(|r| !r.is_null()) {
                Some(r) => *left = Some(r.clone()),
                None => {
                    if left.is_some() {
                        let mut f = Node::new(Value::Scalar("false".into(), super::Tag::Bool));
                        f.origin = left.as_ref().and_then(|l| l.origin.clone());
                        *left = Some(f);
                    }
                }
            }
            Ok(())
        }
        Ty::Any => merge_any(reg, left, right, overwrite),
        Ty::Str | Ty::Int | Ty::Float | Ty::Duration | Ty::Opaque => {
            if is_zero(reg, right, ty) && !overwrite {
                return Ok(());
            }
            *left = right.filter(|r| !r.is_null()).cloned();
            Ok(())
        }
    }
}

fn is_zero_map(n: Option<&Node>) -> bool {
    match n {
        Some(Node {
            value: Value::Map(m),
            ..
        }) => m.is_empty(),
        _ => true,
    }
}

fn merge_map(
    reg: &Registry,
    left: &mut Option<Node>,
    right: Option<&Node>,
    elem: &Ty,
    replace: bool,
) -> Result<(), PatchError> {
    let Some(r) = right.filter(|r| !r.is_null()) else {
        return Ok(());
    };
    if replace {
        *left = Some(r.clone());
        return Ok(());
    }
    let Value::Map(add) = &r.value else {
        *left = Some(r.clone());
        return Ok(());
    };
    let l = left.get_or_insert_with(|| Node {
        value: Value::Map(Vec::new()),
        origin: r.origin.clone(),
    });
    if l.is_null() {
        l.value = Value::Map(Vec::new());
    }
    let Value::Map(entries) = &mut l.value else {
        return Ok(());
    };
    for (k, rv) in add {
        match entries.iter().position(|(lk, _)| lk == k) {
            Some(p) if !entries[p].1.is_null() => {
                let mut child = Some(entries[p].1.clone());
                merge(reg, &mut child, Some(rv), elem, false, false)?;
                match child {
                    Some(c) => entries[p].1 = c,
                    None => entries[p].1 = Node::new(Value::Null),
                }
            }
            Some(p) => entries[p].1 = rv.clone(),
            None => entries.push((k.clone(), rv.clone())),
        }
    }
    Ok(())
}

/// Merge of two `interface{}` values of an unstructured map: same concrete type required.
fn merge_any(
    reg: &Registry,
    left: &mut Option<Node>,
    right: Option<&Node>,
    overwrite: bool,
) -> Result<(), PatchError> {
    let (Some(l), Some(r)) = (left.as_ref(), right) else {
        if let Some(r) = right {
            *left = Some(r.clone());
        }
        return Ok(());
    };
    let same = match (&l.value, &r.value) {
        (Value::Map(_), Value::Map(_)) | (Value::Seq(_), Value::Seq(_)) => true,
        (Value::Scalar(_, a), Value::Scalar(_, b)) => a == b,
        _ => false,
    };
    if !same {
        return Err(PatchError::at(
            r.origin.as_ref(),
            "patch",
            "merge type mismatch: the patch gives this field another type than the config has",
        ));
    }
    match &r.value {
        Value::Map(_) => merge_map(reg, left, right, &Ty::Any, false),
        Value::Seq(_) => merge(
            reg,
            left,
            right,
            &Ty::Slice(Box::new(Ty::Any), None),
            false,
            false,
        ),
        Value::Scalar(_, super::Tag::Bool) => {
            *left = Some(r.clone());
            Ok(())
        }
        _ => {
            if is_zero(reg, Some(r), &Ty::Any) && !overwrite {
                return Ok(());
            }
            *left = Some(r.clone());
            Ok(())
        }
    }
}

/// A keyed list's `Merge`: merge into the matching item, or append.
fn merge_keyed(
    reg: &Registry,
    left: &mut Option<Node>,
    item: &Node,
    elem: &Ty,
    how: ListMerge,
) -> Result<(), PatchError> {
    let l = left.get_or_insert_with(|| Node::new(Value::Seq(Vec::new())));
    if l.is_null() {
        l.value = Value::Seq(Vec::new());
    }
    let Value::Seq(items) = &mut l.value else {
        return Ok(());
    };
    let text = |n: &Node, k: &str| n.get(k).and_then(Node::as_str).unwrap_or("").to_string();
    let found = match how {
        ListMerge::Devices => {
            let iface = text(item, "interface");
            if !iface.is_empty() {
                items.iter().position(|d| text(d, "interface") == iface)
            } else if let Some(sel) = item.get("deviceSelector").filter(|s| !s.is_null()) {
                let sel_ty = Ty::Struct("v1alpha1.NetworkDeviceSelector".into());
                let want = super::encode::normalize(reg, Some(sel), &sel_ty);
                items.iter().position(|d| {
                    d.get("deviceSelector")
                        .filter(|s| !s.is_null())
                        .is_some_and(|s| super::encode::normalize(reg, Some(s), &sel_ty) == want)
                })
            } else {
                None
            }
        }
        ListMerge::Vlans => {
            let id = item.get("vlanId").and_then(Node::as_str).map(vlan_number);
            items
                .iter()
                .position(|v| v.get("vlanId").and_then(Node::as_str).map(vlan_number) == id)
        }
        ListMerge::AdmissionPlugins => {
            let name = text(item, "name");
            items.iter().position(|c| text(c, "name") == name)
        }
        ListMerge::ConfigFiles => {
            let path = text(item, "mountPath");
            items.iter().position(|c| text(c, "mountPath") == path)
        }
    };
    match found {
        Some(i) => {
            let mut slot = Some(items[i].clone());
            // merge.Merge(existing, item) on pointers: both set, so their structs merge with overwrite.
            let inner = match elem {
                Ty::Ptr(inner) => inner.as_ref(),
                other => other,
            };
            merge(reg, &mut slot, Some(item), inner, false, true)?;
            if let Some(s) = slot {
                items[i] = s;
            }
        }
        None => items.push(item.clone()),
    }
    Ok(())
}

fn vlan_number(s: &str) -> Option<i64> {
    homelab_goyaml::strconv::parse_int(s)
}
