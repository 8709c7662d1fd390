//! go-yaml v3 scalar typing (YAML 1.2 core-ish): which plain scalar is a bool, int, float, null, timestamp
//! or string. sops types values exactly this way, so `yes` stays a string and `0o17` is the int 15.

use base64::Engine;

use homelab_goyaml::plain::{is_base60_float, is_old_bool};
use homelab_goyaml::strconv::{is_yaml_style_float, parse_int, parse_uint};

use crate::value::Value;

/// Why a scalar cannot be represented the way sops would.
pub type ResolveError = String;

/// The value of an untagged plain scalar, as go-yaml v3 resolves it.
pub fn resolve_plain(s: &str) -> Result<Value, ResolveError> {
    resolve(s, true)
}

/// Whether go-yaml would read `s`, written as a plain scalar, back as the same string.
pub fn plain_is_string(s: &str) -> bool {
    matches!(resolve_non_string(s, true), Ok(None)) && !is_old_bool(s) && !is_base60_float(s)
}

fn resolve(s: &str, timestamps: bool) -> Result<Value, ResolveError> {
    Ok(resolve_non_string(s, timestamps)?.unwrap_or_else(|| Value::Str(s.to_string())))
}

/// The typed value of `s` when it is not a string (`None` for a string): the writer asks this of every
/// value it writes, so the string case costs no copy.
fn resolve_non_string(s: &str, timestamps: bool) -> Result<Option<Value>, ResolveError> {
    match s {
        "true" | "True" | "TRUE" => return Ok(Some(Value::Bool(true))),
        "false" | "False" | "FALSE" => return Ok(Some(Value::Bool(false))),
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Some(Value::Null)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Some(Value::Float(f64::NAN))),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Some(Value::Float(f64::INFINITY)));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Some(Value::Float(f64::NEG_INFINITY))),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if is_yaml_style_float(s)
                && let Ok(f) = s.parse::<f64>()
            {
                return Ok(Some(Value::Float(f)));
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if timestamps && let Some(t) = crate::time::parse_yaml_timestamp(s) {
                return Ok(Some(Value::Time(t)));
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            match (parse_int(&plain), parse_uint(&plain)) {
                (Some(i), _) => return Ok(Some(Value::Int(i))),
                (None, Some(_)) => {
                    return Err(format!(
                        "the integer {s} does not fit in a signed 64-bit integer, which sops cannot store (quote it to keep it as a string)"
                    ));
                }
                (None, None) => {}
            }
            if is_yaml_style_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
            {
                return Ok(Some(Value::Float(f)));
            }
        }
        _ => {}
    }
    Ok(None)
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
