//! Plain-scalar resolution: how go-yaml v3 reads a plain scalar (input side) and whether go-yaml v2 would
//! have to quote a string so it reads back as a string (output side). Go's `strconv` rules are mirrored.

use homelab_goyaml::plain::is_base60_float;
use homelab_goyaml::strconv::{
    is_yaml_style_float, parse_digits, parse_float, parse_int, parse_uint,
};

use super::value::Value;

/// Resolves a plain (unquoted, untagged) scalar the way go-yaml v3 does when decoding into `interface{}`.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(ts) = parse_timestamp(s) {
                return Value::Str(ts);
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if let Some(i) = parse_int(&plain) {
                return Value::Int(i);
            }
            if let Some(u) = parse_uint(&plain) {
                return Value::Float(u as f64);
            }
            if is_yaml_style_float(&plain)
                && let Some(f) = parse_float(&plain)
            {
                return Value::Float(f);
            }
            Value::Str(s.to_string())
        }
        b'.' => match parse_float(s) {
            Some(f) => Value::Float(f),
            None => Value::Str(s.to_string()),
        },
        _ => Value::Str(s.to_string()),
    }
}

/// go-yaml's timestamp recogniser (4 digits then `-`, then one of four layouts); returns Go's RFC3339Nano
/// rendering of the time, which is what kustomize prints for an unquoted timestamp.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != 4 || i == b.len() || b[i] != b'-' {
        return None;
    }
    let mut p = Cursor { b, i: 0 };
    let year = p.num(4, 4)?;
    p.lit(b'-')?;
    let month = p.num(1, 2)?;
    p.lit(b'-')?;
    let day = p.num(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if p.i == b.len() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let sep = b[p.i];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return None;
    }
    p.i += 1;
    let hour = p.num(1, 2)?;
    p.lit(b':')?;
    let min = p.num(1, 2)?;
    p.lit(b':')?;
    let sec = p.num(1, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if p.i < b.len() && b[p.i] == b'.' {
        p.i += 1;
        let st = p.i;
        while p.i < b.len() && b[p.i].is_ascii_digit() {
            p.i += 1;
        }
        if p.i == st || p.i - st > 9 {
            return None;
        }
        frac = s[st..p.i].trim_end_matches('0').to_string();
    }
    let zone = if p.i == b.len() {
        if sep == b' ' {
            "Z".to_string()
        } else {
            return None;
        }
    } else if sep == b' ' {
        return None;
    } else if b[p.i] == b'Z' && p.i + 1 == b.len() {
        "Z".to_string()
    } else if (b[p.i] == b'+' || b[p.i] == b'-') && b.len() - p.i == 6 && b[p.i + 3] == b':' {
        let z = &s[p.i..];
        if z == "+00:00" || z == "-00:00" {
            "Z".to_string()
        } else {
            z.to_string()
        }
    } else {
        return None;
    };
    let frac = if frac.is_empty() {
        frac
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}{frac}{zone}"
    ))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}
impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let st = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() && self.i - st < max {
            self.i += 1;
        }
        if self.i - st < min {
            return None;
        }
        std::str::from_utf8(&self.b[st..self.i]).ok()?.parse().ok()
    }
    fn lit(&mut self, c: u8) -> Option<()> {
        if self.i < self.b.len() && self.b[self.i] == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }
}

/// True when go-yaml v2 must quote `s` because, written plain, it would read back as something other than
/// a string (its `resolve` plus the base-60 float check).
pub fn v2_needs_quotes(s: &str) -> bool {
    const MAP: &[&str] = &[
        "", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off",
        "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    let Some(&first) = s.as_bytes().first() else {
        return true;
    };
    let hinted = matches!(
        first,
        b'+' | b'-' | b'0'
            ..=b'9'
                | b'.'
                | b'y'
                | b'Y'
                | b'n'
                | b'N'
                | b't'
                | b'T'
                | b'f'
                | b'F'
                | b'o'
                | b'O'
                | b'~'
    );
    if !hinted {
        return false;
    }
    if MAP.contains(&s) {
        return true;
    }
    match first {
        b'+' | b'-' | b'0'..=b'9' => {
            if parse_timestamp(s).is_some() {
                return true;
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if parse_int(&plain).is_some()
                || parse_uint(&plain).is_some()
                || parse_float(&plain).is_some()
            {
                return true;
            }
            if let Some(rest) = plain
                .strip_prefix("0b")
                .or_else(|| plain.strip_prefix("-0b"))
                && parse_digits(rest, 2).is_some()
            {
                return true;
            }
            is_base60_float(s)
        }
        b'.' => parse_float(s).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v3() {
        assert_eq!(resolve_plain("010"), Value::Int(8));
        assert_eq!(resolve_plain("0o17"), Value::Int(15));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1e"), Value::Str("1e".into()));
        assert_eq!(
            resolve_plain("2024-01-02"),
            Value::Str("2024-01-02T00:00:00Z".into())
        );
        assert_eq!(resolve_plain("12:30"), Value::Str("12:30".into()));
    }

    #[test]
    fn strings_that_read_back_as_other_types_need_quotes() {
        for s in [
            "", "y", "on", "1", "1.", "0x1F", "1_000", "12:30", "2024-1-2", "+1", ".5", "1e3",
            "null",
        ] {
            assert!(v2_needs_quotes(s), "{s}");
        }
        for s in ["1e", "<<", "Infinity", "20240-01-02", "abc", "x:y"] {
            assert!(!v2_needs_quotes(s), "{s}");
        }
    }
}
