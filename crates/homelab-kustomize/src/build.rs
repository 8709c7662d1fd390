//! The build: accumulate resources, run generators, apply components, run the builtin transformers in
//! kustomize's fixed order, and at the root add hash suffixes, fix name references and sort.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::generator::{self, Kind};
use crate::json6902;
use crate::kustomization::{self, Kustomization, PatchEntry, ReplacementEntry, Selector};
use crate::loader::{LoadRestrictor, Loader};
use crate::resource::Resource;
use crate::select::{effective_ns, matches_target};
use crate::smp::{self, Merged};
use crate::yaml::{Value, parse_documents, to_yaml};
use crate::{nameref, openapi, replacements, sort, transform};

/// Build options (the `kubectl kustomize` flags that matter).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub load_restrictor: LoadRestrictor,
}

/// The result of a build: resources in output order.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub resources: Vec<Resource>,
}

impl Output {
    /// The YAML stream `kubectl kustomize` prints.
    pub fn to_yaml(&self) -> Result<String> {
        let mut out = String::new();
        for (i, r) in self.resources.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&to_yaml(&Value::Map(r.obj.clone()))?);
        }
        Ok(out)
    }
}

/// Builds the kustomization in `dir`.
pub fn build_dir(dir: &Path, opts: &Options) -> Result<Output> {
    let k = kustomization::load(dir)?;
    build_kustomization(&k, opts)
}

/// Builds an already-loaded kustomization (Flux emulation edits it in memory first).
pub fn build_kustomization(k: &Kustomization, opts: &Options) -> Result<Output> {
    let mut stack = vec![canonical(&k.dir)?];
    let mut ra = accumulate_target(k, Vec::new(), opts, &mut stack)?;
    for r in ra.iter_mut() {
        if r.generated.as_ref().is_some_and(|g| g.hash_suffix) {
            let name = format!("{}-{}", r.name(), generator::hash(r));
            r.set_name(&name);
        }
    }
    nameref::fix(&mut ra).map_err(Error::Build)?;
    sort::sort(&mut ra, k.sort_options.as_ref());
    Ok(Output { resources: ra })
}

fn canonical(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).map_err(|source| Error::Io {
        path: p.to_path_buf(),
        source,
    })
}

fn accumulate_target(
    k: &Kustomization,
    mut ra: Vec<Resource>,
    opts: &Options,
    stack: &mut Vec<PathBuf>,
) -> Result<Vec<Resource>> {
    let loader = Loader::new(&k.dir, &k.file, opts.load_restrictor)?;
    for entry in &k.resources {
        accumulate_resource(k, entry, &loader, &mut ra, opts, stack)?;
    }
    for (kind, list) in [
        (Kind::ConfigMap, &k.config_map_generator),
        (Kind::Secret, &k.secret_generator),
    ] {
        for g in list {
            let r = generator::generate(kind, g, k.generator_options.as_ref(), &loader)?;
            generator::absorb(
                &mut ra,
                r,
                g.behavior.as_deref().unwrap_or("create"),
                &k.file,
            )?;
        }
    }
    for c in &k.components {
        let dir = k.dir.join(c);
        if !dir.is_dir() {
            return Err(Error::invalid(
                &k.file,
                format!("component {c:?} is not a directory"),
            ));
        }
        let comp = kustomization::load(&dir)?;
        if !comp.is_component {
            return Err(Error::invalid(
                &comp.file,
                format!(
                    "{c:?} is listed under components but is not a Component (kind: Component)"
                ),
            ));
        }
        let canon = canonical(&dir)?;
        if stack.contains(&canon) {
            return Err(Error::invalid(
                &k.file,
                format!("cycle detected: {c:?} includes itself"),
            ));
        }
        stack.push(canon);
        ra = accumulate_target(&comp, ra, opts, stack)?;
        stack.pop();
    }
    run_transformers(k, &loader, &mut ra)?;
    Ok(ra)
}

fn is_remote(entry: &str) -> bool {
    entry.contains("://") || entry.starts_with("github.com/") || entry.starts_with("git@")
}

