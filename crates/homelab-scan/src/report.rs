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
        Format::Json => pretty(&json(findings)),
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

/// gitleaks' JSON report shape, with `Secret` and `Match` redacted.
pub fn json(findings: &[Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                let c = f.commit.as_deref();
                json!({
                    "RuleID": f.rule_id,
                    "Description": f.description,
                    "StartLine": f.start_line,
                    "EndLine": f.end_line,
                    "StartColumn": f.start_column,
                    "EndColumn": f.end_column,
                    "Match": f.redacted_match(),
                    "Secret": REDACTED,
                    "File": f.file,
                    "SymlinkFile": "",
                    "Commit": c.map_or("", |c| c.sha.as_str()),
                    "Entropy": f.entropy,
                    "Author": c.map_or("", |c| c.author.as_str()),
                    "Email": c.map_or("", |c| c.email.as_str()),
                    "Date": c.map_or("", |c| c.date.as_str()),
                    "Message": c.map_or("", |c| c.message.as_str()),
                    "Tags": f.tags,
                    "Fingerprint": f.fingerprint(),
                })
            })
            .collect(),
    )
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
