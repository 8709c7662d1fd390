//! go-yaml v3 scalar typing (YAML 1.2 core-ish): which plain scalar is a bool, int, float, null, timestamp
//! or string. sops types values exactly this way, so `yes` stays a string and `0o17` is the int 15.

use base64::Engine;

use crate::value::Value;

/// Why a scalar cannot be represented the way sops would.
pub type ResolveError = String;

/// The value of an untagged plain scalar, as go-yaml v3 resolves it.
pub fn resolve_plain(s: &str) -> Result<Value, ResolveError> {
    resolve(s, true)
}

/// Whether go-yaml would read `s`, written as a plain scalar, back as the same string.
pub fn plain_is_string(s: &str) -> bool {
    matches!(resolve(s, true), Ok(Value::Str(_))) && !is_old_bool(s) && !is_base60_float(s)
}

fn resolve(s: &str, timestamps: bool) -> Result<Value, ResolveError> {
    match s {
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if is_yaml_float(s)
                && let Ok(f) = s.parse::<f64>()
            {
                return Ok(Value::Float(f));
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if timestamps && let Some(t) = crate::time::parse_yaml_timestamp(s) {
                return Ok(Value::Time(t));
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            match go_parse_int(&plain) {
                Some(IntParse::Int(i)) => return Ok(Value::Int(i)),
                Some(IntParse::Uint) => {
                    return Err(format!(
                        "the integer {s} does not fit in a signed 64-bit integer, which sops cannot store (quote it to keep it as a string)"
                    ));
                }
                None => {}
            }
            if is_yaml_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
            {
                return Ok(Value::Float(f));
            }
        }
        _ => {}
    }
    Ok(Value::Str(s.to_string()))
}

enum IntParse {
    Int(i64),
    Uint,
}

/// Go `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint` to detect uint64-only values.
fn go_parse_int(s: &str) -> Option<IntParse> {
    let (neg, signed, body) = match s.as_bytes().first()? {
        b'-' => (true, true, &s[1..]),
        b'+' => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= 1u128 << 63 {
            return Some(IntParse::Int((magnitude as i128).wrapping_neg() as i64));
        }
        return None;
    }
    if magnitude <= i64::MAX as u128 {
        return Some(IntParse::Int(magnitude as i64));
    }
    if !signed && magnitude <= u64::MAX as u128 {
        return Some(IntParse::Uint);
    }
    None
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// YAML 1.1 booleans go-yaml quotes on output for compatibility.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
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
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let g = &b[start..i];
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

/// The value of a scalar with an explicit core tag (`!!str`, `!!int`, `!!binary`, …).
pub fn resolve_tagged(suffix: &str, s: &str, plain: bool) -> Result<Value, ResolveError> {
    match suffix {
        "str" => Ok(Value::Str(s.to_string())),
        "binary" => {
            let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|e| format!("invalid !!binary value: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::Str)
                .map_err(|_| "a !!binary value that is not UTF-8 text is not supported".to_string())
        }
        "null" => Ok(Value::Null),
        "bool" | "int" | "float" | "timestamp" => {
            let v = resolve(s, true)?;
            let ok = matches!(
                (suffix, &v),
                ("bool", Value::Bool(_))
                    | ("int", Value::Int(_))
                    | ("float", Value::Float(_))
                    | ("timestamp", Value::Time(_))
            );
            match (ok, suffix, &v) {
                (true, ..) => Ok(v),
                (false, "float", Value::Int(i)) => Ok(Value::Float(*i as f64)),
                _ => Err(format!("cannot decode {s:?} as !!{suffix}")),
            }
        }
        _ if plain => resolve(s, false),
        _ => Ok(Value::Str(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_type_like_go_yaml_v3() {
        assert_eq!(resolve_plain("yes"), Ok(Value::Str("yes".into())));
        assert_eq!(resolve_plain("0x1F"), Ok(Value::Int(31)));
        assert_eq!(resolve_plain("0o17"), Ok(Value::Int(15)));
        assert_eq!(resolve_plain("017"), Ok(Value::Int(15)));
        assert_eq!(resolve_plain("08"), Ok(Value::Float(8.0)));
        assert_eq!(resolve_plain("1_000"), Ok(Value::Int(1000)));
        assert_eq!(resolve_plain("+1"), Ok(Value::Int(1)));
        assert_eq!(resolve_plain("-0.5"), Ok(Value::Float(-0.5)));
        assert_eq!(resolve_plain(".5"), Ok(Value::Float(0.5)));
        assert_eq!(resolve_plain("~"), Ok(Value::Null));
        assert_eq!(resolve_plain("3.11.0"), Ok(Value::Str("3.11.0".into())));
        assert_eq!(
            resolve_plain("2024-01-02"),
            Ok(Value::Time("2024-01-02T00:00:00Z".into()))
        );
        assert!(resolve_plain("18446744073709551615").is_err());
        assert_eq!(
            resolve_plain("99999999999999999999"),
            Ok(Value::Float(1e20))
        );
        assert_eq!(
            resolve_plain("-9223372036854775808"),
            Ok(Value::Int(i64::MIN))
        );
    }

    #[test]
    fn strings_that_would_retype_are_not_plain() {
        for s in [
            "yes",
            "y",
            "Off",
            "123",
            "1:20",
            "",
            "null",
            "1e5",
            ".5",
            "2024-01-02",
        ] {
            assert!(!plain_is_string(s), "{s}");
        }
        for s in ["hello", "tRue", "0x1G", "0o9", "3.11.0", "x#y"] {
            assert!(plain_is_string(s), "{s}");
        }
    }
}