fn accumulate_resource(
    k: &Kustomization,
    entry: &str,
    loader: &Loader,
    ra: &mut Vec<Resource>,
    opts: &Options,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    if is_remote(entry) {
        return Err(Error::Unsupported {
            path: k.file.clone(),
            field: format!("resources: {entry}"),
            hint: Some(
                "remote resources are not supported; vendor them into the repository".into(),
            ),
        });
    }
    let p = k.dir.join(entry);
    if p.is_dir() {
        let canon = canonical(&p)?;
        if stack.contains(&canon) {
            return Err(Error::invalid(
                &k.file,
                format!("cycle detected: {entry:?} includes itself"),
            ));
        }
        let sub = kustomization::load(&p)?;
        if sub.is_component {
            return Err(Error::invalid(
                &sub.file,
                format!("{entry:?} is a Component; list it under components, not resources"),
            ));
        }
        stack.push(canon);
        let sub_ra = accumulate_target(&sub, Vec::new(), opts, stack)?;
        stack.pop();
        for r in sub_ra {
            append(ra, r, &k.file)?;
        }
        return Ok(());
    }
    let (path, text) = loader.read_text(entry)?;
    for r in resources_from_text(&text, &path)? {
        append(ra, r, &k.file)?;
    }
    Ok(())
}

/// Parses a manifest file into resources (`List` kinds are expanded, empty documents skipped).
pub fn resources_from_text(text: &str, path: &Path) -> Result<Vec<Resource>> {
    let docs = parse_documents(text).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for d in docs {
        let start = out.len();
        push_object(d.value, path, &mut out)?;
        for r in &mut out[start..] {
            r.origin = Some((path.to_path_buf(), d.line));
        }
    }
    Ok(out)
}

fn push_object(v: Value, path: &Path, out: &mut Vec<Resource>) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Map(m) => {
            if m.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && let Some(Value::Seq(items)) = m.get("items")
            {
                for i in items.clone() {
                    push_object(i, path, out)?;
                }
                return Ok(());
            }
            let r = Resource::new(m);
            if r.kind().is_empty() {
                return Err(Error::invalid(path, "a resource has no `kind`"));
            }
            if r.name().is_empty() {
                return Err(Error::invalid(
                    path,
                    format!("a {} has no metadata.name", r.kind()),
                ));
            }
            out.push(r);
            Ok(())
        }
        other => Err(Error::invalid(
            path,
            format!("expected a resource mapping, found a {}", other.type_name()),
        )),
    }
}

fn append(ra: &mut Vec<Resource>, r: Resource, file: &Path) -> Result<()> {
    let dup = ra.iter().any(|x| {
        x.kind() == r.kind()
            && x.group() == r.group()
            && x.name() == r.name()
            && effective_ns(x.namespace()) == effective_ns(r.namespace())
    });
    if dup {
        return Err(Error::invalid(
            file,
            format!(
                "may not add resource with an already registered id: {}",
                r.describe()
            ),
        ));
    }
    ra.push(r);
    Ok(())
}

fn run_transformers(k: &Kustomization, loader: &Loader, ra: &mut Vec<Resource>) -> Result<()> {
    let build_err = |m: String| Error::invalid(&k.file, m);
    for entry in &k.patches_strategic_merge {
        let content = if !entry.contains('\n') && loader.resolve_file(entry).is_ok() {
            loader.read_text(entry)?.1
        } else {
            entry.clone()
        };
        apply_patch(ra, &content, None, &k.file, false)?;
    }
    for p in &k.patches {
        let content = patch_content(p, loader)?;
        apply_patch(ra, &content, p.target.as_ref(), &k.file, false)?;
    }
    if let Some(ns) = k.namespace.as_deref().filter(|n| !n.is_empty()) {
        transform::namespace(ra, ns);
    }
    let prefix = k.name_prefix.as_deref().unwrap_or("");
    let suffix = k.name_suffix.as_deref().unwrap_or("");
    if !prefix.is_empty() || !suffix.is_empty() {
        transform::prefix_suffix(ra, prefix, suffix);
    }
    transform::common_labels(ra, &k.common_labels);
    for l in &k.labels {
        transform::labels(ra, l);
    }
    transform::annotations(ra, &k.common_annotations);
    for p in &k.patches_json6902 {
        let content = patch_content(p, loader)?;
        apply_patch(ra, &content, p.target.as_ref(), &k.file, true)?;
    }
    transform::replicas(ra, &k.replicas).map_err(build_err)?;
    transform::images(ra, &k.images);
    for entry in &k.replacements {
        let list = match entry {
            ReplacementEntry::Inline(v) => vec![v.clone()],
            ReplacementEntry::Path(p) => {
                let (path, text) = loader.read_text(p)?;
                let docs = parse_documents(&text).map_err(|source| Error::Yaml {
                    path: path.clone(),
                    source,
                })?;
                let mut list = Vec::new();
                for d in docs {
                    match d.value {
                        Value::Seq(items) => list.extend(items),
                        Value::Null => {}
                        v => list.push(v),
                    }
                }
                list
            }
        };
        for repl in &list {
            replacements::apply(ra, repl)
                .map_err(|m| Error::invalid(&k.file, format!("replacements: {m}")))?;
        }
    }
    Ok(())
}

