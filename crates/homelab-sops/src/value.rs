//! The ordered document tree every store reads into and writes from, with the scalar types sops knows
//! (`str`, `int`, `float`, `bool`, `time`, comments) and their Go text forms. Secrets in it are zeroized on drop.

use zeroize::Zeroize;

/// One node of a SOPS document tree.
///
/// Mappings keep their key order and the comments between their entries; sequences keep comments as items,
/// exactly as sops's own tree does. Keys are stored as strings (sops only supports string keys in paths).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` / `~` / an empty value. Never encrypted and not part of the MAC.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer (sops cannot handle integers outside this range).
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A timestamp, kept in Go's `time.Time.MarshalText` form (RFC 3339 with nanoseconds, `Z` for UTC).
    Time(String),
    /// A comment (the text after `#`, leading space kept). Only appears as a sequence item.
    Comment(String),
    /// An ordered mapping.
    Map(Map),
    /// A sequence.
    Seq(Vec<Value>),
}

/// An ordered mapping with interleaved comments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    /// Entries in document order.
    pub entries: Vec<Entry>,
}

/// One entry of a [`Map`]: a key/value pair or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `key: value`.
    Item(Key, Value),
    /// `#text` (text without the `#`).
    Comment(String),
}

/// A mapping key. `text` is the key's string form (used for paths and AAD); `scalar` remembers a non-string
/// key (`1: x`, `true: y`) so it is written back with its original type.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key as text.
    pub text: String,
    /// The key's scalar value when it is not a string.
    pub scalar: Option<Box<Value>>,
}

impl Key {
    /// A plain string key.
    pub fn new(text: impl Into<String>) -> Key {
        Key {
            text: text.into(),
            scalar: None,
        }
    }
}

impl Map {
    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find_map(|e| match e {
            Entry::Item(k, v) if k.text == key => Some(v),
            _ => None,
        })
    }

    /// Removes and returns the value for `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let idx = self
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Item(k, _) if k.text == key))?;
        match self.entries.remove(idx) {
            Entry::Item(_, v) => Some(v),
            Entry::Comment(_) => None,
        }
    }

    /// Appends `key: value`.
    pub fn push(&mut self, key: impl Into<String>, value: Value) {
        self.entries.push(Entry::Item(Key::new(key), value));
    }

    /// Key/value pairs, skipping comments.
    pub fn items(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Item(k, v) => Some((k.text.as_str(), v)),
            Entry::Comment(_) => None,
        })
    }

    /// Whether the map holds no key/value pair.
    pub fn has_no_items(&self) -> bool {
        self.items().next().is_none()
    }
}

impl Value {
    /// The value at a path of mapping keys / sequence indices (`["nested", "list", "0"]`).
    pub fn lookup(&self, path: &[&str]) -> Option<&Value> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Value::Map(m) => m.get(first)?.lookup(rest),
            Value::Seq(items) => {
                let idx: usize = first.parse().ok()?;
                items
                    .iter()
                    .filter(|v| !matches!(v, Value::Comment(_)))
                    .nth(idx)?
                    .lookup(rest)
            }
            _ => None,
        }
    }

    /// The string content of a `Str`, `Time` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Time(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a leaf value (not a map, sequence or comment).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Map(_) | Value::Seq(_) | Value::Comment(_))
    }
}

impl Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.zeroize(),
            Value::Int(i) => i.zeroize(),
            Value::Float(f) => f.zeroize(),
            Value::Bool(b) => b.zeroize(),
            Value::Null => {}
            Value::Map(m) => m.zeroize(),
            Value::Seq(items) => {
                for v in items.iter_mut() {
                    v.zeroize();
                }
            }
        }
    }
}

impl Zeroize for Map {
    fn zeroize(&mut self) {
        for e in self.entries.iter_mut() {
            match e {
                Entry::Item(k, v) => {
                    k.text.zeroize();
                    if let Some(s) = k.scalar.as_mut() {
                        s.zeroize();
                    }
                    v.zeroize();
                }
                Entry::Comment(c) => c.zeroize(),
            }
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
/// This is the plaintext sops encrypts and feeds to the MAC for a float.
pub fn go_float_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust's Display is the shortest round-trip form without exponent, like Go's 'f', -1.
        format!("{f}")
    }
}

/// Shortest digits and decimal exponent of a finite, non-zero float: `1.5e10` → ("15", 10).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Formats `digits`×10^`exp` (one digit before the point) in Go's `%e` style with the given minimum exponent
/// width: `1.5e+10`, `1e-05`.
fn go_exp_form(neg: bool, digits: &str, exp: i32, min_exp_digits: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs().to_string();
    for _ in e.len()..min_exp_digits {
        out.push('0');
    }
    out.push_str(&e);
    out
}

/// go-yaml v3's float text: `strconv.FormatFloat(f, 'g', -1, 64)` with `.inf`/`-.inf`/`.nan`.
pub fn go_yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, exp) = shortest_digits(f);
    // strconv 'g' with shortest precision: `%e` when exp < -4 || exp >= 6 (eprec is 6 for shortest).
    if !(-4..6).contains(&exp) {
        return go_exp_form(f < 0.0, &digits, exp, 2);
    }
    format!("{f}")
}

/// Go `encoding/json` float text: `'f'` form unless |f| < 1e-6 or |f| >= 1e21, then `'e'` with a
/// one-digit negative exponent allowed (`1e-7`, `1e+21`).
pub fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, exp) = shortest_digits(f);
        let min = if exp < 0 { 1 } else { 2 };
        return go_exp_form(f < 0.0, &digits, exp, min);
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_forms_match_strconv() {
        assert_eq!(go_float_plain(1.0), "1");
        assert_eq!(go_float_plain(1e21), "1000000000000000000000");
        assert_eq!(go_float_plain(f64::INFINITY), "+Inf");
        assert_eq!(go_yaml_float(1.5e10), "1.5e+10");
        assert_eq!(go_yaml_float(2.5), "2.5");
        assert_eq!(go_yaml_float(1.0), "1");
        assert_eq!(go_yaml_float(0.00001), "1e-05");
        assert_eq!(go_yaml_float(1234567.0), "1.234567e+06");
        assert_eq!(go_yaml_float(f64::INFINITY), ".inf");
        assert_eq!(go_json_float(1e21), "1e+21");
        assert_eq!(go_json_float(1e-7), "1e-7");
        assert_eq!(
            go_json_float(12345678901234567890.0),
            "12345678901234567000"
        );
        assert_eq!(go_json_float(42.0), "42");
    }
}
