//! The `kustomization.yaml` file: finding it, reading it into typed fields, and refusing fields that this
//! implementation does not support (an error naming the field, never a silent difference).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::yaml::{Map, Value, parse_value};

/// The API version of a kustomization file (what `kustomize create` and `flux bootstrap` write).
pub const API_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
/// The kind of a kustomization file.
pub const KIND: &str = "Kustomization";

/// File names kustomize recognises, in its lookup order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A `patches`/`patchesJson6902` entry.
#[derive(Debug, Clone, Default)]
pub struct PatchEntry {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
}

/// A resource selector (`target`, `select`, `reject`); string fields are anchored regexes for patches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LabelEntry {
    pub pairs: Vec<(String, String)>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<crate::fieldspec::FieldSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageEntry {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GeneratorOptions {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct GeneratorArgs {
    pub name: String,
    pub namespace: Option<String>,
    pub behavior: Option<String>,
    pub files: Vec<String>,
    pub literals: Vec<String>,
    pub envs: Vec<String>,
    pub options: GeneratorOptions,
    pub secret_type: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ReplacementEntry {
    Path(String),
    Inline(Value),
}

#[derive(Debug, Clone, Default)]
pub struct SortOptions {
    pub fifo: bool,
    pub order_first: Option<Vec<String>>,
    pub order_last: Option<Vec<String>>,
}

/// A parsed kustomization (or Component).
#[derive(Debug, Clone, Default)]
pub struct Kustomization {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub is_component: bool,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub common_labels: Vec<(String, String)>,
    pub labels: Vec<LabelEntry>,
    pub common_annotations: Vec<(String, String)>,
    pub patches: Vec<PatchEntry>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<PatchEntry>,
    pub images: Vec<ImageEntry>,
    pub replicas: Vec<(String, i64)>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    pub replacements: Vec<ReplacementEntry>,
    pub sort_options: Option<SortOptions>,
}

const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "helmCharts",
        "render the chart with Flux HelmRelease instead",
    ),
    (
        "helmGlobals",
        "render the chart with Flux HelmRelease instead",
    ),
    (
        "helmChartInflationGenerator",
        "render the chart with Flux HelmRelease instead",
    ),
    ("vars", "deprecated in kustomize; use replacements"),
    ("openapi", "custom OpenAPI schemas are not supported"),
    ("crds", "custom CRD field specs are not supported"),
    (
        "configurations",
        "custom transformer configurations are not supported",
    ),
    ("transformers", "transformer plugins are not supported"),
    ("generators", "generator plugins are not supported"),
    ("validators", "validator plugins are not supported"),
    (
        "buildMetadata",
        "build metadata annotations are not supported",
    ),
    ("imageTags", "use images"),
];

/// Finds the kustomization file in `dir`.
pub fn find_file(dir: &Path) -> Result<PathBuf> {
    let found: Vec<PathBuf> = FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Err(Error::invalid(
            dir,
            "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory",
        )),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(Error::invalid(
            dir,
            "found multiple kustomization files; keep only one",
        )),
    }
}

/// Reads and checks the kustomization in `dir`.
pub fn load(dir: &Path) -> Result<Kustomization> {
    let file = find_file(dir)?;
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let value = parse_value(&text).map_err(|source| Error::Yaml {
        path: file.clone(),
        source,
    })?;
    from_value(&value, &file, dir)
}

