//! `homelabctl fmt`: a canonical layout for homelab.yaml that keeps every comment and value.
//!
//! Nesting is re-indented to two spaces per level, with sequences indented under their key; trailing
//! whitespace, runs of blank lines and a missing final newline are fixed. Scalars, flow collections and
//! comments are kept byte for byte (moved only as a whole). The result is re-parsed and must mean exactly
//! what the input meant, or formatting is refused: a formatter must never change configuration.

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diagnostic::Span;
use crate::yaml::{self, Node, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("YAML syntax error at {}:{}: {message}", span.line, span.column)]
    Syntax { message: String, span: Span },
    #[error("line {line} is indented with a tab; YAML allows only spaces for indentation")]
    Tab { line: usize },
    #[error(
        "formatting would change the meaning of the file; it was left as it is (please report this)"
    )]
    WouldChangeMeaning,
}

/// Lines that belong to a value spanning several lines (block scalars, multi-line quoted or flow values):
/// they move with the line that starts the value and are never re-indented on their own.
fn continuation_lines(source: &str) -> Result<Vec<bool>, FormatError> {
    let line_count = source.lines().count();
    let mut continuation = vec![false; line_count + 2];
    let mut parser = Parser::new_from_str(source);
    let mut flow_depth = 0usize;
    let mut flow_start_line = 0usize;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| FormatError::Syntax {
            message: e.info().to_string(),
            span: Span {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
        })?;
        let (start, end) = (span.start.line(), span.end.line());
        let mut mark = |from: usize, to: usize| {
            for flag in continuation
                .iter_mut()
                .take(to.min(line_count) + 1)
                .skip(from + 1)
            {
                *flag = true;
            }
        };
        match event {
            Event::Scalar(_, style, ..) if end > start => {
                // A block scalar's span ends on the line after its last content line.
                let last = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                    end.saturating_sub(1)
                } else {
                    end
                };
                if flow_depth == 0 {
                    mark(start, last);
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..)
                if is_flow_start(source, span.start.index()) =>
            {
                if flow_depth == 0 {
                    flow_start_line = start;
                }
                flow_depth += 1;
            }
            Event::SequenceEnd | Event::MappingEnd
                if flow_depth > 0 && is_flow_end(source, span.start.index()) =>
            {
                flow_depth -= 1;
                if flow_depth == 0 {
                    mark(flow_start_line, end);
                }
            }
            _ => {}
        }
    }
    Ok(continuation)
}

fn char_at(source: &str, char_index: usize) -> Option<char> {
    source.chars().nth(char_index)
}

fn is_flow_start(source: &str, index: usize) -> bool {
    matches!(char_at(source, index), Some('[' | '{'))
}

fn is_flow_end(source: &str, index: usize) -> bool {
    matches!(char_at(source, index), Some(']' | '}'))
}

#[derive(Clone, Copy)]
struct Level {
    original: usize,
    formatted: usize,
    /// A compact sequence (`- item` at the same column as its key), given its own level.
    sequence: bool,
}

/// Formats `source`; returns it unchanged in meaning, or an error.
pub fn format(source: &str) -> Result<String, FormatError> {
    let source = source.replace("\r\n", "\n");
    for (i, line) in source.lines().enumerate() {
        if line
            .chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
            && !line.trim().is_empty()
        {
            return Err(FormatError::Tab { line: i + 1 });
        }
    }
    let continuation = continuation_lines(&source)?;
    // A file that does not read as a tree (duplicate keys, excessive aliasing) is reported as such, not
    // as a change of meaning the formatter would have made.
    yaml::parse(&source).map_err(|e| FormatError::Syntax {
        message: e.message,
        span: e.span,
    })?;
    let lines: Vec<&str> = source.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut stack: Vec<Level> = Vec::new();
    let mut delta: isize = 0;
    let mut previous_was_bare_key = false;
    let mut pending_comments: Vec<(usize, &str)> = Vec::new();
    let mut blank_pending = false;

    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim_end();
        let number = index + 1;
        if continuation.get(number).copied().unwrap_or(false) {
            flush(&mut out, &mut pending_comments, &mut blank_pending, None);
            out.push(shift(line, delta));
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            blank_pending = !out.is_empty() || !pending_comments.is_empty();
            continue;
        }
        if trimmed.starts_with('#') {
            if blank_pending && !pending_comments.is_empty() {
                pending_comments.push((usize::MAX, ""));
            } else if blank_pending {
                flush(&mut out, &mut pending_comments, &mut blank_pending, None);
                out.push(String::new());
            }
            blank_pending = false;
            pending_comments.push((line.len() - trimmed.len(), trimmed));
            continue;
        }
        if trimmed == "---" || trimmed == "..." || trimmed.starts_with('%') {
            flush(&mut out, &mut pending_comments, &mut blank_pending, Some(0));
            out.push(trimmed.to_string());
            stack.clear();
            continue;
        }
        let original = line.len() - trimmed.len();
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        while stack.last().is_some_and(|l| {
            l.original > original || (l.sequence && l.original == original && !is_item)
        }) {
            stack.pop();
        }
        let formatted = match stack.last().copied() {
            Some(top) if top.original == original => {
                if is_item && previous_was_bare_key && !top.sequence {
                    let level = Level {
                        original,
                        formatted: top.formatted + 2,
                        sequence: true,
                    };
                    stack.push(level);
                    level.formatted
                } else {
                    top.formatted
                }
            }
            Some(top) => {
                let level = Level {
                    original,
                    formatted: top.formatted + 2,
                    sequence: false,
                };
                stack.push(level);
                level.formatted
            }
            None => {
                stack.push(Level {
                    original,
                    formatted: 0,
                    sequence: false,
                });
                0
            }
        };
        flush(
            &mut out,
            &mut pending_comments,
            &mut blank_pending,
            Some(formatted),
        );
        let body = if is_item {
            normalize_item(trimmed)
        } else {
            trimmed.to_string()
        };
        delta = formatted as isize - original as isize;
        if is_item {
            // Content after `- ` starts two columns in; keep continuation lines relative to it.
            delta +=
                (trimmed.len() - trimmed.trim_start_matches('-').trim_start().len()) as isize - 2;
        }
        out.push(format!("{}{body}", " ".repeat(formatted)));
        previous_was_bare_key = is_bare_key(trimmed);
    }
    flush(&mut out, &mut pending_comments, &mut blank_pending, None);
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let mut formatted = out.join("\n");
    formatted.push('\n');
    if !same_meaning(&source, &formatted) {
        return Err(FormatError::WouldChangeMeaning);
    }
    Ok(formatted)
}

