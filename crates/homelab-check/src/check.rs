//! `check` as a list of checkers: each looks at the repository and adds findings. The binary picks the
//! list (`--fast` keeps only the fast ones); other crates plug in their own [`Checker`] (e.g. secret scanning).

use std::path::Path;

use homelab_kustomize::{LoadRestrictor, Options, build_dir};

use crate::finding::{Finding, Report, SchemaSummary, Severity};
use crate::flux;
use crate::repo::Repo;
use crate::schema::{MissingSchema, SchemaOptions, Validator, Verdict};
use homelab_sops::detect::{PathRules, is_sops_content};

/// Settings of one `check` run.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The restrictor for plain `kustomize build` of each directory (Flux builds always use None).
    pub load_restrictor: LoadRestrictor,
    pub schema: SchemaOptions,
}

/// What every checker sees.
pub struct Context<'a> {
    pub repo: &'a Repo,
    pub opts: &'a CheckOptions,
}

/// One check.
pub trait Checker: Send + Sync {
    /// Short id used in findings (`kustomize`, `schema`, …).
    fn id(&self) -> &'static str;
    /// Part of the pre-commit subset (`check --fast`).
    fn fast(&self) -> bool;
    fn run(&self, cx: &Context<'_>, report: &mut Report);
}

/// The checkers of this crate, in run order.
pub fn default_checkers() -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(ConfigCheck),
        Box::new(SopsCheck),
        Box::new(PlaintextSecretCheck),
        Box::new(KustomizeCheck),
        Box::new(FluxCheck),
    ]
}

/// Runs `checkers` (only the fast ones when `fast`) over the repository at `root`.
pub fn run(
    root: &Path,
    opts: &CheckOptions,
    checkers: &[Box<dyn Checker>],
    fast: bool,
) -> std::io::Result<Report> {
    let repo = Repo::open(root)?;
    let cx = Context { repo: &repo, opts };
    let mut report = Report {
        files: repo.files.len(),
        ..Report::default()
    };
    if repo.flux_tree.is_none() {
        report
            .notes
            .push("no Flux tree (kubernetes/) in this repository: manifest checks skipped".into());
    }
    for c in checkers.iter().filter(|c| !fast || c.fast()) {
        c.run(&cx, &mut report);
    }
    report.normalize();
    Ok(report)
}

/// homelab.yaml validates and is formatted (`homelabctl fmt --check`).
pub struct ConfigCheck;
impl Checker for ConfigCheck {
    fn id(&self) -> &'static str {
        "config"
    }
    fn fast(&self) -> bool {
        true
    }
    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        let path = cx.repo.root.join("homelab.yaml");
        let Ok(source) = std::fs::read_to_string(&path) else {
            return;
        };
        if let Ok(formatted) = homelab_config::format::format(&source)
            && formatted != source
        {
            report.findings.push(
                Finding::error(
                    self.id(),
                    "homelab.yaml",
                    0,
                    "homelab.yaml is not in the canonical layout",
                )
                .with_hint("run: homelabctl fmt"),
            );
        }
        for d in homelab_config::diagnostics(&source, Some(&cx.repo.root)) {
            let line = d.span.map(|s| s.line).unwrap_or(0);
            let msg = if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            };
            let mut f = match d.severity {
                homelab_config::Severity::Error => {
                    Finding::error(self.id(), "homelab.yaml", line, msg)
                }
                homelab_config::Severity::Warning => {
                    Finding::warning(self.id(), "homelab.yaml", line, msg)
                }
            };
            if let Some(h) = d.hint {
                f = f.with_hint(h);
            }
            report.findings.push(f);
        }
    }
}

/// Files matched by a `.sops.yaml` creation rule are encrypted.
pub struct SopsCheck;
impl Checker for SopsCheck {
    fn id(&self) -> &'static str {
        "sops"
    }
    fn fast(&self) -> bool {
        true
    }
    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        let Ok(text) = std::fs::read_to_string(cx.repo.root.join(".sops.yaml")) else {
            return;
        };
        let rules = match PathRules::parse(&text, std::path::Path::new(".sops.yaml")) {
            Ok(r) => r,
            Err(e) => {
                report
                    .findings
                    .push(Finding::error(self.id(), ".sops.yaml", 0, e.to_string()));
                return;
            }
        };
        for f in &cx.repo.files {
            if f.rel == ".sops.yaml" || !rules.covers(&f.rel) {
                continue;
            }
            let encrypted = std::fs::read(&f.abs)
                .map(|b| is_sops_content(&b))
                .unwrap_or(false);
            if !encrypted {
                report.findings.push(
                    Finding::error(
                        self.id(),
                        &f.rel,
                        0,
                        "matched by a .sops.yaml creation rule but not SOPS-encrypted",
                    )
                    .with_hint(format!(
                        "encrypt it: homelabctl sops encrypt --in-place {}",
                        f.rel
                    )),
                );
            }
        }
    }
}