/// Builds a [`Kustomization`] from its parsed YAML.
pub fn from_value(value: &Value, file: &Path, dir: &Path) -> Result<Kustomization> {
    let mut k = Kustomization {
        file: file.to_path_buf(),
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let map = match value {
        Value::Null => return Ok(k),
        Value::Map(m) => m,
        _ => return Err(Error::invalid(file, "a kustomization must be a mapping")),
    };
    let r = Reader { file };
    for (key, v) in map {
        match key.as_str() {
            "apiVersion" | "metadata" => {}
            "kind" => match v.as_str() {
                Some("Kustomization") | Some("") | None => {}
                Some("Component") => k.is_component = true,
                Some(other) => {
                    return Err(r.err(format!("kind {other:?} is not Kustomization or Component")));
                }
            },
            "resources" | "bases" => k.resources.extend(r.strings(key, v)?),
            "components" => k.components = r.strings(key, v)?,
            "namespace" => k.namespace = r.opt_string(key, v)?,
            "namePrefix" => k.name_prefix = r.opt_string(key, v)?,
            "nameSuffix" => k.name_suffix = r.opt_string(key, v)?,
            "commonLabels" => k.common_labels = r.string_map(key, v)?,
            "commonAnnotations" => k.common_annotations = r.string_map(key, v)?,
            "labels" => {
                for item in r.seq(key, v)? {
                    let m = r.map(key, item)?;
                    let mut e = LabelEntry::default();
                    for (f, fv) in m {
                        match f.as_str() {
                            "pairs" => e.pairs = r.string_map("labels.pairs", fv)?,
                            "includeSelectors" => {
                                e.include_selectors = r.bool("labels.includeSelectors", fv)?
                            }
                            "includeTemplates" => {
                                e.include_templates = r.bool("labels.includeTemplates", fv)?
                            }
                            "fields" => {
                                e.fields = crate::fieldspec::parse_list(fv).map_err(|m| r.err(m))?
                            }
                            other => return Err(r.unsupported(&format!("labels.{other}"))),
                        }
                    }
                    k.labels.push(e);
                }
            }
            "patches" => {
                for item in r.seq(key, v)? {
                    k.patches.push(r.patch(key, item)?);
                }
            }
            "patchesJson6902" => {
                for item in r.seq(key, v)? {
                    let p = r.patch(key, item)?;
                    if p.target.is_none() {
                        return Err(r.err("patchesJson6902 entries need a target".into()));
                    }
                    k.patches_json6902.push(p);
                }
            }
            "patchesStrategicMerge" => k.patches_strategic_merge = r.strings(key, v)?,
            "images" => {
                for item in r.seq(key, v)? {
                    let m = r.map(key, item)?;
                    let mut e = ImageEntry::default();
                    for (f, fv) in m {
                        match f.as_str() {
                            "name" => e.name = r.string("images.name", fv)?,
                            "newName" => e.new_name = r.opt_string("images.newName", fv)?,
                            "newTag" => e.new_tag = r.opt_scalar_string("images.newTag", fv)?,
                            "digest" => e.digest = r.opt_string("images.digest", fv)?,
                            other => return Err(r.unsupported(&format!("images.{other}"))),
                        }
                    }
                    k.images.push(e);
                }
            }
            "replicas" => {
                for item in r.seq(key, v)? {
                    let m = r.map(key, item)?;
                    let name = m
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let count = match m.get("count") {
                        Some(Value::Int(i)) => *i,
                        _ => {
                            return Err(
                                r.err(format!("replicas entry {name:?} needs an integer count"))
                            );
                        }
                    };
                    for f in m.keys() {
                        if f != "name" && f != "count" {
                            return Err(r.unsupported(&format!("replicas.{f}")));
                        }
                    }
                    k.replicas.push((name, count));
                }
            }
            "configMapGenerator" | "secretGenerator" => {
                let mut list = Vec::new();
                for item in r.seq(key, v)? {
                    list.push(r.generator(key, item)?);
                }
                if key == "configMapGenerator" {
                    k.config_map_generator = list;
                } else {
                    k.secret_generator = list;
                }
            }
            "generatorOptions" => k.generator_options = Some(r.gen_options(key, v)?),
            "replacements" => {
                for item in r.seq(key, v)? {
                    let m = r.map(key, item)?;
                    if let Some(p) = m.get("path") {
                        k.replacements
                            .push(ReplacementEntry::Path(r.string("replacements.path", p)?));
                    } else {
                        k.replacements.push(ReplacementEntry::Inline(item.clone()));
                    }
                }
            }
            "sortOptions" => {
                let m = r.map(key, v)?;
                let mut so = SortOptions::default();
                for (f, fv) in m {
                    match f.as_str() {
                        "order" => match fv.as_str() {
                            Some("fifo") => so.fifo = true,
                            Some("legacy") => so.fifo = false,
                            _ => {
                                return Err(
                                    r.err("sortOptions.order must be legacy or fifo".into())
                                );
                            }
                        },
                        "legacySortOptions" => {
                            for (lf, lv) in r.map(f, fv)? {
                                match lf.as_str() {
                                    "orderFirst" => so.order_first = Some(r.strings(lf, lv)?),
                                    "orderLast" => so.order_last = Some(r.strings(lf, lv)?),
                                    other => {
                                        return Err(r.unsupported(&format!(
                                            "sortOptions.legacySortOptions.{other}"
                                        )));
                                    }
                                }
                            }
                        }
                        other => return Err(r.unsupported(&format!("sortOptions.{other}"))),
                    }
                }
                k.sort_options = Some(so);
            }
            other => {
                if let Some((_, hint)) = UNSUPPORTED.iter().find(|(f, _)| *f == other) {
                    return Err(Error::Unsupported {
                        path: file.to_path_buf(),
                        field: other.to_string(),
                        hint: Some(hint.to_string()),
                    });
                }
                return Err(Error::Unsupported {
                    path: file.to_path_buf(),
                    field: other.to_string(),
                    hint: Some("unknown kustomization field".into()),
                });
            }
        }
    }
    Ok(k)
}

struct Reader<'a> {
    file: &'a Path,
}

