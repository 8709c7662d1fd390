//! Go's `strconv.ParseInt`/`ParseUint` (base 0) and `ParseFloat` acceptance, and go-yaml's float syntax
//! check. Callers strip `_` first, as go-yaml does.

/// The value of `s`'s digits in `radix`, if they are all valid and fit in a u128.
pub fn parse_digits(s: &str, radix: u32) -> Option<u128> {
    if s.is_empty() {
        return None;
    }
    let mut v: u128 = 0;
    for c in s.chars() {
        let d = c.to_digit(radix)?;
        v = v
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
    }
    Some(v)
}

/// Base 0: `0x`, `0o`, `0b` prefixes (either case), a leading `0` for octal, else decimal.
fn base0_magnitude(s: &str) -> Option<u128> {
    let lower = s.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("0x") {
        parse_digits(rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        parse_digits(rest, 2)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        parse_digits(rest, 8)
    } else if lower.len() > 1 && lower.starts_with('0') {
        parse_digits(&lower[1..], 8)
    } else {
        parse_digits(&lower, 10)
    }
}

/// Go `strconv.ParseInt(s, 0, 64)`.
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let m = base0_magnitude(body)?;
    if neg {
        (m <= (i64::MAX as u128) + 1).then(|| (-(m as i128)) as i64)
    } else {
        i64::try_from(m).ok()
    }
}

/// Go `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub fn parse_uint(s: &str) -> Option<u64> {
    u64::try_from(base0_magnitude(s)?).ok()
}

/// Go `strconv.ParseFloat(s, 64)` acceptance (decimal, hex with a `p` exponent, inf/infinity/nan).
pub fn parse_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => match lower.strip_prefix("0x") {
            Some(hex) => parse_hex_float(hex)?,
            None if is_decimal_float(&lower) => lower.parse::<f64>().ok()?,
            None => return None,
        },
    };
    Some(if neg { -v } else { v })
}

/// `[0-9]*(\.[0-9]*)?(e[-+]?[0-9]+)?` with at least one mantissa digit (lower-cased input).
fn is_decimal_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut mantissa = skip_digits(b, &mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa += skip_digits(b, &mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'e' {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if skip_digits(b, &mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn skip_digits(b: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while *i < b.len() && b[*i].is_ascii_digit() {
        *i += 1;
    }
    *i - start
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once('p')?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let e: i32 = exp.parse().ok()?;
    Some(v * 2f64.powi(e))
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if skip_digits(b, &mut i) == 0 {
            return false;
        }
    } else {
        if skip_digits(b, &mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            skip_digits(b, &mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if skip_digits(b, &mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_go_base_zero_rules() {
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("0X1f"), Some(31));
        assert_eq!(parse_int("-0b101"), Some(-5));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), None);
        assert_eq!(parse_uint("9223372036854775808"), Some(1 << 63));
        assert_eq!(parse_uint("+1"), None);
        assert_eq!(parse_int("08"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("-"), None);
    }

    #[test]
    fn floats_follow_go_parse_float() {
        assert_eq!(parse_float("1.5"), Some(1.5));
        assert_eq!(parse_float(".5e1"), Some(5.0));
        assert_eq!(parse_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("1e"), None);
        assert_eq!(parse_float("."), None);
        assert!(is_yaml_style_float("1."));
        assert!(is_yaml_style_float("-.5E+3"));
        assert!(!is_yaml_style_float("."));
        assert!(!is_yaml_style_float("1e"));
        assert!(!is_yaml_style_float("0x1p-2"));
    }
}
