//! Manifest schema validation in the manner of kubeconform. Schemas come, in this order, from
//! kubeconform-style location templates (`{{.ResourceKind}}{{.KindSuffix}}.json`,
//! `{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json`) and directories the user names, from the
//! `CustomResourceDefinition`s found in the checked tree itself (made strict the way kubeconform's
//! openapi2jsonschema does), and from the schemas built into the binary (`homelab-schemas`: Kubernetes
//! 1.35 local-strict with its `_definitions.json`, Flux, Kyverno and common CRDs). Each schema is compiled
//! once and cached. SOPS-encrypted objects are recognised and not validated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// What to do with an object whose schema is not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSchema {
    /// Report an error (kubeconform's default).
    Error,
    /// Report a warning.
    #[default]
    Warn,
    /// Say nothing (kubeconform's `-ignore-missing-schemas`).
    Ignore,
}

/// Where schemas come from and how strict validation is.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// kubeconform-style templates or directories, tried in order before anything else.
    pub locations: Vec<String>,
    /// After `locations` and the tree's own CRDs, use the schemas built into the binary.
    pub builtin: bool,
    /// `1.35.0`.
    pub kubernetes_version: String,
    /// Use the `-strict` variants (no unknown fields).
    pub strict: bool,
    pub missing: MissingSchema,
    /// Kinds (`Kind` or `group/version/Kind`) not to validate.
    pub skip: Vec<String>,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            locations: Vec::new(),
            builtin: true,
            kubernetes_version: "1.35.0".into(),
            strict: true,
            missing: MissingSchema::Warn,
            skip: Vec::new(),
        }
    }
}

/// The locations a schema directory (`--schema-dir`) stands for: kubeconform's Kubernetes layout
/// (`kubernetes/v1.35.0-local-strict/…`), the CRDs-catalog layout (`{group}/{kind}_{version}.json`), the
/// flat openapi2jsonschema layout (`crd-jsonschemas/*/{group}_{kind}_{version}.json`), and the directory
/// itself (kubeconform's plain directory lookup).
pub fn default_locations(schema_dir: &Path) -> Vec<String> {
    let d = schema_dir.display();
    let mut out = vec![
        format!(
            "{d}/kubernetes/{{{{.NormalizedKubernetesVersion}}}}-local{{{{.StrictSuffix}}}}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json"
        ),
        format!("{d}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"),
    ];
    for sub in ["flux", "flux-compat", "kyverno"] {
        out.push(format!(
            "{d}/crd-jsonschemas/{sub}/{{{{.Group}}}}_{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
        ));
    }
    out.push(d.to_string());
    out
}

/// The verdict on one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Valid,
    /// Messages (`/spec/replicas: "x" is not of type "integer"`).
    Invalid(Vec<String>),
    /// No schema found at any location.
    Missing,
    /// Not validated: SOPS-encrypted, or skipped by kind.
    Skipped(String),
    /// The schema file exists but cannot be used.
    SchemaError(String),
}

type Compiled = Result<Arc<jsonschema::Validator>, String>;

/// Where a schema was found.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    /// A name in the built-in store (`kubernetes/v1.35.0-local-strict/deployment-apps-v1.json`).
    Builtin(String),
    /// Derived from a CustomResourceDefinition of the checked tree.
    Derived(Arc<Value>),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Builtin(n) => format!("built-in {n}"),
            Source::Derived(_) => "schema derived from the tree's CustomResourceDefinition".into(),
        }
    }
}

/// Where `_definitions.json` of a Kubernetes schema lives: beside the file, or beside the built-in entry.
enum DefsHome {
    Dir(PathBuf),
    Builtin(String),
    None,
}

/// A validator with a cache of compiled schemas (one per apiVersion/kind).
pub struct Validator {
    opts: SchemaOptions,
    cache: Mutex<HashMap<(String, String), Option<Compiled>>>,
    defs: Arc<Mutex<HashMap<String, Arc<Value>>>>,
    derived: Mutex<HashMap<(String, String), Arc<Value>>>,
}

struct DefsRetriever {
    home: DefsHome,
    defs: Arc<Mutex<HashMap<String, Arc<Value>>>>,
}

