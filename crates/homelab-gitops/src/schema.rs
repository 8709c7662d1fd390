//! Manifest schema validation in the manner of kubeconform: schema files found through location templates
//! (`{{.ResourceKind}}{{.KindSuffix}}.json`, `{{.Group}}_{{.ResourceKind}}_{{.ResourceAPIVersion}}.json`),
//! Kubernetes 1.35 local-strict schemas with their shared `_definitions.json`, CRD schemas, each compiled
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
    /// kubeconform-style templates or directories, tried in order.
    pub locations: Vec<String>,
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
            kubernetes_version: "1.35.0".into(),
            strict: true,
            missing: MissingSchema::Warn,
            skip: Vec::new(),
        }
    }
}

/// The default locations inside a schema directory laid out like `../shared/schemas`.
pub fn default_locations(schema_dir: &Path) -> Vec<String> {
    let d = schema_dir.display();
    vec![
        format!(
            "{d}/kubernetes/{{{{.NormalizedKubernetesVersion}}}}-local{{{{.StrictSuffix}}}}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json"
        ),
        format!(
            "{d}/crd-jsonschemas/flux/{{{{.Group}}}}_{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
        ),
        format!(
            "{d}/crd-jsonschemas/flux-compat/{{{{.Group}}}}_{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
        ),
        format!(
            "{d}/crd-jsonschemas/kyverno/{{{{.Group}}}}_{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
        ),
    ]
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

/// A validator with a cache of compiled schemas (one per apiVersion/kind).
pub struct Validator {
    opts: SchemaOptions,
    cache: Mutex<HashMap<(String, String), Option<Compiled>>>,
    defs: Arc<Mutex<HashMap<PathBuf, Arc<Value>>>>,
}

struct DefsRetriever {
    dir: PathBuf,
    defs: Arc<Mutex<HashMap<PathBuf, Arc<Value>>>>,
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
        let file = self.dir.join(name);
        let mut cache = self.defs.lock().map_err(|_| "schema cache poisoned")?;
        if let Some(v) = cache.get(&file) {
            return Ok((**v).clone());
        }
        let text = std::fs::read_to_string(&file)?;
        let v: Value = serde_json::from_str(&text)?;
        cache.insert(file, Arc::new(v.clone()));
        Ok(v)
    }
}

impl Validator {
    pub fn new(opts: SchemaOptions) -> Self {
        Validator {
            opts,
            cache: Mutex::new(HashMap::new()),
            defs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn options(&self) -> &SchemaOptions {
        &self.opts
    }

    fn expand(&self, template: &str, api_version: &str, kind: &str) -> String {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let kind_suffix = if group.is_empty() {
            format!("-{version}")
        } else {
            format!("-{}-{version}", group.split('.').next().unwrap_or(group))
        };
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

    fn find_schema(&self, api_version: &str, kind: &str) -> Option<PathBuf> {
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
                    return Some(p);
                }
            }
        }
        None
    }

    fn compile(&self, path: &Path) -> Compiled {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let schema: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut opts = jsonschema::options()
            .should_validate_formats(false)
            .with_retriever(DefsRetriever {
                dir,
                defs: self.defs.clone(),
            });
        if schema.get("$schema").is_none() {
            opts = opts.with_draft(jsonschema::Draft::Draft4);
        }
        opts.build(&schema)
            .map(Arc::new)
            .map_err(|e| format!("{}: {e}", path.display()))
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
            .map(|p| self.compile(&p));
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
