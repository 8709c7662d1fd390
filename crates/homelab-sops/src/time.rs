//! Timestamps the way sops sees them: go-yaml v3's implicit timestamp forms, Go's RFC 3339 parser, and
//! `time.Time.MarshalText` (RFC 3339 with trimmed nanoseconds) as the canonical text.

/// A parsed timestamp; `offset` is minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stamp {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset: i32,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok());
    match (month, i32::try_from(year)) {
        (Some(m), Ok(y)) => u32::from(m.length(y)),
        _ => 0,
    }
}

/// Parses `[.frac]` then the zone. `zone` = whether a zone is required (`Z`/`±hh:mm`) or forbidden.
fn parse_tail(c: &mut Cursor, zone: bool) -> Option<(u32, i32)> {
    let mut nanos = 0u32;
    if c.eat(b'.') || c.eat(b',') {
        let start = c.i;
        while c.i < c.s.len() && c.s[c.i].is_ascii_digit() {
            c.i += 1;
        }
        let digits = &c.s[start..c.i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let mut n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        for _ in digits.len()..9 {
            n *= 10;
        }
        nanos = n;
    }
    if !zone {
        return c.done().then_some((nanos, 0));
    }
    let offset = if c.eat(b'Z') {
        0
    } else {
        let sign = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return None;
        };
        let h = c.num(2, 2)?;
        if !c.eat(b':') {
            return None;
        }
        let m = c.num(2, 2)?;
        if h > 23 || m > 59 {
            return None;
        }
        sign * (h as i32 * 60 + m as i32)
    };
    c.done().then_some((nanos, offset))
}

fn valid(st: &Stamp) -> bool {
    (1..=12).contains(&st.month)
        && st.day >= 1
        && st.day <= days_in_month(st.year, st.month)
        && st.hour < 24
        && st.minute < 60
        && st.second < 60
        && (0..=9999).contains(&st.year)
}

/// go-yaml v3 `parseTimestamp`: `2006-1-2T15:4:5.999999999Z07:00` (also lower-case `t`),
/// `2006-1-2 15:4:5.999999999` (UTC) and `2006-1-2`. Returns the canonical MarshalText form.
pub fn parse_yaml_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut c = Cursor { s: b, i: 0 };
    let year = i64::from(c.num(4, 4)?);
    c.eat(b'-');
    let month = c.num(1, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.num(1, 2)?;
    let mut st = Stamp {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    if !c.done() {
        let zone = if c.eat(b'T') || c.eat(b't') {
            true
        } else if c.eat(b' ') {
            false
        } else {
            return None;
        };
        st.hour = c.num(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        st.minute = c.num(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        st.second = c.num(1, 2)?;
        let (nanos, offset) = parse_tail(&mut c, zone)?;
        st.nanos = nanos;
        st.offset = offset;
    }
    valid(&st).then(|| format_stamp(&st))
}

/// Go `time.Parse(time.RFC3339, s)` followed by `MarshalText`.
pub fn parse_rfc3339(s: &str) -> Option<String> {
    parse_rfc3339_stamp(s).map(|st| format_stamp(&st))
}

/// Go `time.Parse(time.RFC3339, s)` followed by `Format(time.RFC3339)` (seconds precision): the MAC's AAD.
pub fn rfc3339_seconds(s: &str) -> Option<String> {
    parse_rfc3339_stamp(s).map(|st| format_stamp(&Stamp { nanos: 0, ..st }))
}

fn parse_rfc3339_stamp(s: &str) -> Option<Stamp> {
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let year = i64::from(c.num(4, 4)?);
    let mut st = Stamp {
        year,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    let ok = c.eat(b'-')
        && c.num(2, 2).map(|m| st.month = m).is_some()
        && c.eat(b'-')
        && c.num(2, 2).map(|d| st.day = d).is_some()
        && c.eat(b'T')
        && c.num(2, 2).map(|h| st.hour = h).is_some()
        && c.eat(b':')
        && c.num(2, 2).map(|m| st.minute = m).is_some()
        && c.eat(b':')
        && c.num(2, 2).map(|x| st.second = x).is_some();
    if !ok {
        return None;
    }
    let (nanos, offset) = parse_tail(&mut c, true)?;
    st.nanos = nanos;
    st.offset = offset;
    valid(&st).then_some(st)
}

fn format_stamp(st: &Stamp) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        st.year, st.month, st.day, st.hour, st.minute, st.second
    );
    if st.nanos > 0 {
        let frac = format!("{:09}", st.nanos);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if st.offset == 0 {
        out.push('Z');
    } else {
        let sign = if st.offset < 0 { '-' } else { '+' };
        let o = st.offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", o / 60, o % 60));
    }
    out
}

/// The current time as sops writes `lastmodified`: UTC, second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format_stamp(&Stamp {
        year: i64::from(now.year()),
        month: u32::from(u8::from(now.month())),
        day: u32::from(now.day()),
        hour: u32::from(now.hour()),
        minute: u32::from(now.minute()),
        second: u32::from(now.second()),
        nanos: 0,
        offset: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_timestamps_normalise_like_go_yaml() {
        assert_eq!(
            parse_yaml_timestamp("2024-01-02").as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
        assert_eq!(
            parse_yaml_timestamp("2024-01-02T03:04:05Z").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            parse_yaml_timestamp("2024-1-2 3:4:5.50").as_deref(),
            Some("2024-01-02T03:04:05.5Z")
        );
        assert_eq!(
            parse_yaml_timestamp("2024-01-02T03:04:05+02:00").as_deref(),
            Some("2024-01-02T03:04:05+02:00")
        );
        assert_eq!(parse_yaml_timestamp("2024-02-30"), None);
        assert_eq!(parse_yaml_timestamp("2024-01-02x"), None);
    }

    #[test]
    fn mac_aad_drops_fraction_and_normalises_utc() {
        assert_eq!(
            rfc3339_seconds("2026-11-25T19:39:39.5Z").as_deref(),
            Some("2026-11-25T19:39:39Z")
        );
        assert_eq!(
            rfc3339_seconds("2026-11-25T19:39:39+00:00").as_deref(),
            Some("2026-11-25T19:39:39Z")
        );
        assert_eq!(
            rfc3339_seconds("2026-11-25T19:39:39+02:00").as_deref(),
            Some("2026-11-25T19:39:39+02:00")
        );
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(rfc3339_seconds(&now), Some(now));
    }
}
