//! Durations on the command line, written as kubectl and Go write them (`90s`, `5m`, `1h30m`, `1.5h`,
//! `250ms`; Go's syntax is homelab-goyaml's) or as plain seconds (`90`).

use std::time::Duration;

/// Parses a positive duration for a clap `value_parser`; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let nanos = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(|secs| i128::from(secs) * 1_000_000_000)
            .map_err(|e| format!("{text:?}: {e}"))?
    } else {
        homelab_goyaml::duration::parse(text).ok_or_else(|| {
            format!("{text:?} is not a duration: write it as 90s, 5m, 1h30m or 250ms")
        })?
    };
    if nanos <= 0 {
        return Err(format!("{text:?}: the duration must be longer than 0s"));
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("{text:?} is longer than this program can wait"))
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
