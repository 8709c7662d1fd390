//! A YAML writer that reproduces go-yaml v2's `Marshal` of a JSON value byte for byte: keys in v2's
//! natural order, 2-space indent, sequences not indented under maps, v2's quoting and 80-column folding.
//! kustomize prints every resource this way (`sigs.k8s.io/yaml.JSONToYAML`).

use homelab_goyaml::key_order;
use homelab_goyaml::scalar::{Style, choose_style, is_break, needs_escape, push_escape};

use super::resolve::v2_needs_quotes;
use super::value::{Map, Value};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

/// Why a value cannot be printed the way kustomize would print it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmitError {
    #[error("value {0} cannot be represented in JSON (kustomize fails the same way)")]
    NotJson(String),
}

/// One document, ending in a newline, as go-yaml v2 writes it.
pub fn to_yaml(v: &Value) -> Result<String, EmitError> {
    check_json(v)?;
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        open_ended: false,
    };
    e.node(v, false, false);
    e.indent = -1;
    e.write_indent();
    if e.open_ended {
        e.out.push_str("...\n");
    }
    Ok(e.out)
}

fn check_json(v: &Value) -> Result<(), EmitError> {
    match v {
        Value::Float(f) if !f.is_finite() => Err(EmitError::NotJson(format_float(*f))),
        Value::Seq(items) => items.iter().try_for_each(check_json),
        Value::Map(m) => m.values().try_for_each(check_json),
        _ => Ok(()),
    }
}

/// Keys of a map in go-yaml v2 order.
pub fn sorted_entries(m: &Map) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| key_order::v2(a.0, b.0));
    v
}

/// A float as go-yaml v2 prints a JSON number that went through Go's `encoding/json`.
pub fn format_float(f: f64) -> String {
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
    if f.fract() == 0.0 {
        if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
            return (f as i64).to_string();
        }
        if (0.0..1.844_674_407_370_955e19).contains(&f) {
            return (f as u64).to_string();
        }
    }
    // Go strconv.FormatFloat(f, 'g', -1, 64): shortest digits; %e when exp < -4 || exp >= 6.
    let sci = format!("{:e}", f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut s = String::new();
    if mant.starts_with('-') {
        s.push('-');
    }
    if !(-4..6).contains(&exp) {
        push_e(&mut s, &digits, exp);
    } else if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        let dp = (exp + 1) as usize;
        if digits.len() <= dp {
            s.push_str(&digits);
            for _ in digits.len()..dp {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..dp]);
            s.push('.');
            s.push_str(&digits[dp..]);
        }
    }
    s
}

fn push_e(s: &mut String, digits: &str, exp: i32) {
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: i32,
    open_ended: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }
    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }
    /// Writes a line break found in a value as itself (go-yaml keeps U+0085/U+2028/U+2029 as they are).
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }
    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }
    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
        self.open_ended = false;
    }
    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    /// Emits a node; `mapping_ctx`: value of a block mapping; `simple_key`: a mapping key.
    fn node(&mut self, v: &Value, mapping_ctx: bool, simple_key: bool) {
        match v {
            Value::Map(m) if m.is_empty() => self.flow_empty("{", "}"),
            Value::Seq(s) if s.is_empty() => self.flow_empty("[", "]"),
            Value::Map(m) => {
                let saved = self.indent;
                self.increase_indent(false, false);
                for (k, val) in sorted_entries(m) {
                    self.write_indent();
                    if k.chars().count() > 128 {
                        self.write_indicator("?", true, false, true);
                        self.scalar(k, false);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    } else {
                        self.scalar(k, true);
                        self.write_indicator(":", false, false, false);
                    }
                    self.node(val, true, false);
                }
                self.indent = saved;
            }
            Value::Seq(items) => {
                let saved = self.indent;
                let indentless = mapping_ctx && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, false, false);
                }
                self.indent = saved;
            }
            Value::Null => self.raw_plain("null"),
            Value::Bool(b) => self.raw_plain(if *b { "true" } else { "false" }),
            Value::Int(i) => self.raw_plain(&i.to_string()),
            Value::Float(f) => self.raw_plain(&format_float(*f)),
            Value::Str(s) => self.scalar(s, simple_key),
        }
    }

    fn flow_empty(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn raw_plain(&mut self, s: &str) {
        let saved = self.indent;
        self.increase_indent(true, false);
        self.write_plain(s, false);
        self.indent = saved;
    }

    /// A string scalar, quoted when written plain it would not read back as this string (go-yaml v2's
    /// resolver) and styled by go-yaml's rules (`homelab_goyaml::scalar::choose_style`).
    fn scalar(&mut self, s: &str, simple_key: bool) {
        let style = choose_style(s, simple_key, !v2_needs_quotes(s));
        let saved = self.indent;
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(s, allow_breaks),
            Style::Single => self.write_single(s, allow_breaks),
            Style::Double => self.write_double(s, allow_breaks),
            Style::Literal => self.write_literal(s),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, s: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for i in 0..chars.len() {
            let c = chars[i];
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        let mut spaces = false;
        let mut breaks = false;
        for i in 0..n {
            let c = chars[i];
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < n - 1
                    && !next_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let bom_first = s.starts_with('\u{FEFF}');
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let mut spaces = false;
        for (idx, &(byte_i, c)) in chars.iter().enumerate() {
            if needs_escape(c, bom_first) {
                // Escapes are ASCII: one column per byte.
                let before = self.out.len();
                push_escape(&mut self.out, c);
                self.column += self.out.len() - before;
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && byte_i > 0
                    && byte_i < s.len() - 1
                {
                    self.write_indent();
                    if chars.get(idx + 1).map(|x| x.1) == Some(' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, s: &str) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|c| *c == ' ' || is_break(*c)) {
            let hint = BEST_INDENT.to_string();
            self.write_indicator(&hint, false, false, false);
        }
        self.open_ended = false;
        let last = chars.last().copied();
        let chomp = match last {
            None => Some("-"),
            Some(c) if !is_break(c) => Some("-"),
            Some(_) if chars.len() == 1 => {
                self.open_ended = true;
                Some("+")
            }
            Some(_) => {
                if is_break(chars[chars.len() - 2]) {
                    self.open_ended = true;
                    Some("+")
                } else {
                    None
                }
            }
        };
        if let Some(ch) = chomp {
            let oe = self.open_ended;
            self.write_indicator(ch, false, false, false);
            self.open_ended = oe;
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(123456789.5), "1.234567895e+08");
        assert_eq!(format_float(0.000001), "1e-06");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(1e20), "1e+20");
    }
}
