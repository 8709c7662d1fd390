//! Writing documents as talosctl does (`yaml.Marshal` of the typed document): struct fields in declaration
//! order, `omitempty` fields left out when zero, the zero value written for the others (`""`, `[]`, `{}`,
//! `null`), map keys in go-yaml's order, and go-yaml v3's block layout with a 4-space indent.

use homelab_goyaml::scalar::write_string;
use homelab_goyaml::{duration, key_order};

use super::tree::plain_is_string;
use super::types::{Registry, Ty};
use super::{Node, Tag, Value};

/// The node as `yaml.Marshal` writes it: every field of `ty` in order, zero values filled in.
pub fn normalize(reg: &Registry, node: Option<&Node>, ty: &Ty) -> Node {
    let node = node.filter(|n| !n.is_null());
    let origin = node.and_then(|n| n.origin.clone());
    let value = match ty {
        Ty::Ptr(inner) => match node {
            None => Value::Null,
            Some(_) => return normalize(reg, node, inner),
        },
        Ty::Struct(name) => {
            let mut out = Vec::new();
            for f in reg.fields(name) {
                let child = node.and_then(|n| n.get(&f.name));
                if f.omitempty && is_empty(reg, child, &f.ty) {
                    continue;
                }
                out.push((f.name.clone(), normalize(reg, child, &f.ty)));
            }
            Value::Map(out)
        }
        Ty::Slice(elem, _) => match node.map(|n| &n.value) {
            Some(Value::Seq(items)) => Value::Seq(
                items
                    .iter()
                    .map(|i| normalize(reg, Some(i), elem))
                    .collect(),
            ),
            Some(other) => other.clone(),
            None => Value::Seq(Vec::new()),
        },
        Ty::Map(elem) => match node.map(|n| &n.value) {
            Some(Value::Map(entries)) => Value::Map(sorted(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), normalize(reg, Some(v), elem)))
                    .collect(),
            )),
            Some(other) => other.clone(),
            None => Value::Map(Vec::new()),
        },
        Ty::Unstructured | Ty::Any => match node.map(|n| &n.value) {
            Some(Value::Map(entries)) => Value::Map(sorted(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), normalize(reg, Some(v), &Ty::Any)))
                    .collect(),
            )),
            Some(Value::Seq(items)) => Value::Seq(
                items
                    .iter()
                    .map(|i| normalize(reg, Some(i), &Ty::Any))
                    .collect(),
            ),
            Some(Value::Scalar(s, Tag::Int)) => Value::Scalar(go_int(s), Tag::Int),
            Some(Value::Scalar(s, Tag::Bool)) => Value::Scalar(go_bool(s), Tag::Bool),
            Some(other) => other.clone(),
            None if *ty == Ty::Unstructured => Value::Map(Vec::new()),
            None => Value::Null,
        },
        Ty::Duration => match node.map(|n| &n.value) {
            // go-yaml reads a duration with time.ParseDuration and writes Duration.String().
            Some(Value::Scalar(s, _)) => Value::Scalar(
                duration::parse(s).map_or_else(|| s.clone(), duration::format),
                Tag::Str,
            ),
            Some(other) => other.clone(),
            None => Value::Scalar("0s".into(), Tag::Str),
        },
        Ty::Str | Ty::Bytes => match node.map(|n| &n.value) {
            Some(Value::Scalar(s, _)) => Value::Scalar(s.clone(), Tag::Str),
            Some(other) => other.clone(),
            None if *ty == Ty::Bytes => Value::Null,
            None => Value::Scalar(String::new(), Tag::Str),
        },
        Ty::Bool => match node.map(|n| &n.value) {
            Some(Value::Scalar(s, _)) => Value::Scalar(go_bool(s), Tag::Bool),
            Some(other) => other.clone(),
            None => Value::Scalar("false".into(), Tag::Bool),
        },
        Ty::Int => match node.map(|n| &n.value) {
            Some(Value::Scalar(s, _)) => Value::Scalar(go_int(s), Tag::Int),
            Some(other) => other.clone(),
            None => Value::Scalar("0".into(), Tag::Int),
        },
        Ty::Float => match node.map(|n| &n.value) {
            Some(other) => other.clone(),
            None => Value::Scalar("0".into(), Tag::Float),
        },
        Ty::Opaque => match node {
            Some(n) => n.value.clone(),
            None => Value::Null,
        },
    };
    Node { value, origin }
}