impl Reader<'_> {
    fn err(&self, message: String) -> Error {
        Error::Invalid {
            path: self.file.to_path_buf(),
            message,
        }
    }
    fn unsupported(&self, field: &str) -> Error {
        Error::Unsupported {
            path: self.file.to_path_buf(),
            field: field.to_string(),
            hint: None,
        }
    }
    fn seq<'v>(&self, key: &str, v: &'v Value) -> Result<&'v [Value]> {
        match v {
            Value::Seq(s) => Ok(s),
            Value::Null => Ok(&[]),
            _ => Err(self.err(format!("`{key}` must be a list"))),
        }
    }
    fn map<'v>(&self, key: &str, v: &'v Value) -> Result<&'v Map> {
        v.as_map()
            .ok_or_else(|| self.err(format!("`{key}` entries must be mappings")))
    }
    fn string(&self, key: &str, v: &Value) -> Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("`{key}` must be a string")))
    }
    fn opt_string(&self, key: &str, v: &Value) -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            _ => self.string(key, v).map(Some),
        }
    }
    fn opt_scalar_string(&self, key: &str, v: &Value) -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(s.clone())),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => Ok(v.scalar_string()),
            _ => Err(self.err(format!("`{key}` must be a string"))),
        }
    }
    fn bool(&self, key: &str, v: &Value) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.err(format!("`{key}` must be true or false"))),
        }
    }
    fn strings(&self, key: &str, v: &Value) -> Result<Vec<String>> {
        self.seq(key, v)?
            .iter()
            .map(|i| self.string(key, i))
            .collect()
    }
    fn string_map(&self, key: &str, v: &Value) -> Result<Vec<(String, String)>> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Map(m) => m
                .iter()
                .map(|(k, val)| match val {
                    Value::Str(s) => Ok((k.clone(), s.clone())),
                    Value::Null => Ok((k.clone(), String::new())),
                    other => Err(self.err(format!(
                        "`{key}.{k}` must be a string, found a {} (quote it)",
                        other.type_name()
                    ))),
                })
                .collect(),
            _ => Err(self.err(format!("`{key}` must be a mapping of strings"))),
        }
    }
    fn patch(&self, key: &str, v: &Value) -> Result<PatchEntry> {
        let m = self.map(key, v)?;
        let mut p = PatchEntry::default();
        for (f, fv) in m {
            match f.as_str() {
                "path" => p.path = self.opt_string("patches.path", fv)?,
                "patch" => p.patch = self.opt_string("patches.patch", fv)?,
                "target" => p.target = Some(self.selector("patches.target", fv)?),
                "options" => {
                    for (o, ov) in self.map("patches.options", fv)? {
                        match o.as_str() {
                            "allowNameChange" | "allowKindChange" => {
                                if self.bool(o, ov)? {
                                    return Err(self.unsupported(&format!("patches.options.{o}")));
                                }
                            }
                            other => {
                                return Err(self.unsupported(&format!("patches.options.{other}")));
                            }
                        }
                    }
                }
                other => return Err(self.unsupported(&format!("{key}.{other}"))),
            }
        }
        if p.path.is_some() == p.patch.is_some() {
            return Err(self.err(format!(
                "each `{key}` entry needs exactly one of `path` or `patch`"
            )));
        }
        Ok(p)
    }
    pub(crate) fn selector(&self, key: &str, v: &Value) -> Result<Selector> {
        parse_selector(v).map_err(|f| match f {
            SelectorError::Unknown(field) => self.unsupported(&format!("{key}.{field}")),
            SelectorError::Shape(m) => self.err(format!("`{key}`: {m}")),
        })
    }
    fn gen_options(&self, key: &str, v: &Value) -> Result<GeneratorOptions> {
        let mut o = GeneratorOptions::default();
        for (f, fv) in self.map(key, v)? {
            match f.as_str() {
                "labels" => o.labels = self.string_map("generatorOptions.labels", fv)?,
                "annotations" => {
                    o.annotations = self.string_map("generatorOptions.annotations", fv)?
                }
                "disableNameSuffixHash" => o.disable_name_suffix_hash = Some(self.bool(f, fv)?),
                "immutable" => o.immutable = Some(self.bool(f, fv)?),
                other => return Err(self.unsupported(&format!("{key}.{other}"))),
            }
        }
        Ok(o)
    }
    fn generator(&self, key: &str, v: &Value) -> Result<GeneratorArgs> {
        let mut g = GeneratorArgs::default();
        for (f, fv) in self.map(key, v)? {
            match f.as_str() {
                "name" => g.name = self.string(&format!("{key}.name"), fv)?,
                "namespace" => g.namespace = self.opt_string(&format!("{key}.namespace"), fv)?,
                "behavior" => g.behavior = self.opt_string(&format!("{key}.behavior"), fv)?,
                "files" => g.files = self.strings(&format!("{key}.files"), fv)?,
                "literals" => g.literals = self.strings(&format!("{key}.literals"), fv)?,
                "envs" => g.envs.extend(self.strings(&format!("{key}.envs"), fv)?),
                "env" => g.envs.extend(self.opt_string(&format!("{key}.env"), fv)?),
                "options" => g.options = self.gen_options(&format!("{key}.options"), fv)?,
                "type" if key == "secretGenerator" => {
                    g.secret_type = self.opt_string("secretGenerator.type", fv)?
                }
                other => return Err(self.unsupported(&format!("{key}.{other}"))),
            }
        }
        Ok(g)
    }
}

pub(crate) enum SelectorError {
    Unknown(String),
    Shape(String),
}

/// Reads a selector mapping (`group`, `version`, `kind`, `name`, `namespace`, `labelSelector`,
/// `annotationSelector`).
pub(crate) fn parse_selector(v: &Value) -> Result<Selector, SelectorError> {
    let m = v
        .as_map()
        .ok_or_else(|| SelectorError::Shape("must be a mapping".into()))?;
    let mut s = Selector::default();
    for (f, fv) in m {
        let val = match fv {
            Value::Null => None,
            other => Some(
                other
                    .scalar_string()
                    .ok_or_else(|| SelectorError::Shape(format!("`{f}` must be a string")))?,
            ),
        };
        match f.as_str() {
            "group" => s.group = val,
            "version" => s.version = val,
            "kind" => s.kind = val,
            "name" => s.name = val,
            "namespace" => s.namespace = val,
            "labelSelector" => s.label_selector = val,
            "annotationSelector" => s.annotation_selector = val,
            other => return Err(SelectorError::Unknown(other.to_string())),
        }
    }
    Ok(s)
}
