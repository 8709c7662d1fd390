//! Rendering findings as text, gitleaks-compatible JSON, or SARIF 2.1.0. Secrets are always redacted.

use serde_json::{Value, json};

use crate::config::Config;
use crate::finding::{Finding, REDACTED};

/// Output formats of `homelabctl scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Renders findings in `format`. `scanned` and `accepted` only appear in the text summary.
pub fn render(
    format: Format,
    findings: &[Finding],
    config: &Config,
    scanned: usize,
    accepted: usize,
) -> String {
    match format {
        Format::Text => text(findings, scanned, accepted),
        Format::Json => {
            let rows: Vec<JsonFinding<'_>> = findings.iter().map(JsonFinding::new).collect();
            let mut s = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
            s.push('\n');
            s
        }
        Format::Sarif => pretty(&sarif(findings, config)),
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

fn text(findings: &[Finding], scanned: usize, accepted: usize) -> String {
    let mut out = String::new();
    for f in findings {
        let location = if f.start_line > 0 {
            format!("{}:{}", f.file, f.start_line)
        } else {
            f.file.clone()
        };
        out.push_str(&format!("{location}: {} — {}\n", f.rule_id, f.description));
        if let Some(c) = &f.commit {
            let short = c.sha.get(..12).unwrap_or(&c.sha);
            let title = c.message.lines().next().unwrap_or_default();
            out.push_str(&format!(
                "    commit {short} by {} <{}> on {}: {title}\n",
                c.author, c.email, c.date
            ));
        }
        out.push_str(&format!("    {}\n", one_line(&f.redacted_match())));
        out.push_str(&format!("    fingerprint {}\n", f.fingerprint()));
    }
    let accepted = if accepted > 0 {
        format!(", {accepted} accepted by the baseline")
    } else {
        String::new()
    };
    match findings.len() {
        0 => out.push_str(&format!("no secrets found ({scanned} scanned{accepted})\n")),
        n => out.push_str(&format!(
            "{n} secret{} found ({scanned} scanned{accepted}); remove and rotate them, or accept with `homelabctl:allow` or a baseline entry\n",
            if n == 1 { "" } else { "s" }
        )),
    }
    out
}

/// Keeps a multi-line match readable: first line plus a count.
fn one_line(s: &str) -> String {
    let mut lines = s.lines();
    let first: String = lines.next().unwrap_or_default().chars().take(160).collect();
    let rest = lines.count();
    if rest > 0 {
        format!("{first} … (+{rest} lines)")
    } else {
        first
    }
}

/// One finding in gitleaks' JSON report shape (its field names and order), with `Secret` and `Match`
/// redacted. Serialised straight from this struct: building a JSON value tree first was most of the time
/// it took to print a history scan's report.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonFinding<'a> {
    #[serde(rename = "RuleID")]
    rule_id: &'a str,
    description: &'a str,
    start_line: usize,
    end_line: usize,
    start_column: usize,
    end_column: usize,
    r#match: String,
    secret: &'static str,
    file: &'a str,
    symlink_file: &'static str,
    commit: &'a str,
    /// Widened as gitleaks prints it (its entropy is a float64).
    entropy: f64,
    author: &'a str,
    email: &'a str,
    date: &'a str,
    message: &'a str,
    tags: &'a [String],
    fingerprint: String,
}

impl<'a> JsonFinding<'a> {
    fn new(f: &'a Finding) -> Self {
        let c = f.commit.as_deref();
        Self {
            rule_id: &f.rule_id,
            description: &f.description,
            start_line: f.start_line,
            end_line: f.end_line,
            start_column: f.start_column,
            end_column: f.end_column,
            r#match: f.redacted_match(),
            secret: REDACTED,
            file: &f.file,
            symlink_file: "",
            commit: c.map_or("", |c| c.sha.as_str()),
            entropy: f64::from(f.entropy),
            author: c.map_or("", |c| c.author.as_str()),
            email: c.map_or("", |c| c.email.as_str()),
            date: c.map_or("", |c| c.date.as_str()),
            message: c.map_or("", |c| c.message.as_str()),
            tags: &f.tags,
            fingerprint: f.fingerprint(),
        }
    }
}

/// A SARIF 2.1.0 log with one run; rules in configuration order.
pub fn sarif(findings: &[Finding], config: &Config) -> Value {
    let rules: Vec<Value> = config
        .rules()
        .iter()
        .map(|r| json!({"id": r.id, "name": r.id, "shortDescription": {"text": r.description}}))
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut location = json!({"artifactLocation": {"uri": f.file}});
            if f.start_line > 0 {
                location["region"] = json!({
                    "startLine": f.start_line,
                    "startColumn": f.start_column.max(1),
                    "endLine": f.end_line.max(f.start_line),
                    "endColumn": f.end_column.max(1),
                    "snippet": {"text": f.redacted_match()},
                });
            }
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": "error",
                "message": {"text": format!("{} has detected a secret in {}.", f.rule_id, f.file)},
                "locations": [{"physicalLocation": location}],
            });
            if let Some(c) = &f.commit {
                result["partialFingerprints"] = json!({
                    "commitSha": c.sha, "email": c.email, "author": c.author, "date": c.date, "commitMessage": c.message,
                });
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "homelabctl scan",
                "informationUri": "https://example.invalid/homelabctl",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}
