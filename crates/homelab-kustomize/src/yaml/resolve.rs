//! Plain-scalar resolution: how go-yaml v3 reads a plain scalar (input side) and whether go-yaml v2 would
//! have to quote a string so it reads back as a string (output side). Go's `strconv` rules are mirrored.

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
            if let Some(i) = go_parse_int(&plain) {
                return Value::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Value::Float(u as f64);
            }
            if yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Value::Float(f);
            }
            Value::Str(s.to_string())
        }
        b'.' => match go_parse_float(s) {
            Some(f) => Value::Float(f),
            None => Value::Str(s.to_string()),
        },
        _ => Value::Str(s.to_string()),
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    } else {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Digits of `s` in `radix`, Go style (no underscores: callers strip them), as u128 if it fits.
fn digits(s: &str, radix: u32) -> Option<u128> {
    if s.is_empty() {
        return None;
    }
    let mut v: u128 = 0;
    for c in s.chars() {
        let d = c.to_digit(radix)?;
        v = v.checked_mul(radix as u128)?.checked_add(d as u128)?;
    }
    Some(v)
}

fn base0_magnitude(s: &str) -> Option<u128> {
    let lower = s.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("0x") {
        digits(rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        digits(rest, 2)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        digits(rest, 8)
    } else if lower.len() > 1 && lower.starts_with('0') {
        digits(&lower[1..], 8)
    } else {
        digits(&lower, 10)
    }
}

/// Go `strconv.ParseInt(s, 0, 64)`.
pub fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let m = base0_magnitude(body)?;
    if neg {
        if m <= (i64::MAX as u128) + 1 {
            Some((-(m as i128)) as i64)
        } else {
            None
        }
    } else if m <= i64::MAX as u128 {
        Some(m as i64)
    } else {
        None
    }
}

/// Go `strconv.ParseUint(s, 0, 64)`.
pub fn go_parse_uint(s: &str) -> Option<u64> {
    let m = base0_magnitude(s)?;
    u64::try_from(m).ok()
}

/// Go `strconv.ParseFloat(s, 64)` acceptance (decimal, hex with `p` exponent, inf/infinity/nan).
pub fn go_parse_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if let Some(hex) = lower.strip_prefix("0x") {
                parse_hex_float(hex)?
            } else {
                let b = lower.as_bytes();
                let mut i = 0;
                let mut nd = 0;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                    nd += 1;
                }
                if i < b.len() && b[i] == b'.' {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                        nd += 1;
                    }
                }
                if nd == 0 {
                    return None;
                }
                if i < b.len() && b[i] == b'e' {
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    let st = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    if st == i {
                        return None;
                    }
                }
                if i != b.len() {
                    return None;
                }
                lower.parse::<f64>().ok()?
            }
        }
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once('p')?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let e: i32 = exp.parse().ok()?;
    Some(v * 2f64.powi(e))
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
            if go_parse_int(&plain).is_some()
                || go_parse_uint(&plain).is_some()
                || go_parse_float(&plain).is_some()
            {
                return true;
            }
            if let Some(rest) = plain
                .strip_prefix("0b")
                .or_else(|| plain.strip_prefix("-0b"))
                && digits(rest, 2).is_some()
            {
                return true;
            }
            is_base60_float(s)
        }
        b'.' => go_parse_float(s).is_some(),
        _ => false,
    }
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() && i - st < 2 {
            i += 1;
        }
        let g = &b[st..i];
        let ok = match g.len() {
            1 => true,
            2 => g[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
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
