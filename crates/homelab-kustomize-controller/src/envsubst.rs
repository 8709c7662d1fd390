//! Flux `postBuild` variable substitution (fluxcd/pkg/envsubst): `${var}`, defaults (`:-`, `:=`, `-`, `=`),
//! length, case and substring forms; `$var` without braces is left alone and `$${x}` yields `${x}`.

use std::collections::HashMap;

/// Why substitution failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SubstError {
    #[error("bad substitution: unclosed `${{` at byte {0}")]
    Unclosed(usize),
    #[error("variable {0:?} is not set (strict mode)")]
    Unset(String),
    #[error("{0}")]
    Required(String),
}

/// Variables and how unset ones behave.
pub struct Vars<'a> {
    pub values: &'a HashMap<String, String>,
    /// Names whose value is unknown (e.g. from an encrypted Secret): `${name}` is left as written.
    pub opaque: &'a [String],
    pub strict: bool,
}

/// Substitutes `${...}` expressions in `text`.
pub fn substitute(text: &str, vars: &Vars<'_>) -> Result<String, SubstError> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$'
            && i + 1 < b.len()
            && b[i + 1] == b'$'
            && i + 2 < b.len()
            && b[i + 2] == b'{'
        {
            out.push_str(&text[last..i]);
            out.push('$');
            i += 2;
            last = i;
            // copy the literal `{...}` as is
            continue;
        }
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'{' {
            let end = matching_brace(b, i + 2).ok_or(SubstError::Unclosed(i))?;
            out.push_str(&text[last..i]);
            let expr = &text[i + 2..end];
            match eval(expr, vars)? {
                Some(v) => out.push_str(&v),
                None => out.push_str(&text[i..=end]),
            }
            i = end + 1;
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

fn matching_brace(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() && b[i + 1] == b'{' {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i] == b'}' {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
        }
        i += 1;
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Evaluates the inside of `${...}`; `None` keeps the expression as written.
fn eval(expr: &str, vars: &Vars<'_>) -> Result<Option<String>, SubstError> {
    if let Some(name) = expr.strip_prefix('#')
        && !name.is_empty()
        && name.chars().all(is_name_char)
    {
        if vars.opaque.iter().any(|o| o == name) {
            return Ok(None);
        }
        return Ok(Some(
            lookup(name, vars)?
                .unwrap_or_default()
                .chars()
                .count()
                .to_string(),
        ));
    }
    let name_len = expr.find(|c: char| !is_name_char(c)).unwrap_or(expr.len());
    let (name, rest) = expr.split_at(name_len);
    if name.is_empty() {
        return Ok(None);
    }
    if vars.opaque.iter().any(|o| o == name) {
        return Ok(None);
    }
    let value = vars.values.get(name).cloned();
    let sub = |s: &str| substitute(s, vars);
    let r = match rest {
        "" => match value {
            Some(v) => v,
            None if vars.strict => return Err(SubstError::Unset(name.to_string())),
            None => String::new(),
        },
        r if r.starts_with(":-") || r.starts_with(":=") => match value.filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => sub(&r[2..])?,
        },
        r if r.starts_with(":?") => match value.filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => return Err(SubstError::Required(format!("{name}: {}", &r[2..]))),
        },
        r if r.starts_with('-') || r.starts_with('=') => match value {
            Some(v) => v,
            None => sub(&r[1..])?,
        },
        r if r.starts_with('?') => match value {
            Some(v) => v,
            None => return Err(SubstError::Required(format!("{name}: {}", &r[1..]))),
        },
        "^^" => value.unwrap_or_default().to_uppercase(),
        ",," => value.unwrap_or_default().to_lowercase(),
        "^" => first_case(&value.unwrap_or_default(), true),
        "," => first_case(&value.unwrap_or_default(), false),
        r if r.starts_with("##") => strip_prefix_longest(&value.unwrap_or_default(), &r[2..]),
        r if r.starts_with('#') => {
            let v = value.unwrap_or_default();
            v.strip_prefix(&r[1..]).unwrap_or(&v).to_string()
        }
        r if r.starts_with("%%") => strip_suffix_longest(&value.unwrap_or_default(), &r[2..]),
        r if r.starts_with('%') => {
            let v = value.unwrap_or_default();
            v.strip_suffix(&r[1..]).unwrap_or(&v).to_string()
        }
        r if r.starts_with("//") => replace(&value.unwrap_or_default(), &r[2..], true),
        r if r.starts_with('/') => replace(&value.unwrap_or_default(), &r[1..], false),
        r if r.starts_with(':') => substring(&value.unwrap_or_default(), &r[1..]),
        _ => return Ok(None),
    };
    Ok(Some(r))
}

fn lookup(name: &str, vars: &Vars<'_>) -> Result<Option<String>, SubstError> {
    match vars.values.get(name) {
        Some(v) => Ok(Some(v.clone())),
        None if vars.strict => Err(SubstError::Unset(name.to_string())),
        None => Ok(None),
    }
}

fn first_case(v: &str, upper: bool) -> String {
    let mut c = v.chars();
    match c.next() {
        Some(f) if upper => f.to_uppercase().collect::<String>() + c.as_str(),
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn strip_prefix_longest(v: &str, p: &str) -> String {
    v.strip_prefix(p).unwrap_or(v).to_string()
}
fn strip_suffix_longest(v: &str, s: &str) -> String {
    v.strip_suffix(s).unwrap_or(v).to_string()
}

fn replace(v: &str, spec: &str, all: bool) -> String {
    let (pat, rep) = spec.split_once('/').unwrap_or((spec, ""));
    if pat.is_empty() {
        return v.to_string();
    }
    if all {
        v.replace(pat, rep)
    } else {
        v.replacen(pat, rep, 1)
    }
}

fn substring(v: &str, spec: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let (pos, len) = match spec.split_once(':') {
        Some((p, l)) => (
            p.trim().parse::<i64>().unwrap_or(0),
            l.trim().parse::<i64>().ok(),
        ),
        None => (spec.trim().parse::<i64>().unwrap_or(0), None),
    };
    let n = chars.len() as i64;
    let start = if pos < 0 {
        (n + pos).max(0)
    } else {
        pos.min(n)
    } as usize;
    let end = match len {
        Some(l) if l >= 0 => (start as i64 + l).min(n) as usize,
        Some(l) => (n + l).max(start as i64) as usize,
        None => n as usize,
    };
    chars[start..end.max(start)].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, pairs: &[(&str, &str)]) -> String {
        let values: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        substitute(
            text,
            &Vars {
                values: &values,
                opaque: &[],
                strict: false,
            },
        )
        .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn flux_substitution_rules() {
        assert_eq!(run("replicas: ${REPLICAS:=1}", &[]), "replicas: 1");
        assert_eq!(
            run("replicas: ${REPLICAS:=1}", &[("REPLICAS", "3")]),
            "replicas: 3"
        );
        assert_eq!(run("a: ${X:-d} b: ${X-d}", &[("X", "")]), "a: d b: ");
        assert_eq!(run("$X and ${X}", &[("X", "v")]), "$X and v");
        assert_eq!(run("$${X}", &[("X", "v")]), "${X}");
        assert_eq!(run("${UNSET}", &[]), "");
        assert_eq!(
            run("${#X} ${X^^} ${X:1:2}", &[("X", "hello")]),
            "5 HELLO el"
        );
        assert_eq!(run("${X/l/L} ${X//l/L}", &[("X", "hello")]), "heLlo heLLo");
        assert_eq!(run("${A:=${B}}", &[("B", "b")]), "b");
    }

    #[test]
    fn opaque_variables_stay_as_written() {
        let values = HashMap::new();
        let opaque = vec!["SECRET".to_string()];
        let out = substitute(
            "k: ${SECRET}",
            &Vars {
                values: &values,
                opaque: &opaque,
                strict: false,
            },
        );
        assert_eq!(out, Ok("k: ${SECRET}".to_string()));
    }
}