/// `-   value` → `- value`, so nested lines line up two columns after the dash.
fn normalize_item(trimmed: &str) -> String {
    let rest = trimmed[1..].trim_start();
    if rest.is_empty() {
        "-".to_string()
    } else {
        format!("- {rest}")
    }
}

fn is_bare_key(trimmed: &str) -> bool {
    let code = trimmed.split(" #").next().unwrap_or(trimmed).trim_end();
    code.ends_with(':') && !code.starts_with('#')
}

fn shift(line: &str, delta: isize) -> String {
    if line.trim().is_empty() {
        return String::new();
    }
    let indent = (line.len() - line.trim_start().len()) as isize;
    let target = (indent + delta).max(0) as usize;
    format!("{}{}", " ".repeat(target), line.trim_start())
}

/// Writes held comments at `indent` (the next content line's), or at their own indent when unknown.
fn flush(
    out: &mut Vec<String>,
    comments: &mut Vec<(usize, &str)>,
    blank: &mut bool,
    indent: Option<usize>,
) {
    for (own, text) in comments.drain(..) {
        if own == usize::MAX {
            out.push(String::new());
        } else {
            out.push(format!("{}{text}", " ".repeat(indent.unwrap_or(own))));
        }
    }
    if *blank && !out.is_empty() && out.last().is_some_and(|l| !l.is_empty()) {
        out.push(String::new());
    }
    *blank = false;
}

fn same_meaning(a: &str, b: &str) -> bool {
    match (yaml::parse(a), yaml::parse(b)) {
        (Ok(x), Ok(y)) => same(&x, &y),
        _ => false,
    }
}

fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => true,
        (
            Value::Scalar {
                text: x,
                quoted: qx,
            },
            Value::Scalar {
                text: y,
                quoted: qy,
            },
        ) => x == y && qx == qy,
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindents_to_two_spaces_and_indents_sequences_under_keys() {
        let input = "a:\n    b: 1\n    c:\n    - x\n    -   y: 1\n        z: 2\nd: [1,\n  2]\n";
        let want = "a:\n  b: 1\n  c:\n    - x\n    - y: 1\n      z: 2\nd: [1,\n  2]\n";
        assert_eq!(format(input).expect("formats"), want);
    }

    #[test]
    fn keeps_comments_block_scalars_and_is_idempotent() {
        let input = "# top\nkey:   # trailing\n      # inner\n      sub: |\n        line one\n          indented\n      other: 2   \n\n\n\nlast: true";
        let once = format(input).expect("formats");
        assert_eq!(
            once,
            "# top\nkey:   # trailing\n  # inner\n  sub: |\n    line one\n      indented\n  other: 2\n\nlast: true\n"
        );
        assert_eq!(format(&once).expect("formats"), once);
    }

    #[test]
    fn refuses_tabs_and_syntax_errors() {
        assert_eq!(format("a:\n\tb: 1\n"), Err(FormatError::Tab { line: 2 }));
        assert!(matches!(format("a: [1\n"), Err(FormatError::Syntax { .. })));
        let bomb = homelab_goyaml::alias::billion_laughs(40);
        assert!(matches!(
            format(&bomb),
            Err(FormatError::Syntax {
                span: Span { line: 5, .. },
                ..
            })
        ));
    }
}
