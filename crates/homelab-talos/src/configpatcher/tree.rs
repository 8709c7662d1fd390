//! The YAML tree the configpatcher works on: mappings keep their order, scalars keep their text and the
//! type go-yaml v3 resolves them to, and every node remembers the file and line it came from, so a field a
//! patch introduced can be traced back to that patch.

use std::collections::HashMap;
use std::sync::Arc;

use homelab_goyaml::alias::AliasGuard;
use homelab_goyaml::plain::{is_base60_float, is_old_bool};
use homelab_goyaml::strconv::{is_yaml_style_float, parse_int, parse_uint};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a node was written: a file (or `homelab.yaml` for inline patches) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// The type a scalar resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Str,
    Int,
    Float,
    Bool,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Scalar(String, Tag),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

/// A node and its origin. Equality ignores origins.
#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub origin: Option<Origin>,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        match (&self.value, &other.value) {
            (Value::Null, Value::Null) => true,
            (Value::Scalar(a, at), Value::Scalar(b, bt)) => a == b && at == bt,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Seq(a), Value::Seq(b)) => a == b,
            _ => false,
        }
    }
}

impl Node {
    pub fn new(value: Value) -> Self {
        Self {
            value,
            origin: None,
        }
    }

    pub fn str(s: &str) -> Self {
        Self::new(Value::Scalar(s.to_string(), Tag::Str))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A node from a JSON value (numbers and booleans keep their type).
    pub fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        Node::new(match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Scalar(b.to_string(), Tag::Bool),
            J::Number(n) if n.is_f64() => Value::Scalar(n.to_string(), Tag::Float),
            J::Number(n) => Value::Scalar(n.to_string(), Tag::Int),
            J::String(s) => Value::Scalar(s.clone(), Tag::Str),
            J::Array(a) => Value::Seq(a.iter().map(Node::from_json).collect()),
            J::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        })
    }

    /// The node as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar(s, Tag::Bool) => J::Bool(s.eq_ignore_ascii_case("true")),
            Value::Scalar(s, Tag::Int) => {
                let plain: String = s.chars().filter(|&c| c != '_').collect();
                parse_int(&plain)
                    .map(J::from)
                    .or_else(|| parse_uint(&plain).map(J::from))
                    .unwrap_or_else(|| J::String(s.clone()))
            }
            Value::Scalar(s, Tag::Float) => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| J::String(s.clone()), J::Number),
            Value::Scalar(s, Tag::Str) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// Set the origin of this node and every node below it that has none.
    pub fn stamp(&mut self, origin: &Origin) {
        if self.origin.is_none() {
            self.origin = Some(origin.clone());
        }
        match &mut self.value {
            Value::Map(m) => m.iter_mut().for_each(|(_, v)| v.stamp(origin)),
            Value::Seq(s) => s.iter_mut().for_each(|v| v.stamp(origin)),
            _ => {}
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The type go-yaml v3 gives a plain scalar (`None`: null).
pub fn resolve_plain(s: &str) -> Option<Tag> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return None,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return Some(Tag::Bool),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => return Some(Tag::Float),
        _ => {}
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    match s.as_bytes()[0] {
        b'0'..=b'9' | b'+' | b'-' | b'.' => {
            if parse_int(&plain).is_some() || parse_uint(&plain).is_some() {
                Some(Tag::Int)
            } else if is_yaml_style_float(&plain) && plain.parse::<f64>().is_ok() {
                Some(Tag::Float)
            } else {
                Some(Tag::Str)
            }
        }
        _ => Some(Tag::Str),
    }
}

/// Whether go-yaml writes `s` plain and reads it back as the same string.
pub fn plain_is_string(s: &str) -> bool {
    !s.is_empty() && resolve_plain(s) == Some(Tag::Str) && !is_old_bool(s) && !is_base60_float(s)
}

/// Parse every document of `text` (null documents included, as `Value::Null`).
pub fn parse_documents(text: &str, source: &Arc<str>) -> Result<Vec<Node>, SyntaxError> {
    let mut b = Builder {
        source: source.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        root: None,
        guard: AliasGuard::default(),
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        b.push(event, span)?;
    }
    Ok(b.docs)
}

enum Open {
    Seq(Node, Vec<Node>, usize),
    Map(Node, Vec<(String, Node)>, Option<Node>, usize),
}

struct Builder {
    source: Arc<str>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    root: Option<Node>,
    guard: AliasGuard,
}

impl Builder {
    fn push(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let line = span.start.line();
        self.guard.observe(&event, &span).map_err(|e| SyntaxError {
            line: e.line,
            message: homelab_goyaml::alias::EXCESSIVE_ALIASING.into(),
        })?;
        let shell = |value| Node {
            value,
            origin: Some(Origin {
                source: self.source.clone(),
                line,
            }),
        };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let explicit = tag.as_ref().map(|t| t.suffix.to_string());
                let value = match (style, explicit.as_deref()) {
                    (_, Some("str")) => Value::Scalar(text.into_owned(), Tag::Str),
                    (ScalarStyle::Plain, _) => match resolve_plain(&text) {
                        None => Value::Null,
                        Some(t) => Value::Scalar(text.into_owned(), t),
                    },
                    _ => Value::Scalar(text.into_owned(), Tag::Str),
                };
                let node = shell(value);
                self.complete(node, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let node = shell(Value::Null);
                self.stack.push(Open::Seq(node, Vec::new(), anchor));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                let node = shell(Value::Null);
                self.stack.push(Open::Map(node, Vec::new(), None, anchor));
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Open::Seq(mut node, items, anchor)) => {
                    node.value = Value::Seq(items);
                    self.complete(node, anchor)
                }
                _ => Err(SyntaxError {
                    line,
                    message: "unbalanced sequence".into(),
                }),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Open::Map(mut node, entries, _, anchor)) => {
                    node.value = Value::Map(entries);
                    self.complete(node, anchor)
                }
                _ => Err(SyntaxError {
                    line,
                    message: "unbalanced mapping".into(),
                }),
            },
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let copy = node.clone();
                    self.complete(copy, 0)
                }
                None => Err(SyntaxError {
                    line,
                    message: "alias refers to an unknown anchor".into(),
                }),
            },
            Event::DocumentStart(_) => {
                self.root = None;
                Ok(())
            }
            Event::DocumentEnd => {
                let root = self.root.take().unwrap_or_else(|| shell(Value::Null));
                self.docs.push(root);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Open::Seq(_, items, _)) => {
                items.push(node);
                Ok(())
            }
            Some(Open::Map(_, entries, pending, _)) => {
                match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        let line = key.origin.as_ref().map_or(0, |o| o.line);
                        let text = match key.value {
                            Value::Scalar(s, _) => s,
                            Value::Null => String::new(),
                            _ => {
                                return Err(SyntaxError {
                                    line,
                                    message: "a mapping key must be a scalar".into(),
                                });
                            }
                        };
                        if entries.iter().any(|(k, _)| *k == text) {
                            return Err(SyntaxError {
                                line,
                                message: format!("mapping key \"{text}\" already defined"),
                            });
                        }
                        let mut value = node;
                        // A key's line is where the field was written (the value may start on the next).
                        if !matches!(value.value, Value::Scalar(..) | Value::Null) {
                            value.origin = key.origin;
                        }
                        entries.push((text, value));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_order_types_and_lines() {
        let src: Arc<str> = Arc::from("p.yaml");
        let docs = parse_documents("a: 1\nb: 'x'\n---\nc:\n  d: true\n", &src).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(matches!(
            docs[0].get("a").unwrap().value,
            Value::Scalar(_, Tag::Int)
        ));
        assert!(matches!(
            docs[0].get("b").unwrap().value,
            Value::Scalar(_, Tag::Str)
        ));
        let c = docs[1].get("c").unwrap();
        assert_eq!(c.origin.as_ref().unwrap().line, 4);
        assert_eq!(c.get("d").unwrap().origin.as_ref().unwrap().line, 5);
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v3() {
        assert_eq!(resolve_plain("yes"), Some(Tag::Str));
        assert_eq!(resolve_plain("0x1F"), Some(Tag::Int));
        assert_eq!(resolve_plain("1.5"), Some(Tag::Float));
        assert_eq!(resolve_plain("10.1.2.3/24"), Some(Tag::Str));
        assert_eq!(resolve_plain("~"), None);
        assert!(!plain_is_string("yes"));
        assert!(plain_is_string("hello"));
    }
}