/// No plaintext Secret (and no unreadable YAML) under the Flux tree.
pub struct PlaintextSecretCheck;
impl Checker for PlaintextSecretCheck {
    fn id(&self) -> &'static str {
        "secret"
    }
    fn fast(&self) -> bool {
        true
    }
    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        use homelab_kustomize::yaml::Value;
        for f in cx.repo.tree_files() {
            match &f.yaml {
                Some(Err(e)) => report.findings.push(Finding::error(
                    "yaml",
                    &f.rel,
                    e.line,
                    format!("invalid YAML: {}", e.message),
                )),
                Some(Ok(docs)) => {
                    for d in docs {
                        let Some(m) = d.value.as_map() else { continue };
                        if m.get("kind").and_then(Value::as_str) != Some("Secret")
                            || m.contains_key("sops")
                        {
                            continue;
                        }
                        let has_data = ["data", "stringData"].iter().any(|k| {
                            m.get(*k)
                                .and_then(Value::as_map)
                                .is_some_and(|d| !d.is_empty())
                        });
                        if has_data {
                            let name = d
                                .value
                                .get_path(&["metadata", "name"])
                                .and_then(Value::as_str)
                                .unwrap_or("?");
                            report.findings.push(
                                Finding::error(self.id(), &f.rel, d.line, format!("Secret/{name} is not encrypted"))
                                    .with_hint("encrypt it with SOPS (homelabctl sops encrypt) before committing"),
                            );
                        }
                    }
                }
                None => {}
            }
        }
    }
}

fn kustomization_dirs(repo: &Repo) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = repo
        .tree_files()
        .filter(|f| {
            homelab_kustomize::kustomization::FILE_NAMES
                .iter()
                .any(|n| f.rel.rsplit('/').next() == Some(n))
        })
        .filter_map(|f| f.abs.parent().map(Path::to_path_buf))
        .collect();
    dirs.dedup();
    dirs
}

fn kustomization_file_rel(repo: &Repo, dir: &Path) -> String {
    homelab_kustomize::kustomization::find_file(dir)
        .map(|f| repo.rel(&f))
        .unwrap_or_else(|_| repo.rel(dir))
}

/// Every kustomization directory in the Flux tree builds (`kustomize build DIR`).
pub struct KustomizeCheck;
impl Checker for KustomizeCheck {
    fn id(&self) -> &'static str {
        "kustomize"
    }
    fn fast(&self) -> bool {
        true
    }
    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        let opts = Options {
            load_restrictor: cx.opts.load_restrictor,
        };
        let dirs = kustomization_dirs(cx.repo);
        let results = parallel_map(&dirs, |d| {
            build_dir(d, &opts).and_then(|o| o.to_yaml().map(|_| ()))
        });
        for (dir, res) in dirs.iter().zip(results) {
            if let Err(e) = res {
                report.findings.push(Finding::error(
                    self.id(),
                    kustomization_file_rel(cx.repo, dir),
                    0,
                    relative_message(cx.repo, &e.to_string()),
                ));
            }
        }
    }
}