impl jsonschema::Retrieve for DefsRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str();
        let name = path.rsplit('/').next().unwrap_or_default();
        if name != "_definitions.json" {
            return Err(format!("schema reference {uri} is not available offline").into());
        }
        let key = match &self.home {
            DefsHome::Dir(d) => d.join(name).display().to_string(),
            DefsHome::Builtin(prefix) => format!("{prefix}/{name}"),
            DefsHome::None => {
                return Err(format!("schema reference {uri} is not available offline").into());
            }
        };
        let mut cache = self.defs.lock().map_err(|_| "schema cache poisoned")?;
        if let Some(v) = cache.get(&key) {
            return Ok((**v).clone());
        }
        let bytes = match &self.home {
            DefsHome::Builtin(_) => {
                homelab_schemas::get(&key)?.ok_or_else(|| format!("built-in {key} is missing"))?
            }
            _ => std::fs::read(&key)?,
        };
        let v: Value = serde_json::from_slice(&bytes)?;
        cache.insert(key, Arc::new(v.clone()));
        Ok(v)
    }
}

impl Validator {
    pub fn new(opts: SchemaOptions) -> Self {
        Validator {
            opts,
            cache: Mutex::new(HashMap::new()),
            defs: Arc::new(Mutex::new(HashMap::new())),
            derived: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &SchemaOptions {
        &self.opts
    }

    /// Makes the schemas of a `CustomResourceDefinition` object available for its kinds (they are used
    /// after the user's locations and before the built-in schemas). Returns how many versions it added.
    pub fn add_crd(&self, crd: &Value) -> Result<usize, String> {
        let schemas = crd_schemas(crd)?;
        let n = schemas.len();
        let mut derived = self.derived.lock().map_err(|_| "schema cache poisoned")?;
        for (api_version, kind, schema) in schemas {
            derived.insert((api_version, kind), Arc::new(schema));
        }
        Ok(n)
    }

    fn expand(&self, template: &str, api_version: &str, kind: &str) -> String {
        let (group, version) = split_api_version(api_version);
        let kind_suffix = kind_suffix(group, version);
        let t = if template.ends_with(".json") {
            template.to_string()
        } else {
            format!(
                "{}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json",
                template.trim_end_matches('/')
            )
        };
        let mut out = t;
        for (k, v) in [
            (
                "NormalizedKubernetesVersion",
                format!("v{}", self.opts.kubernetes_version),
            ),
            (
                "StrictSuffix",
                if self.opts.strict {
                    "-strict".into()
                } else {
                    String::new()
                },
            ),
            ("ResourceKind", kind.to_lowercase()),
            ("ResourceAPIVersion", version.to_string()),
            ("Group", group.to_string()),
            ("KindSuffix", kind_suffix.clone()),
        ] {
            for form in [format!("{{{{.{k}}}}}"), format!("{{{{ .{k} }}}}")] {
                out = out.replace(&form, &v);
            }
        }
        out
    }

    fn find_schema(&self, api_version: &str, kind: &str) -> Option<Source> {
        for loc in &self.opts.locations {
            let mut candidates = vec![self.expand(loc, api_version, kind)];
            if !loc.ends_with(".json") {
                candidates.push(self.expand(
                    &format!(
                        "{}/{{{{.Group}}}}_{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
                        loc.trim_end_matches('/')
                    ),
                    api_version,
                    kind,
                ));
            }
            for c in candidates {
                let p = PathBuf::from(c);
                if p.is_file() {
                    return Some(Source::File(p));
                }
            }
        }
        if let Ok(derived) = self.derived.lock()
            && let Some(schema) = derived.get(&(api_version.to_string(), kind.to_string()))
        {
            return Some(Source::Derived(schema.clone()));
        }
        if self.opts.builtin {
            let (group, version) = split_api_version(api_version);
            let k8s = format!(
                "kubernetes/v{}-local{}/{}{}.json",
                self.opts.kubernetes_version,
                if self.opts.strict { "-strict" } else { "" },
                kind.to_lowercase(),
                kind_suffix(group, version)
            );
            let crd = format!("crds/{group}/{}_{version}.json", kind.to_lowercase());
            for name in [k8s, crd] {
                if homelab_schemas::contains(&name) {
                    return Some(Source::Builtin(name));
                }
            }
        }
        None
    }

    fn compile(&self, source: &Source) -> Compiled {
        let fail = |e: String| format!("{}: {e}", source.describe());
        let (schema, home) = match source {
            Source::File(path) => {
                let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
                let schema: Value =
                    serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (schema, DefsHome::Dir(dir))
            }
            Source::Builtin(name) => {
                let bytes = homelab_schemas::get(name)
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| fail("missing".into()))?;
                let schema: Value =
                    serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
                let prefix = name.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
                (schema, DefsHome::Builtin(prefix.to_string()))
            }
            Source::Derived(schema) => ((**schema).clone(), DefsHome::None),
        };
        let mut opts = jsonschema::options()
            .should_validate_formats(false)
            .with_retriever(DefsRetriever {
                home,
                defs: self.defs.clone(),
            });
        if schema.get("$schema").is_none() {
            opts = opts.with_draft(jsonschema::Draft::Draft4);
        }
        opts.build(&schema)
            .map(Arc::new)
            .map_err(|e| fail(e.to_string()))
    }

    fn validator_for(&self, api_version: &str, kind: &str) -> Option<Compiled> {
        let key = (api_version.to_string(), kind.to_string());
        if let Ok(cache) = self.cache.lock()
            && let Some(v) = cache.get(&key)
        {
            return v.clone();
        }
        let compiled = self
            .find_schema(api_version, kind)
            .map(|s| self.compile(&s));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, compiled.clone());
        }
        compiled
    }

    /// Validates one object (a Kubernetes manifest as JSON).
    pub fn validate(&self, obj: &Value) -> Verdict {
        if obj.get("sops").is_some() {
            return Verdict::Skipped("SOPS-encrypted".into());
        }
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() || api_version.is_empty() {
            return Verdict::Invalid(vec!["missing apiVersion or kind".into()]);
        }
        if self
            .opts
            .skip
            .iter()
            .any(|s| s == kind || *s == format!("{api_version}/{kind}"))
        {
            return Verdict::Skipped(format!("{kind} is skipped"));
        }
        match self.validator_for(api_version, kind) {
            None => Verdict::Missing,
            Some(Err(e)) => Verdict::SchemaError(e),
            Some(Ok(v)) => {
                let errors: Vec<String> = v
                    .iter_errors(obj)
                    .map(|e| {
                        let path = e.instance_path().to_string();
                        let at = if path.is_empty() {
                            "/".to_string()
                        } else {
                            path
                        };
                        format!("{at}: {e}")
                    })
                    .collect();
                if errors.is_empty() {
                    Verdict::Valid
                } else {
                    Verdict::Invalid(errors)
                }
            }
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// kubeconform's `{{.KindSuffix}}`: `-v1` for the core group, `-apps-v1` (first label of the group) else.
fn kind_suffix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("-{version}")
    } else {
        format!("-{}-{version}", group.split('.').next().unwrap_or(group))
    }
}

