//! Reads YAML streams into [`Value`]s with go-yaml v3 semantics (what kyaml, and so kustomize, reads):
//! plain-scalar resolution, anchors/aliases (under go-yaml's expansion limit), `<<` merge keys, first-wins
//! duplicate keys.

use std::collections::HashMap;

use homelab_goyaml::alias::{AliasGuard, EXCESSIVE_ALIASING};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::resolve::resolve_plain;
use super::value::{Map, Value};

/// A YAML syntax or structure error with its 1-based position.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("line {line}, column {col}: {message}")]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

/// One document of a stream and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    pub line: usize,
}

/// Parses every document of `text`. Never panics on bad input.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        depth: 0,
        guard: AliasGuard::new(),
    };
    let mut docs = Vec::new();
    loop {
        let (ev, span) = b.next()?;
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let (ev, span) = b.next()?;
                let line = span.start.line();
                let value = match ev {
                    Event::DocumentEnd => Value::Null,
                    other => {
                        let v = b.node(other, span)?;
                        let (end, sp) = b.next()?;
                        if !matches!(end, Event::DocumentEnd) {
                            return Err(err_at(sp, "expected the end of the document"));
                        }
                        v
                    }
                };
                docs.push(Document { value, line });
            }
            Event::StreamStart | Event::Nothing => {}
            _ => return Err(err_at(span, "unexpected YAML event")),
        }
    }
    Ok(docs)
}

/// Parses a single-document YAML text (an empty text is `null`).
pub fn parse_value(text: &str) -> Result<Value, ParseError> {
    let mut docs = parse_documents(text)?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0).value),
        _ => Err(ParseError {
            message: "expected one YAML document, found several".into(),
            line: 1,
            col: 1,
        }),
    }
}

fn err_at(span: Span, msg: &str) -> ParseError {
    ParseError {
        message: msg.to_string(),
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    depth: usize,
    /// Refuses an alias before it is cloned when go-yaml would call the expansion excessive.
    guard: AliasGuard,
}

const MAX_DEPTH: usize = 512;

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), ParseError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => {
                self.guard.observe(&ev, &span).map_err(|at| ParseError {
                    message: EXCESSIVE_ALIASING.into(),
                    line: at.line,
                    col: at.column,
                })?;
                Ok((ev, span))
            }
            Some(Err(e)) => Err(ParseError {
                message: e.info().to_string(),
                line: e.marker().line(),
                col: e.marker().col() + 1,
            }),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Value, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err_at(span, "YAML nesting is too deep"));
        }
        let r = self.node_inner(ev, span);
        self.depth -= 1;
        r
    }

    fn node_inner(&mut self, ev: Event<'a>, span: Span) -> Result<Value, ParseError> {
        match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let v = scalar_value(&s, style, tag.as_deref());
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::Alias(id) => self
                .anchors
                .get(&id)
                .cloned()
                .ok_or_else(|| err_at(span, "unknown alias")),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    match ev {
                        Event::SequenceEnd => break,
                        Event::StreamEnd => return Err(err_at(sp, "unexpected end of stream")),
                        other => items.push(self.node(other, sp)?),
                    }
                }
                let v = Value::Seq(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                let mut merges: Vec<Value> = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    let key = match ev {
                        Event::MappingEnd => break,
                        Event::StreamEnd => return Err(err_at(sp, "unexpected end of stream")),
                        Event::Scalar(s, style, anchor, tag) => {
                            let is_merge =
                                style == ScalarStyle::Plain && s == "<<" && tag.is_none();
                            let kv = scalar_value(&s, style, tag.as_deref());
                            if anchor > 0 {
                                self.anchors.insert(anchor, kv.clone());
                            }
                            if is_merge {
                                let (vev, vsp) = self.next()?;
                                merges.push(self.node(vev, vsp)?);
                                continue;
                            }
                            match kv {
                                Value::Str(k) => k,
                                Value::Null if s.is_empty() || s == "~" || s == "null" => {
                                    return Err(err_at(
                                        sp,
                                        "a mapping key is null; kustomize needs string keys",
                                    ));
                                }
                                other => {
                                    return Err(err_at(
                                        sp,
                                        &format!(
                                            "mapping key {s:?} is a {}; kustomize needs string keys (quote it)",
                                            other.type_name()
                                        ),
                                    ));
                                }
                            }
                        }
                        Event::Alias(id) => match self.anchors.get(&id) {
                            Some(Value::Str(k)) => k.clone(),
                            _ => return Err(err_at(sp, "mapping key must be a string")),
                        },
                        _ => {
                            return Err(err_at(
                                sp,
                                "complex mapping keys are not supported (kustomize rejects them)",
                            ));
                        }
                    };
                    let (vev, vsp) = self.next()?;
                    let val = self.node(vev, vsp)?;
                    map.entry(key).or_insert(val);
                }
                for m in merges {
                    let sources = match m {
                        Value::Map(mm) => vec![mm],
                        Value::Seq(items) => items
                            .into_iter()
                            .filter_map(|i| match i {
                                Value::Map(mm) => Some(mm),
                                _ => None,
                            })
                            .collect(),
                        _ => return Err(err_at(span, "a `<<` merge value must be a mapping")),
                    };
                    for src in sources {
                        for (k, v) in src {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
                let v = Value::Map(map);
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                Ok(v)
            }
            _ => Err(err_at(span, "unexpected YAML event")),
        }
    }
}

fn scalar_value(s: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag {
        let core = t.handle == "tag:yaml.org,2002:" || t.handle == "!!";
        if core {
            return match t.suffix.as_str() {
                "str" | "binary" | "timestamp" => Value::Str(s.to_string()),
                "null" => Value::Null,
                _ => resolve_plain(s),
            };
        }
        return Value::Str(s.to_string());
    }
    if style == ScalarStyle::Plain {
        resolve_plain(s)
    } else {
        Value::Str(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_aliases_expand() {
        let v = parse_value("a: &A {p: 1}\nb: {<<: *A, q: 2}\nc: *A\n").unwrap_or(Value::Null);
        assert_eq!(v.get_path(&["b", "p"]), Some(&Value::Int(1)));
        assert_eq!(v.get_path(&["c", "p"]), Some(&Value::Int(1)));
    }

    #[test]
    fn an_alias_bomb_is_refused_at_its_line_before_it_is_expanded() {
        let text = format!("a: 1\n---\n{}", homelab_goyaml::alias::billion_laughs(30));
        let err = parse_documents(&text).expect_err("bomb");
        assert_eq!(err.message, "document contains excessive aliasing");
        assert_eq!(err.line, 7);
    }

    #[test]
    fn documents_report_their_start_line() {
        let docs = parse_documents("a: 1\n---\nb: 2\n").unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 3);
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let v = parse_value("a: '1'\nb: 1\n").unwrap_or(Value::Null);
        assert_eq!(v.get_path(&["a"]), Some(&Value::Str("1".into())));
        assert_eq!(v.get_path(&["b"]), Some(&Value::Int(1)));
    }
}
