//! Go's duration syntax, as Talos' config encoder and kubectl read and write it: `time.ParseDuration`
//! ([`parse`], in nanoseconds) and `time.Duration.String` ([`format`]).

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int: i128 = if int_len == 0 {
            0
        } else {
            rest[..int_len].parse().ok()?
        };
        rest = &rest[int_len..];
        let (mut frac, mut scale) = (0i128, 1i128);
        if let Some(after) = rest.strip_prefix('.') {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            for d in after[..n].bytes().take(18) {
                frac = frac * 10 + i128::from(d - b'0');
                scale *= 10;
            }
            if int_len == 0 && n == 0 {
                return None;
            }
            rest = &after[n..];
        } else if int_len == 0 {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += int * unit + frac * unit / scale;
    }
    Some(if neg { -total } else { total })
}

/// Go's `time.Duration.String()`.
pub fn format(ns: i128) -> String {
    fn frac(v: u128, prec: u32) -> (String, u128) {
        let pow = 10u128.pow(prec);
        let (int, f) = (v / pow, v % pow);
        if f == 0 {
            return (String::new(), int);
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        (format!(".{}", digits.trim_end_matches('0')), int)
    }
    if ns == 0 {
        return "0s".into();
    }
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, prec) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        let (f, int) = frac(u, prec);
        format!("{int}{f}{unit}")
    } else {
        let (f, secs) = frac(u, 9);
        let (s, mins) = (secs % 60, secs / 60);
        let (m, h) = (mins % 60, mins / 60);
        match (h, mins) {
            (0, 0) => format!("{s}{f}s"),
            (0, _) => format!("{m}m{s}{f}s"),
            _ => format!("{h}h{m}m{s}{f}s"),
        }
    };
    if ns < 0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_as_go_does() {
        for (input, want) in [
            ("30s", "30s"),
            ("1m", "1m0s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1500us", "1.5ms"),
            ("0", "0s"),
            ("-2m3s", "-2m3s"),
            ("2h45m", "2h45m0s"),
        ] {
            let ns = parse(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(format(ns), want, "{input}");
        }
        assert!(parse("5").is_none());
        assert!(parse("1x").is_none());
    }
}
