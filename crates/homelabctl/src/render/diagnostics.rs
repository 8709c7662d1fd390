//! Configuration diagnostics for people (file:line:col, the source line, a caret, the hint) or
//! as JSON for scripts.

use std::io::IsTerminal;

use homelab_config::{Diagnostic, Severity};

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Human-readable rendering of `diagnostics` for `file` whose text is `source`.
pub fn diagnostics_text(
    file: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    color: bool,
) -> String {
    let style = Style { color };
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::new();
    for d in diagnostics {
        let (label, code) = match d.severity {
            Severity::Error => ("error", "1;31"),
            Severity::Warning => ("warning", "1;33"),
        };
        out.push_str(&format!("{}: {}\n", style.paint(code, label), d.message));
        match d.span {
            Some(span) => {
                let number = span.line.to_string();
                let pad = " ".repeat(number.len());
                out.push_str(&format!(
                    "{pad}{} {file}:{}:{}\n",
                    style.paint("1;34", "-->"),
                    span.line,
                    span.column
                ));
                if let Some(text) = lines.get(span.line.saturating_sub(1)) {
                    let bar = style.paint("1;34", "|");
                    out.push_str(&format!(
                        "{pad} {bar}\n{} {bar} {text}\n",
                        style.paint("1;34", &number)
                    ));
                    let caret_pad: String = text
                        .chars()
                        .take(span.column.saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    out.push_str(&format!(
                        "{pad} {bar} {caret_pad}{}\n",
                        style.paint(code, "^")
                    ));
                }
                if let Some(hint) = &d.hint {
                    out.push_str(&format!("{pad} = {}: {hint}\n", style.paint("1", "help")));
                }
            }
            None => {
                out.push_str(&format!("  --> {file}\n"));
                if let Some(hint) = &d.hint {
                    out.push_str(&format!("  = {}: {hint}\n", style.paint("1", "help")));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// JSON rendering: `{"file": …, "valid": bool, "diagnostics": [...]}`.
pub fn diagnostics_json(file: &str, diagnostics: &[Diagnostic]) -> String {
    let valid = !diagnostics.iter().any(Diagnostic::is_error);
    let value = serde_json::json!({"file": file, "valid": valid, "diagnostics": diagnostics});
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Whether standard error is a terminal that wants colour (and NO_COLOR is unset).
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}