fn go_int(s: &str) -> String {
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    homelab_goyaml::strconv::parse_int(&plain)
        .map(|i| i.to_string())
        .or_else(|| homelab_goyaml::strconv::parse_uint(&plain).map(|u| u.to_string()))
        .unwrap_or_else(|| s.to_string())
}

fn go_bool(s: &str) -> String {
    if s.eq_ignore_ascii_case("true") {
        "true".into()
    } else {
        "false".into()
    }
}

/// go-yaml's `omitempty` test (`isZero`).
pub fn is_empty(reg: &Registry, node: Option<&Node>, ty: &Ty) -> bool {
    let Some(n) = node.filter(|n| !n.is_null()) else {
        return true;
    };
    match (ty, &n.value) {
        (Ty::Ptr(_), _) => false,
        (_, Value::Seq(items)) => items.is_empty(),
        (Ty::Struct(name), Value::Map(_)) => reg
            .fields(name)
            .iter()
            .all(|f| is_empty(reg, n.get(&f.name), &f.ty)),
        (_, Value::Map(entries)) => entries.is_empty(),
        (Ty::Bool, Value::Scalar(s, _)) => !s.eq_ignore_ascii_case("true"),
        (Ty::Int, Value::Scalar(s, _)) => go_int(s) == "0",
        (Ty::Float, Value::Scalar(s, _)) => s.parse::<f64>().is_ok_and(|f| f == 0.0),
        (_, Value::Scalar(s, Tag::Str)) => s.is_empty(),
        (_, Value::Scalar(s, Tag::Int)) => go_int(s) == "0",
        (_, Value::Scalar(s, Tag::Bool)) => !s.eq_ignore_ascii_case("true"),
        (_, Value::Scalar(s, Tag::Float)) => s.parse::<f64>().is_ok_and(|f| f == 0.0),
        (_, Value::Null) => true,
    }
}

fn sorted(mut entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    entries.sort_by(|a, b| key_order::v3(&a.0, &b.0));
    entries
}

const INDENT: usize = 4;

/// Write one normalized document.
pub fn emit(doc: &Node) -> String {
    let mut w = Writer { out: String::new() };
    match &doc.value {
        Value::Map(m) if !m.is_empty() => w.map(m, 0, false),
        _ => {
            w.scalar(doc, 0, 0, false);
            w.newline();
        }
    }
    w.out
}

struct Writer {
    out: String,
}

impl Writer {
    fn deeper(ind: usize) -> usize {
        INDENT * ((ind + INDENT) / INDENT)
    }

    fn pad(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    fn newline(&mut self) {
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn map(&mut self, entries: &[(String, Node)], ind: usize, first_inline: bool) {
        for (i, (k, v)) in entries.iter().enumerate() {
            if !(first_inline && i == 0) {
                self.pad(ind);
            }
            self.string(k, 0, 0, true);
            self.out.push(':');
            match &v.value {
                Value::Map(m) if !m.is_empty() => {
                    self.out.push('\n');
                    self.map(m, Self::deeper(ind), false);
                }
                Value::Seq(s) if !s.is_empty() => {
                    self.out.push('\n');
                    self.seq(s, Self::deeper(ind), false);
                }
                _ => {
                    self.out.push(' ');
                    let d = Self::deeper(ind);
                    self.scalar(v, d, d - ind, false);
                    self.newline();
                }
            }
        }
    }

    fn seq(&mut self, items: &[Node], ind: usize, first_inline: bool) {
        for (i, item) in items.iter().enumerate() {
            if !(first_inline && i == 0) {
                self.pad(ind);
            }
            self.out.push_str("- ");
            match &item.value {
                Value::Map(m) if !m.is_empty() => self.map(m, ind + 2, true),
                Value::Seq(s) if !s.is_empty() => self.seq(s, ind + 2, true),
                _ => {
                    self.scalar(item, ind + 2, 2, false);
                    self.newline();
                }
            }
        }
    }

    fn scalar(&mut self, n: &Node, block_ind: usize, hint: usize, is_key: bool) {
        match &n.value {
            Value::Null => self.out.push_str("null"),
            Value::Map(_) => self.out.push_str("{}"),
            Value::Seq(_) => self.out.push_str("[]"),
            Value::Scalar(s, Tag::Str) => self.string(s, block_ind, hint, is_key),
            Value::Scalar(s, _) => self.out.push_str(s),
        }
    }

    fn string(&mut self, s: &str, block_ind: usize, hint: usize, is_key: bool) {
        write_string(
            &mut self.out,
            s,
            is_key,
            plain_is_string(s),
            block_ind,
            hint,
        );
    }
}
