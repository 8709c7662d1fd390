//! Lenient serde helpers: PVE is written in Perl, so a number or boolean may arrive as `1`, `"1"`, `1.0`,
//! `true` or `"true"`. Use these on every integer and boolean field of a response.

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn value_to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn value_to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integer that may be sent as a number or a string.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_i64(&v).ok_or_else(|| D::Error::custom(format!("expected an integer, got {v}")))
}

/// An optional integer that may be sent as a number, a string or null.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => value_to_i64(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {v}"))),
    }
}

/// An optional float that may be sent as a number, a string or null.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => value_to_f64(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a number, got {v}"))),
    }
}

/// A boolean sent as `0/1`, `"0"/"1"`, `true/false` or `"true"/"false"`; absent or null is `false`.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(v) => value_to_bool(&v)
            .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {v}"))),
    }
}

/// A value that may be a string or a number, kept as text (e.g. a task `id`, a VM `name`).
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// Same as [`int`] for a plain JSON value (used on config maps).
pub fn json_int(v: &Value) -> Option<i64> {
    value_to_i64(v)
}

/// Same as [`bool`] for a plain JSON value.
pub fn json_bool(v: &Value) -> Option<bool> {
    value_to_bool(v)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "super::int")]
        n: i64,
        #[serde(default, deserialize_with = "super::bool")]
        b: bool,
        #[serde(default, deserialize_with = "super::opt_int")]
        o: Option<i64>,
    }

    #[test]
    fn numbers_and_booleans_arrive_as_strings_or_numbers() {
        for text in [
            r#"{"n":9001,"b":1}"#,
            r#"{"n":"9001","b":"1"}"#,
            r#"{"n":9001.0,"b":true,"o":"7"}"#,
        ] {
            let p: Probe = serde_json::from_str(text).expect(text);
            assert_eq!(p.n, 9001);
            assert!(p.b);
        }
        let p: Probe = serde_json::from_str(r#"{"n":"5","o":"7"}"#).expect("lenient");
        assert_eq!(p.o, Some(7));
        assert!(!p.b);
    }

    #[test]
    fn garbage_is_an_error_not_a_zero() {
        assert!(serde_json::from_str::<Probe>(r#"{"n":"abc"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"n":1,"b":"maybe"}"#).is_err());
    }
}