/// The JSON schemas a `CustomResourceDefinition` (apiextensions.k8s.io/v1) defines: for each entry of
/// `spec.versions[]` with `schema.openAPIV3Schema`, its `group/version`, its kind, and the schema made strict
/// the way kubeconform's openapi2jsonschema makes it (every object with `properties` below the root gets
/// `additionalProperties: false` unless it says otherwise); fields marked
/// `x-kubernetes-preserve-unknown-fields` stay open, and `nullable` fields accept null.
pub fn crd_schemas(crd: &Value) -> Result<Vec<(String, String, Value)>, String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("CustomResourceDefinition/{name} has no spec.group"))?;
    let kind = crd
        .pointer("/spec/names/kind")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("CustomResourceDefinition/{name} has no spec.names.kind"))?;
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("CustomResourceDefinition/{name} has no spec.versions"))?;
    let mut out = Vec::new();
    for v in versions {
        let (Some(version), Some(schema)) = (
            v.get("name").and_then(Value::as_str),
            v.pointer("/schema/openAPIV3Schema"),
        ) else {
            continue;
        };
        let mut schema = schema.clone();
        strictify(&mut schema, true);
        out.push((format!("{group}/{version}"), kind.to_string(), schema));
    }
    Ok(out)
}

fn strictify(node: &mut Value, root: bool) {
    match node {
        Value::Object(map) => {
            let open = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !root
                && !open
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            if map.get("nullable").and_then(Value::as_bool) == Some(true)
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), serde_json::json!([t, "null"]));
            }
            for (k, v) in map.iter_mut() {
                match (k.as_str(), v) {
                    // Maps of field name to schema: a field may be called `default` or `enum`.
                    ("properties" | "patternProperties" | "definitions", Value::Object(fields)) => {
                        fields.values_mut().for_each(|f| strictify(f, false));
                    }
                    // Data, not schemas.
                    ("enum" | "default" | "example", _) => {}
                    (_, v) => strictify(v, false),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strictify(v, false)),
        _ => {}
    }
}