/// Each Flux Kustomization builds like kustomize-controller, and every rendered object validates against
/// its schema (without Flux Kustomizations: the plain build of every kustomization directory).
pub struct FluxCheck;
impl Checker for FluxCheck {
    fn id(&self) -> &'static str {
        "flux"
    }
    fn fast(&self) -> bool {
        false
    }
    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        if cx.repo.flux_tree.is_none() {
            return;
        }
        let validator = Validator::new(cx.opts.schema.clone());
        let fks = flux::discover(cx.repo);
        let mut outputs: Vec<homelab_kustomize::Output> = Vec::new();
        if fks.is_empty() {
            let dirs = kustomization_dirs(cx.repo);
            let opts = Options {
                load_restrictor: cx.opts.load_restrictor,
            };
            outputs.extend(
                parallel_map(&dirs, |d| build_dir(d, &opts))
                    .into_iter()
                    .filter_map(Result::ok),
            );
        } else {
            let results = parallel_map(&fks, |fk| flux::build(cx.repo, fk));
            for (fk, res) in fks.iter().zip(results) {
                match res {
                    Ok(b) => {
                        for n in b.notes {
                            report.findings.push(Finding::warning(
                                self.id(),
                                &fk.file,
                                fk.line,
                                format!("Kustomization/{}: {n}", fk.name),
                            ));
                        }
                        outputs.push(b.output);
                    }
                    Err(e) => report.findings.push(
                        Finding::error(
                            self.id(),
                            &fk.file,
                            fk.line,
                            format!(
                                "Kustomization/{} does not build: {}",
                                fk.name,
                                relative_message(cx.repo, &e.to_string())
                            ),
                        )
                        .with_hint(format!(
                            "reproduce with: homelabctl build --flux {}",
                            fk.name
                        )),
                    ),
                }
            }
        }
        let objects: Vec<&homelab_kustomize::Resource> =
            outputs.iter().flat_map(|o| o.resources.iter()).collect();
        let json: Vec<serde_json::Value> = parallel_map(&objects, |r| {
            homelab_kustomize::yaml::Value::Map(r.obj.clone()).to_json()
        });
        let origin = |r: &homelab_kustomize::Resource| match &r.origin {
            Some((p, l)) => (cx.repo.rel(p), *l),
            None => ("(generated)".to_string(), 0),
        };
        // The tree's own CRDs first, so that the objects of those kinds validate against them.
        for (r, obj) in objects.iter().zip(&json) {
            if r.kind() == "CustomResourceDefinition"
                && r.api_version() == "apiextensions.k8s.io/v1"
                && let Err(e) = validator.add_crd(obj)
            {
                let (file, line) = origin(r);
                report
                    .findings
                    .push(Finding::warning("schema", &file, line, e));
            }
        }
        let verdicts = parallel_map(&json, |obj| validator.validate(obj));
        let mut summary = SchemaSummary::default();
        let mut sources = Sources::default();
        for (r, v) in objects.iter().zip(verdicts) {
            let (file, line) = origin(r);
            let what = format!("{}/{}", r.kind(), r.name());
            match &v {
                Verdict::Valid | Verdict::Invalid(_) => summary.validated += 1,
                Verdict::Missing => summary.missing += 1,
                Verdict::Skipped(_) => summary.skipped += 1,
                Verdict::SchemaError(_) => summary.unusable += 1,
            }
            match v {
                Verdict::Valid | Verdict::Skipped(_) => {}
                Verdict::Invalid(errors) => {
                    for e in errors.into_iter().take(5) {
                        let at = r
                            .origin
                            .as_ref()
                            .and_then(|(p, l)| sources.field_line(p, *l, &e))
                            .unwrap_or(line);
                        report.findings.push(Finding::error(
                            "schema",
                            &file,
                            at,
                            format!("{what}: {e}"),
                        ));
                    }
                }
                Verdict::SchemaError(e) => report.findings.push(Finding::error(
                    "schema",
                    &file,
                    line,
                    format!("{what}: unusable schema: {e}"),
                )),
                Verdict::Missing => {
                    let msg = format!("{what}: no schema for {} {}", r.api_version(), r.kind());
                    let hint = "add a --schema-location for this kind, or --missing-schemas ignore";
                    match cx.opts.schema.missing {
                        MissingSchema::Error => report
                            .findings
                            .push(Finding::error("schema", &file, line, msg).with_hint(hint)),
                        MissingSchema::Warn => report.findings.push(Finding {
                            severity: Severity::Warning,
                            ..Finding::error("schema", &file, line, msg).with_hint(hint)
                        }),
                        MissingSchema::Ignore => {}
                    }
                }
            }
        }
        report.schema = Some(summary);
    }
}

/// Source texts read once each, to point schema errors at the offending field's line.
#[derive(Default)]
struct Sources(std::collections::HashMap<std::path::PathBuf, Option<String>>);

impl Sources {
    /// The line of the field a schema error (`/spec/x: message`) is about, in the document starting at
    /// `doc_line` of `path`. For an unexpected property, the line of that property.
    fn field_line(&mut self, path: &Path, doc_line: usize, error: &str) -> Option<usize> {
        let text = self
            .0
            .entry(path.to_path_buf())
            .or_insert_with(|| std::fs::read_to_string(path).ok())
            .as_deref()?;
        let (pointer, message) = error.split_once(": ")?;
        let pointer = if pointer == "/" { "" } else { pointer };
        // "Additional properties are not allowed ('x' was unexpected)": point at `x` itself.
        let unexpected = message
            .strip_prefix("Additional properties are not allowed (")
            .and_then(|m| m.split('\'').nth(1));
        let full = match unexpected {
            Some(name) => format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1")),
            None => pointer.to_string(),
        };
        crate::locate::field_line(text, doc_line, &full)
            .or_else(|| crate::locate::field_line(text, doc_line, pointer))
    }
}

/// Error text with the repository's absolute path removed.
fn relative_message(repo: &Repo, msg: &str) -> String {
    let mut out = msg.to_string();
    for root in [
        std::fs::canonicalize(&repo.root).ok(),
        Some(repo.root.clone()),
    ]
    .into_iter()
    .flatten()
    {
        let prefix = format!("{}/", root.display());
        out = out.replace(&prefix, "");
    }
    out
}

/// Maps `f` over `items` on the machine's cores, keeping order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}
