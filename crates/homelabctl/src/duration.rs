//! Durations on the command line, written as kubectl and Go write them (`90s`, `5m`, `1h30m`, `1.5h`,
//! `250ms`) or as plain seconds (`90`).

use std::time::Duration;

/// Parses a positive duration for a clap `value_parser`; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let total = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| format!("{text:?}: {e}"))?
    } else {
        go_duration(text).ok_or_else(|| {
            format!("{text:?} is not a duration: write it as 90s, 5m, 1h30m or 250ms")
        })?
    };
    if total.is_zero() {
        return Err(format!("{text:?}: the duration must be longer than 0s"));
    }
    Ok(total)
}

/// A sequence of decimal numbers each with a unit (h, m, s, ms), as Go's `time.ParseDuration` reads it.
fn go_duration(mut rest: &str) -> Option<Duration> {
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_and_go_spellings_and_plain_seconds() {
        for (text, secs) in [
            ("90", 90.0),
            ("90s", 90.0),
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("250ms", 0.25),
            ("2m3s", 123.0),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs_f64(secs)), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_positive_duration_is_refused_with_the_accepted_forms() {
        for text in ["", "0", "0s", "5x", "m", "-5s", "1..5s", "5 m"] {
            let err = parse(text).expect_err(text);
            assert!(
                err.contains("not a duration") || err.contains("longer than 0s"),
                "{text}: {err}"
            );
        }
    }
}
