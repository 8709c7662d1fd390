//! A small YAML tree that remembers where every node came from, built from saphyr-parser events.
//!
//! serde-based readers stop at the first error; validation wants to see every problem at once with its
//! line and column, so the configuration is first read into this tree and then checked field by field.
//! Aliases are expanded under go-yaml's limit, so a "billion laughs" is refused at its line, unexpanded.

use std::collections::HashMap;

use homelab_goyaml::alias::{AliasGuard, EXCESSIVE_ALIASING};
use saphyr_parser::{Event, Parser, ScalarStyle, Span as ParserSpan};

use crate::diagnostic::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar and whether it was quoted (quoted scalars are always strings).
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Node {
    /// A short name for the node's kind, for "expected X, found Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar { quoted: true, .. } => "a string",
            Value::Scalar { text, .. } => scalar_kind(text),
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

fn scalar_kind(text: &str) -> &'static str {
    if matches!(text, "true" | "false" | "True" | "False" | "TRUE" | "FALSE") {
        "a boolean"
    } else if text.parse::<i64>().is_ok() {
        "an integer"
    } else if text.parse::<f64>().is_ok() {
        "a number"
    } else {
        "a string"
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

/// Parses the first document of `source`. An empty file yields a null node at 1:1.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| SyntaxError {
            message: e.info().to_string(),
            span: Span {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
        })?;
        if builder.push(event, span)? {
            break;
        }
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span { line: 1, column: 1 },
    }))
}

enum Open {
    Sequence(Node, Vec<Node>, usize),
    Mapping(Node, Vec<(Node, Node)>, Option<Node>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    /// Refuses an alias before it is cloned when go-yaml would call the expansion excessive.
    guard: AliasGuard,
}

impl Builder {
    /// Feeds one event; returns true once the first document is complete.
    fn push(&mut self, event: Event<'_>, span: ParserSpan) -> Result<bool, SyntaxError> {
        let at = Span {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        self.guard.observe(&event, &span).map_err(|e| SyntaxError {
            message: EXCESSIVE_ALIASING.into(),
            span: Span {
                line: e.line,
                column: e.column,
            },
        })?;
        let shell = |value| Node { value, span: at };
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let value =
                    if !quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar {
                            text: text.into_owned(),
                            quoted,
                        }
                    };
                self.complete(shell(value), anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack
                    .push(Open::Sequence(shell(Value::Null), Vec::new(), anchor));
                Ok(false)
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Open::Mapping(shell(Value::Null), Vec::new(), None, anchor));
                Ok(false)
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Open::Sequence(mut node, items, anchor)) => {
                    node.value = Value::Sequence(items);
                    self.complete(node, anchor)
                }
                _ => Err(SyntaxError {
                    message: "unbalanced sequence".into(),
                    span: at,
                }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Open::Mapping(mut node, entries, _, anchor)) => {
                    node.value = Value::Mapping(entries);
                    self.complete(node, anchor)
                }
                _ => Err(SyntaxError {
                    message: "unbalanced mapping".into(),
                    span: at,
                }),
            },
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut copy = node.clone();
                    copy.span = at;
                    self.complete(copy, 0)
                }
                None => Err(SyntaxError {
                    message: "alias refers to an unknown anchor".into(),
                    span: at,
                }),
            },
            Event::DocumentEnd => Ok(self.root.is_some()),
            _ => Ok(false),
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<bool, SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(false)
            }
            Some(Open::Sequence(_, items, _)) => {
                items.push(node);
                Ok(false)
            }
            Some(Open::Mapping(_, entries, pending, _)) => {
                match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        if let Some(text) = key.as_scalar()
                            && entries.iter().any(|(k, _)| k.as_scalar() == Some(text))
                        {
                            return Err(SyntaxError {
                                message: format!("duplicate key `{text}` in the same mapping"),
                                span: key.span,
                            });
                        }
                        entries.push((key, node));
                    }
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_line_and_column() {
        let root = parse("a:\n  b: 12\n").expect("valid yaml");
        let Value::Mapping(entries) = &root.value else {
            panic!("mapping expected")
        };
        let Value::Mapping(inner) = &entries[0].1.value else {
            panic!("mapping expected")
        };
        assert_eq!(inner[0].0.span, Span { line: 2, column: 3 });
        assert_eq!(inner[0].1.span, Span { line: 2, column: 6 });
    }

    #[test]
    fn duplicate_keys_are_a_syntax_error_with_position() {
        let err = parse("a: 1\na: 2\n").expect_err("duplicate");
        assert!(err.message.contains("duplicate key `a`"));
        assert_eq!(err.span, Span { line: 2, column: 1 });
    }

    #[test]
    fn an_alias_bomb_is_a_syntax_error_at_its_line() {
        let err = parse(&homelab_goyaml::alias::billion_laughs(40)).expect_err("bomb");
        assert_eq!(err.message, EXCESSIVE_ALIASING);
        assert_eq!(err.span.line, 5);
    }

    #[test]
    fn aliases_resolve_to_the_anchored_node() {
        let root = parse("a: &x {b: 1}\nc: *x\n").expect("valid");
        let Value::Mapping(entries) = &root.value else {
            panic!()
        };
        assert!(matches!(entries[1].1.value, Value::Mapping(_)));
    }
}