fn patch_content(p: &PatchEntry, loader: &Loader) -> Result<String> {
    match (&p.patch, &p.path) {
        (Some(inline), _) => Ok(inline.clone()),
        (None, Some(path)) => Ok(loader.read_text(path)?.1),
        (None, None) => Ok(String::new()),
    }
}

/// Applies one patch (SMP documents or a JSON 6902 list) to the accumulated resources.
fn apply_patch(
    ra: &mut Vec<Resource>,
    content: &str,
    target: Option<&Selector>,
    file: &Path,
    json_only: bool,
) -> Result<()> {
    let docs = parse_documents(content).map_err(|source| Error::Yaml {
        path: file.to_path_buf(),
        source,
    })?;
    let docs: Vec<Value> = docs
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect();
    let is_json = matches!(docs.as_slice(), [Value::Seq(_)]);
    if json_only && !is_json {
        return Err(Error::invalid(
            file,
            "patchesJson6902 content must be a list of JSON patch operations",
        ));
    }
    if is_json {
        let ops = docs[0].as_seq().cloned().unwrap_or_default();
        let target =
            target.ok_or_else(|| Error::invalid(file, "a JSON 6902 patch needs a `target`"))?;
        for r in ra.iter_mut() {
            if !matches_target(r, target).map_err(|m| Error::invalid(file, m))? {
                continue;
            }
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            let res = json6902::apply(&mut obj, &ops);
            if let Value::Map(m) = obj {
                r.obj = m;
            }
            res.map_err(|m| Error::invalid(file, format!("JSON patch on {}: {m}", r.describe())))?;
        }
        return Ok(());
    }
    for patch in docs {
        let Value::Map(pm) = &patch else {
            return Err(Error::invalid(
                file,
                "a strategic merge patch must be a mapping",
            ));
        };
        let targets: Vec<usize> = match target {
            Some(t) => {
                let mut v = Vec::new();
                for (i, r) in ra.iter().enumerate() {
                    if matches_target(r, t).map_err(|m| Error::invalid(file, m))? {
                        v.push(i);
                    }
                }
                v
            }
            None => {
                let pr = Resource::new(pm.clone());
                let (pg, pv) = pr.group_version();
                let found: Vec<usize> = ra
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        let (g, v) = r.group_version();
                        r.kind() == pr.kind()
                            && (pr.api_version().is_empty() || (g == pg && v == pv))
                            && r.all_names().contains(&pr.name())
                            && effective_ns(r.namespace()) == effective_ns(pr.namespace())
                    })
                    .map(|(i, _)| i)
                    .collect();
                if found.is_empty() {
                    return Err(Error::invalid(
                        file,
                        format!(
                            "no matches for Id {} in the patch target list; check the patch's kind, name and namespace",
                            pr.describe()
                        ),
                    ));
                }
                found
            }
        };
        let mut deleted = Vec::new();
        for i in targets {
            let r = &mut ra[i];
            let mut p = pm.clone();
            if target.is_some() {
                let md = crate::yaml::value::child_map(&mut p, "metadata");
                md.insert("name".into(), Value::Str(r.name().to_string()));
                if !r.namespace().is_empty() {
                    md.insert("namespace".into(), Value::Str(r.namespace().to_string()));
                }
                p.insert("kind".into(), Value::Str(r.kind().to_string()));
                p.insert("apiVersion".into(), Value::Str(r.api_version().to_string()));
            }
            let def = openapi::def_for(r.api_version(), r.kind());
            let mut obj = Value::Map(std::mem::take(&mut r.obj));
            let res = smp::merge(&mut obj, &Value::Map(p), def);
            if let Value::Map(m) = obj {
                r.obj = m;
            }
            match res
                .map_err(|m| Error::invalid(file, format!("patch on {}: {m}", r.describe())))?
            {
                Merged::Delete => deleted.push(i),
                Merged::Keep => {}
            }
        }
        for i in deleted.into_iter().rev() {
            ra.remove(i);
        }
    }
    Ok(())
}
