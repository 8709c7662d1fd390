//! Resource selection: patch targets (anchored regexes on name/namespace, label and annotation selectors)
//! and exact id matching for replacements and replicas.

use regex::Regex;

use crate::kustomization::Selector;
use crate::resource::Resource;
use crate::yaml::Map;

/// Namespace as kustomize compares it (`default` when unset).
pub fn effective_ns(ns: &str) -> &str {
    if ns.is_empty() { "default" } else { ns }
}

fn anchored(re: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{re})$")).ok()
}

/// Patch-target selection (kustomize `resWrangler.Select`): name/namespace are anchored regexes matched
/// against the original or current value; group/version/kind are exact.
pub fn matches_target(r: &Resource, s: &Selector) -> Result<bool, String> {
    let (g, v) = r.group_version();
    if s.group.as_deref().is_some_and(|x| !x.is_empty() && x != g)
        || s.version
            .as_deref()
            .is_some_and(|x| !x.is_empty() && x != v)
        || s.kind
            .as_deref()
            .is_some_and(|x| !x.is_empty() && x != r.kind())
    {
        return Ok(false);
    }
    if let Some(ns) = s.namespace.as_deref().filter(|x| !x.is_empty()) {
        let re = anchored(ns).ok_or_else(|| format!("invalid namespace regex {ns:?}"))?;
        let org_ns = r
            .previous
            .first()
            .map(|p| p.1.as_str())
            .unwrap_or(r.namespace());
        if !re.is_match(effective_ns(org_ns)) && !re.is_match(effective_ns(r.namespace())) {
            return Ok(false);
        }
    }
    if let Some(name) = s.name.as_deref().filter(|x| !x.is_empty()) {
        let re = anchored(name).ok_or_else(|| format!("invalid name regex {name:?}"))?;
        if !re.is_match(r.original_name()) && !re.is_match(r.name()) {
            return Ok(false);
        }
    }
    if let Some(ls) = s.label_selector.as_deref().filter(|x| !x.is_empty())
        && !label_selector_matches(ls, r.labels())?
    {
        return Ok(false);
    }
    if let Some(a) = s.annotation_selector.as_deref().filter(|x| !x.is_empty())
        && !label_selector_matches(a, r.annotations())?
    {
        return Ok(false);
    }
    Ok(true)
}

/// Exact selection by any id the resource had (replacements' `select`/`source`).
pub fn matches_exact(r: &Resource, s: &Selector) -> Result<bool, String> {
    let (g, v) = r.group_version();
    if s.group.as_deref().is_some_and(|x| !x.is_empty() && x != g)
        || s.version
            .as_deref()
            .is_some_and(|x| !x.is_empty() && x != v)
        || s.kind
            .as_deref()
            .is_some_and(|x| !x.is_empty() && x != r.kind())
    {
        return Ok(false);
    }
    let mut ids: Vec<(&str, &str)> = vec![(r.name(), r.namespace())];
    ids.extend(r.previous.iter().map(|(n, ns)| (n.as_str(), ns.as_str())));
    let id_ok = ids.iter().any(|(n, ns)| {
        s.name.as_deref().is_none_or(|x| x.is_empty() || x == *n)
            && s.namespace
                .as_deref()
                .is_none_or(|x| x.is_empty() || effective_ns(x) == effective_ns(ns))
    });
    if !id_ok {
        return Ok(false);
    }
    if let Some(ls) = s.label_selector.as_deref().filter(|x| !x.is_empty())
        && !label_selector_matches(ls, r.labels())?
    {
        return Ok(false);
    }
    if let Some(a) = s.annotation_selector.as_deref().filter(|x| !x.is_empty())
        && !label_selector_matches(a, r.annotations())?
    {
        return Ok(false);
    }
    Ok(true)
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`.
pub fn label_selector_matches(sel: &str, labels: Option<&Map>) -> Result<bool, String> {
    let get = |k: &str| {
        labels
            .and_then(|m| m.get(k))
            .and_then(|v| v.scalar_string())
    };
    for req in split_requirements(sel) {
        let req = req.trim();
        if req.is_empty() {
            continue;
        }
        let ok = if let Some(k) = req.strip_prefix('!') {
            get(k.trim()).is_none()
        } else if let Some((k, vals)) = split_set(req, " notin ") {
            get(k).is_none_or(|v| !vals.contains(&v))
        } else if let Some((k, vals)) = split_set(req, " in ") {
            get(k).is_some_and(|v| vals.contains(&v))
        } else if let Some((k, v)) = req.split_once("!=") {
            get(k.trim()).is_none_or(|x| x != v.trim())
        } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
            get(k.trim()).is_some_and(|x| x == v.trim())
        } else if req
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./".contains(c))
        {
            get(req).is_some()
        } else {
            return Err(format!(
                "unable to parse requirement {req:?} in selector {sel:?}"
            ));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn split_requirements(sel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn split_set<'a>(req: &'a str, op: &str) -> Option<(&'a str, Vec<String>)> {
    let (k, rest) = req.split_once(op)?;
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some((
        k.trim(),
        inner.split(',').map(|s| s.trim().to_string()).collect(),
    ))
}
