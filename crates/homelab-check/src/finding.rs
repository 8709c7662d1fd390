//! Findings and the report: what a checker found, where (file and line), and the three renderings
//! (`text` grouped by file, `json`, `sarif` 2.1.0). Rendering returns strings; callers print.

use std::collections::BTreeMap;

use serde_json::json;

/// How bad a finding is. Errors make `check` exit 1; warnings are shown only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Path relative to the repository root, `/`-separated.
    pub file: String,
    /// 1-based line (0 when the whole file is meant).
    pub line: usize,
    pub severity: Severity,
    /// The checker's id (`kustomize`, `flux`, `schema`, `sops`, `secret`, `config`).
    pub check: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(
        check: &str,
        file: impl Into<String>,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            file: file.into(),
            line,
            severity: Severity::Error,
            check: check.to_string(),
            message: message.into(),
            hint: None,
        }
    }
    pub fn warning(
        check: &str,
        file: impl Into<String>,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(check, file, line, message)
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Everything `check` found plus notes (skipped checks, counts).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    /// The files `check` looked at (after `.gitignore`); 0 means it found nothing to check.
    pub files: usize,
    /// What schema validation covered, when it ran.
    pub schema: Option<SchemaSummary>,
}

/// How many rendered objects schema validation covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaSummary {
    /// Checked against a schema (valid or not).
    pub validated: usize,
    /// No schema found for their kind.
    pub missing: usize,
    /// Not validated on purpose (SOPS-encrypted, `--skip-kind`).
    pub skipped: usize,
    /// A schema was found but could not be compiled.
    pub unusable: usize,
}

impl SchemaSummary {
    fn line(&self) -> String {
        let mut s = format!(
            "{} object(s) validated against schemas, {} without a schema",
            self.validated, self.missing
        );
        if self.skipped > 0 {
            s.push_str(&format!(", {} skipped", self.skipped));
        }
        if self.unusable > 0 {
            s.push_str(&format!(", {} with an unusable schema", self.unusable));
        }
        s
    }
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
    /// Sorted, de-duplicated findings.
    pub fn normalize(&mut self) {
        self.findings.sort();
        self.findings.dedup();
    }
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Renders the report.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => {
            let v = json!({
                "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
                "notes": report.notes,
                "errors": report.errors(),
                "warnings": report.findings.len() - report.errors(),
                "files": report.files,
                "schema": report.schema.map(|s| json!({
                    "validated": s.validated, "missing": s.missing, "skipped": s.skipped, "unusable": s.unusable,
                })),
            });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Sarif => sarif(report),
    }
}

fn finding_json(f: &Finding) -> serde_json::Value {
    json!({
        "file": f.file, "line": f.line, "severity": f.severity.as_str(), "check": f.check,
        "message": f.message, "hint": f.hint,
    })
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_file.entry(&f.file).or_default().push(f);
    }
    for (file, list) in by_file {
        out.push_str(&format!("{file}\n"));
        for f in list {
            let loc = if f.line > 0 {
                format!("{}:", f.line)
            } else {
                "-:".to_string()
            };
            out.push_str(&format!(
                "  {loc} {}[{}] {}\n",
                f.severity.as_str(),
                f.check,
                f.message
            ));
            if let Some(h) = &f.hint {
                out.push_str(&format!("      help: {h}\n"));
            }
        }
    }
    let e = report.errors();
    let w = report.findings.len() - e;
    match &report.schema {
        Some(s) => out.push_str(&format!("{e} error(s), {w} warning(s); {}\n", s.line())),
        None => out.push_str(&format!("{e} error(s), {w} warning(s)\n")),
    }
    out
}

fn sarif(report: &Report) -> String {
    let mut rules: Vec<&str> = report.findings.iter().map(|f| f.check.as_str()).collect();
    rules.sort();
    rules.dedup();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut region = json!({});
            if f.line > 0 {
                region = json!({"startLine": f.line});
            }
            json!({
                "ruleId": f.check,
                "level": f.severity.as_str(),
                "message": {"text": match &f.hint { Some(h) => format!("{} ({h})", f.message), None => f.message.clone() }},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file}, "region": region}}],
            })
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "homelabctl check",
                "informationUri": "https://example.invalid/homelabctl",
                "rules": rules.iter().map(|r| json!({"id": r, "shortDescription": {"text": format!("homelabctl {r} check")}})).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
