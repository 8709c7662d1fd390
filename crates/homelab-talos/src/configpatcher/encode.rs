//! Writing documents as talosctl does (`yaml.Marshal` of the typed document): struct fields in declaration
//! order, `omitempty` fields left out when zero, the zero value written for the others (`""`, `[]`, `{}`,
//! `null`), map keys in go-yaml's order, and go-yaml v3's block layout with a 4-space indent.

use std::cmp::Ordering;

use homelab_goyaml::scalar::{Style, choose_style, write_double_quoted};

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
                parse_go_duration(s).map_or_else(|| s.clone(), format_go_duration),
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

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int: i128 = if int_len == 0 {
            0
        } else {
            rest[..int_len].parse().ok()?
        };
        rest = &rest[int_len..];
        let (mut frac, mut scale) = (0i128, 1i128);
        if let Some(after) = rest.strip_prefix('.') {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            for d in after[..n].bytes().take(18) {
                frac = frac * 10 + i128::from(d - b'0');
                scale *= 10;
            }
            if int_len == 0 && n == 0 {
                return None;
            }
            rest = &after[n..];
        } else if int_len == 0 {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += int * unit + frac * unit / scale;
    }
    Some(if neg { -total } else { total })
}

/// Go's `time.Duration.String()`.
pub fn format_go_duration(ns: i128) -> String {
    fn frac(v: u128, prec: u32) -> (String, u128) {
        let pow = 10u128.pow(prec);
        let (int, f) = (v / pow, v % pow);
        if f == 0 {
            return (String::new(), int);
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), int)
    }
    if ns == 0 {
        return "0s".into();
    }
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, prec) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        let (f, int) = frac(u, prec);
        format!("{int}{f}{unit}")
    } else {
        let (f, secs) = frac(u, 9);
        let (s, mins) = (secs % 60, secs / 60);
        let (m, h) = (mins % 60, mins / 60);
        match (h, mins) {
            (0, 0) => format!("{s}{f}s"),
            (0, _) => format!("{m}m{s}{f}s"),
            _ => format!("{h}h{m}m{s}{f}s"),
        }
    };
    if ns < 0 { format!("-{body}") } else { body }
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
    entries.sort_by(|a, b| key_order(&a.0, &b.0));
    entries
}

/// go-yaml v3's map key order (`keyList.Less`) for string keys: digit runs compare as numbers, and a letter
/// sorts after a non-letter except right after a run of equal digits.
pub fn key_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            let a_first = if digits { al } else { bl };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
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
        match choose_style(s, is_key, plain_is_string(s)) {
            Style::Plain => self.out.push_str(s),
            Style::Single => {
                self.out.push('\'');
                self.out.push_str(&s.replace('\'', "''"));
                self.out.push('\'');
            }
            Style::Double => write_double_quoted(&mut self.out, s),
            Style::Literal => self.literal(s, block_ind, hint),
        }
    }

    fn literal(&mut self, s: &str, ind: usize, hint: usize) {
        self.out.push('|');
        if matches!(s.chars().next(), Some(' ' | '\n')) {
            self.out.push_str(&hint.to_string());
        }
        let b = s.as_bytes();
        if !s.ends_with('\n') {
            self.out.push('-');
        } else if b.len() == 1 || b[b.len() - 2] == b'\n' {
            self.out.push('+');
        }
        self.out.push('\n');
        let mut at_line_start = true;
        for ch in s.chars() {
            if ch == '\n' {
                self.out.push('\n');
                at_line_start = true;
            } else {
                if at_line_start {
                    self.pad(ind);
                }
                self.out.push(ch);
                at_line_start = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_as_go_does() {
        for (input, want) in [
            ("30s", "30s"),
            ("1m", "1m0s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1500us", "1.5ms"),
            ("0", "0s"),
            ("-2m3s", "-2m3s"),
            ("2h45m", "2h45m0s"),
        ] {
            let ns = parse_go_duration(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(format_go_duration(ns), want, "{input}");
        }
        assert!(parse_go_duration("5").is_none());
        assert!(parse_go_duration("1x").is_none());
    }

    #[test]
    fn keys_sort_like_go_yaml_v3() {
        let mut keys = vec!["b", "a10", "a2", "A", "_x", "a"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["_x", "A", "a", "a2", "a10", "b"]);
    }
}
