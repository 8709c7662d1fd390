//! gitleaks' decoding passes (its `detect/codec`): find percent, unicode, hex and base64 encoded runs in a
//! fragment, decode them in place, and map a match in the decoded text back to the original bytes, with the
//! `decoded:<kind>` / `decode-depth:<n>` tags gitleaks reports.
//!
//! Offsets are kept as gitleaks keeps them (signed, inclusive overlap tests, a whole previous pass as the
//! predecessors of every segment) because findings' line numbers and tags depend on those details.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regex::bytes::Regex;

/// gitleaks' default `--max-decode-depth`.
pub const DEFAULT_MAX_DECODE_DEPTH: usize = 5;

/// A half-open byte range with gitleaks' `startEnd` arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: isize,
    pub end: isize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as isize,
            end: end as isize,
        }
    }
    /// Inclusive at both ends, like gitleaks (touching ranges overlap).
    fn overlaps(self, o: Span) -> bool {
        o.start <= self.end && o.end >= self.start
    }
    fn contains(self, o: Span) -> bool {
        self.start <= o.start && o.end <= self.end
    }
    fn merge(self, o: Span) -> Span {
        Span {
            start: self.start.min(o.start),
            end: self.end.max(o.end),
        }
    }
    fn add(self, o: Span) -> Span {
        Span {
            start: self.start + o.start,
            end: self.end + o.end,
        }
    }
    fn sub(self, o: Span) -> Span {
        Span {
            start: self.start - o.start,
            end: self.end - o.end,
        }
    }
    /// How far `o` reaches outside `self`.
    fn overflow(self, o: Span) -> Span {
        self.merge(o).sub(self)
    }
}

/// Encoding kinds as bit flags, in gitleaks' order (which is also its tag order).
const PERCENT: u8 = 1;
const UNICODE: u8 = 2;
const HEX: u8 = 4;
const BASE64: u8 = 8;
const KIND_NAMES: [&str; 4] = ["percent", "unicode", "hex", "base64"];
/// Precedence when two matches touch: earlier in the list wins.
const KINDS: [u8; 4] = [PERCENT, UNICODE, HEX, BASE64];

/// gitleaks' combined encodings regex, one capture group per kind. `(?-u)`: Go's `\w`, `\s` are ASCII.
static ENCODINGS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?-u)(%[0-9A-Fa-f]{2}(?:.*%[0-9A-Fa-f]{2})?)",
        r"|((?:(?:U\+[a-fA-F0-9]{4}(?:\s|$))+|(?i)(?:\\{1,2}u[a-fA-F0-9]{4})+))",
        r"|([0-9A-Fa-f]{32,})",
        r"|([\w/+-]{16,}={0,2})",
    ))
    .ok()
});

/// One decoded run of one pass.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Where the run sits in the fragment's original bytes.
    original: Span,
    /// Where the run sat in the previous pass's text.
    encoded: Span,
    /// Where the decoded bytes sit in this pass's text.
    decoded: Span,
    encodings: u8,
    depth: usize,
}

/// The segments of every pass so far; `passes[k]` are the predecessors of every segment of pass `k + 1`.
#[derive(Debug, Default)]
pub(crate) struct Passes {
    passes: Vec<Vec<Segment>>,
    /// Decoded values by encoded text (gitleaks' `decodedMap`), shared by all passes of a fragment.
    cache: HashMap<Vec<u8>, Vec<u8>>,
}

impl Passes {
    /// The segments of the last pass (empty before the first decode).
    pub(crate) fn current(&self) -> &[Segment] {
        self.passes.last().map_or(&[], Vec::as_slice)
    }

    /// Decodes `data` one more level. Returns the new text, or `None` when nothing decoded (the scan stops).
    pub(crate) fn decode(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let matches = find_encoding_matches(data);
        let level = self.passes.len();
        let mut segments = Vec::with_capacity(matches.len());
        let mut shift: isize = 0;
        let mut decoded_values = Vec::with_capacity(matches.len());
        for (kind, start, end) in matches {
            let encoded = &data[start..end];
            let value = match self.cache.get(encoded) {
                Some(v) => v.clone(),
                None => {
                    let v = decode_kind(kind, encoded);
                    self.cache.insert(encoded.to_vec(), v.clone());
                    v
                }
            };
            if value.is_empty() {
                continue;
            }
            let span = Span::new(start, end);
            let predecessors = self.current();
            let mut seg = Segment {
                original: to_original(
                    &self.passes,
                    level.saturating_sub(1),
                    &all(predecessors),
                    span,
                ),
                encoded: span,
                decoded: Span {
                    start: span.start + shift,
                    end: span.start + shift + value.len() as isize,
                },
                encodings: kind,
                depth: 1,
            };
            shift += value.len() as isize - (end - start) as isize;
            if let Some(first) = predecessors.first() {
                seg.depth = 1 + first.depth;
                for p in predecessors {
                    if seg.encoded.overlaps(p.decoded) {
                        seg.encodings |= p.encodings;
                    }
                }
            }
            segments.push(seg);
            decoded_values.push((start, end, value));
        }
        if segments.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(data.len());
        let mut at = 0;
        for (start, end, value) in &decoded_values {
            out.extend_from_slice(&data[at..*start]);
            out.extend_from_slice(value);
            at = *end;
        }
        out.extend_from_slice(&data[at..]);
        self.passes.push(segments);
        Some(out)
    }

    /// The segments of the last pass whose decoded bytes touch `[start, end)`; empty means the match lies
    /// in text an earlier pass already scanned.
    pub(crate) fn overlapping(&self, start: usize, end: usize) -> Vec<&Segment> {
        let se = Span::new(start, end);
        self.current()
            .iter()
            .filter(|s| s.decoded.overlaps(se))
            .collect()
    }

    /// gitleaks' `AdjustMatchIndex`: the match's range in the original fragment.
    pub(crate) fn adjust(&self, segments: &[&Segment], start: usize, end: usize) -> (usize, usize) {
        let level = self.passes.len().saturating_sub(1);
        let s = to_original(&self.passes, level, segments, Span::new(start, end));
        (s.start.max(0) as usize, s.end.max(0) as usize)
    }
}

fn all(segments: &[Segment]) -> Vec<&Segment> {
    segments.iter().collect()
}

/// gitleaks' `toOriginal`: `list` is part of pass `level`, whose own predecessors are the whole pass
/// `level - 1`.
fn to_original(passes: &[Vec<Segment>], level: usize, list: &[&Segment], decoded: Span) -> Span {
    if list.is_empty() {
        return decoded;
    }
    let mut encoded = Span { start: 0, end: 0 };
    for p in list {
        if !p.decoded.overlaps(decoded) {
            continue;
        }
        if p.decoded.contains(decoded) {
            return p.original;
        }
        let up = p.encoded.add(p.decoded.overflow(decoded));
        encoded = if encoded.end == 0 {
            up
        } else {
            encoded.merge(up)
        };
    }
    if encoded.end == 0 {
        return decoded;
    }
    match level.checked_sub(1) {
        Some(prev) => to_original(passes, prev, &all(&passes[prev]), encoded),
        None => encoded,
    }
}

/// gitleaks' `Tags`: `decoded:<kind>` for each kind involved, then `decode-depth:<n>`.
pub(crate) fn tags(segments: &[&Segment]) -> Vec<String> {
    let Some(first) = segments.first() else {
        return Vec::new();
    };
    let kinds = segments.iter().fold(0u8, |k, s| k | s.encodings);
    let mut tags: Vec<String> = KINDS
        .iter()
        .zip(KIND_NAMES)
        .filter(|(k, _)| kinds & **k != 0)
        .map(|(_, name)| format!("decoded:{name}"))
        .collect();
    tags.push(format!("decode-depth:{}", first.depth));
    tags
}

/// gitleaks' `CurrentLine`: from the newline before the decoded runs (included) to the newline after.
pub(crate) fn current_line<'a>(segments: &[&Segment], raw: &'a [u8]) -> &'a [u8] {
    let Some(first) = segments.first() else {
        return raw;
    };
    let decoded = segments[1..]
        .iter()
        .fold(first.decoded, |d, s| d.merge(s.decoded));
    let mut start = 0;
    let mut end = raw.len();
    let from = (decoded.start.max(0) as usize).min(raw.len().saturating_sub(1));
    for i in (0..=from).rev() {
        if raw.get(i) == Some(&b'\n') {
            start = i;
            break;
        }
    }
    for (i, b) in raw.iter().enumerate().skip(decoded.end.max(0) as usize) {
        if *b == b'\n' {
            end = i;
            break;
        }
    }
    &raw[start..end.max(start)]
}

/// gitleaks' `findEncodingMatches`: matches of the combined regex, dropping a match that touches a
/// neighbour of higher precedence.
fn find_encoding_matches(data: &[u8]) -> Vec<(u8, usize, usize)> {
    let Some(re) = ENCODINGS.as_ref() else {
        return Vec::new();
    };
    let all: Vec<(u8, usize, usize)> = re
        .find_iter(data)
        .filter_map(|m| Some((kind_of_match(re, data, m)?, m.start(), m.end())))
        .collect();
    if all.len() == 1 {
        return all;
    }
    // Precedence is the reverse of the order: percent highest.
    let precedence = |k: u8| 4 - KINDS.iter().position(|x| *x == k).unwrap_or(3);
    let touch = |a: &(u8, usize, usize), b: &(u8, usize, usize)| {
        Span::new(a.1, a.2).overlaps(Span::new(b.1, b.2))
    };
    let mut out = Vec::with_capacity(all.len());
    for (i, m) in all.iter().enumerate() {
        if i > 0 {
            let prev = &all[i - 1];
            if touch(m, prev) && precedence(prev.0) > precedence(m.0) {
                continue;
            }
        }
        if let Some(next) = all.get(i + 1)
            && touch(m, next)
            && precedence(next.0) > precedence(m.0)
        {
            continue;
        }
        out.push(*m);
    }
    out
}

/// Which alternative of [`ENCODINGS`] produced `m`: the first one that matches where `m` starts
/// (leftmost-first), told from the match's bytes because asking the regex for capture groups costs a
/// slower engine on every match, and most fragments hold many base64-like runs (paths, names).
fn kind_of_match(re: &Regex, data: &[u8], m: regex::bytes::Match<'_>) -> Option<u8> {
    let text = m.as_bytes();
    Some(match text.first()? {
        // Only the percent alternative starts with `%`, only the escaped unicode one with `\`.
        b'%' => PERCENT,
        b'\\' => UNICODE,
        // `U+XXXX` and a base64 run can both start here; let the regex say.
        b'U' => {
            let c = re.captures_at(data, m.start())?;
            (1..=4).find_map(|g| c.get(g).map(|_| KINDS[g - 1]))?
        }
        // The hex alternative matches here exactly when 32 or more hex digits follow, and then takes all
        // of them; a base64 match cannot be 32 hex digits and nothing else.
        _ if text.len() >= 32 && text.iter().all(u8::is_ascii_hexdigit) => HEX,
        _ => BASE64,
    })
}

fn decode_kind(kind: u8, encoded: &[u8]) -> Vec<u8> {
    match kind {
        PERCENT => decode_percent(encoded),
        UNICODE => decode_unicode(encoded),
        HEX => decode_hex(encoded),
        _ => decode_base64(encoded),
    }
}

/// Go's printable-ASCII test in the codecs: tab through `~`.
fn printable(b: u8) -> bool {
    b > 0x08 && b < 0x7f
}

fn hex_nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// gitleaks' `decodePercent`: `%XX` escapes must decode to printable ASCII, anything else is copied.
fn decode_percent(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'%'
            && i + 2 < encoded.len()
            && let (Some(a), Some(b)) = (hex_nibble(encoded[i + 1]), hex_nibble(encoded[i + 2]))
        {
            let byte = a << 4 | b;
            if !printable(byte) {
                return Vec::new();
            }
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(encoded[i]);
        i += 1;
    }
    out
}

/// gitleaks' `decodeHex`: even length, at least one digit, every byte printable ASCII.
fn decode_hex(encoded: &[u8]) -> Vec<u8> {
    if !encoded.len().is_multiple_of(2) || !encoded.iter().any(u8::is_ascii_digit) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(encoded.len() / 2);
    for pair in encoded.chunks_exact(2) {
        let (Some(a), Some(b)) = (hex_nibble(pair[0]), hex_nibble(pair[1])) else {
            return Vec::new();
        };
        let byte = a << 4 | b;
        if !printable(byte) {
            return Vec::new();
        }
        out.push(byte);
    }
    out
}

/// Go's `base64.StdEncoding` (padded) and `RawURLEncoding` (unpadded); both accept non-zero trailing bits.
const STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// gitleaks' `decodeBase64`: only runs holding a digit, `+`, `/`, `-` or `_`; the result must be printable.
fn decode_base64(encoded: &[u8]) -> Vec<u8> {
    if !encoded
        .iter()
        .any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'/' | b'-' | b'_'))
    {
        return Vec::new();
    }
    for engine in [&STD, &RAW_URL] {
        if let Ok(v) = engine.decode(encoded)
            && v.iter().all(|b| printable(*b))
        {
            return v;
        }
    }
    Vec::new()
}

/// gitleaks' `decodeUnicode` for what its pattern matches: a run of `U+XXXX` code points separated by
/// whitespace, or a run of `\uXXXX` / `\\uXXXX` escapes.
fn decode_unicode(encoded: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(encoded);
    let mut out = String::new();
    let push = |out: &mut String, hex: &str| {
        if let Ok(n) = u32::from_str_radix(hex, 16) {
            out.push(char::from_u32(n).unwrap_or('\u{FFFD}'));
        }
    };
    if text.starts_with("U+") {
        for cp in text.split_ascii_whitespace() {
            if let Some(hex) = cp.strip_prefix("U+").filter(|h| h.len() >= 4) {
                push(&mut out, hex);
            }
        }
    } else {
        for part in text.split(['\\']).filter(|p| !p.is_empty()) {
            if let Some(hex) = part.strip_prefix(['u', 'U']).and_then(|h| h.get(..4)) {
                push(&mut out, hex);
            }
        }
    }
    if out.is_empty() {
        return encoded.to_vec();
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(text: &str) -> (Vec<u8>, Passes) {
        let mut p = Passes::default();
        let mut cur = text.as_bytes().to_vec();
        while let Some(next) = p.decode(&cur) {
            cur = next;
        }
        (cur, p)
    }

    #[test]
    fn base64_then_nested_percent_decode() {
        // "AKIA%41BCDEFGHIJKLMNOP" percent-encoded inside base64.
        let inner = "key=%41KIAIOSFODNN7EXAMPLE";
        let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
        let (out, p) = decode_all(&format!("x {b64} y"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "x key=AKIAIOSFODNN7EXAMPLE y"
        );
        let segs: Vec<&Segment> = p.current().iter().collect();
        assert_eq!(
            tags(&segs),
            vec!["decoded:percent", "decoded:base64", "decode-depth:2"]
        );
    }

    #[test]
    fn matches_map_back_to_the_encoded_run() {
        let mut p = Passes::default();
        let text = b"a: dG9rZW4tYWJjZGVmZ2hpams= b";
        let dec = p.decode(text).expect("decodes");
        assert_eq!(dec, b"a: token-abcdefghijk b");
        let segs = p.overlapping(3, 8);
        assert_eq!(p.adjust(&segs, 3, 8), (3, 27));
        assert_eq!(current_line(&segs, &dec), b"a: token-abcdefghijk b");
    }

    #[test]
    fn percent_and_hex_follow_gitleaks() {
        assert_eq!(decode_percent(b"%41%42c"), b"ABc");
        assert!(decode_percent(b"%00%41").is_empty());
        assert_eq!(decode_hex(b"41424344"), b"ABCD");
        assert!(decode_hex(b"abcdef").is_empty());
        assert!(decode_base64(b"abcdefghijklmnop").is_empty());
    }

    /// The classification by bytes agrees with the regex's own capture groups.
    fn kinds_agree(text: &[u8]) {
        let re = ENCODINGS.as_ref().expect("compiles");
        let by_groups: Vec<(u8, usize, usize)> = re
            .captures_iter(text)
            .filter_map(|c| {
                (1..=4).find_map(|g| c.get(g).map(|m| (KINDS[g - 1], m.start(), m.end())))
            })
            .collect();
        let by_bytes: Vec<(u8, usize, usize)> = re
            .find_iter(text)
            .filter_map(|m| Some((kind_of_match(re, text, m)?, m.start(), m.end())))
            .collect();
        assert_eq!(by_bytes, by_groups, "{:?}", String::from_utf8_lossy(text));
    }

    #[test]
    fn match_kinds_from_bytes_equal_the_capture_groups() {
        for text in [
            "a %41%42 b",
            "U+0041 U+0042",
            "U+0041U+0042abcdefghijklmnop",
            r"\u0041\U0042",
            "0123456789abcdef0123456789abcdef01",
            "0123456789abcdef0123456789abcdef==",
            "0123456789abcdef0123456789abcdeg",
            "dG9rZW4tYWJjZGVmZ2hpams= apps/monitoring/grafana-values",
        ] {
            kinds_agree(text.as_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn match_kinds_from_bytes_equal_the_capture_groups_on_any_text(
            parts in proptest::collection::vec(
                "(%4[0-9a-g]|U\\+[0-9a-fA-F]{3,5}[ \n\x0b]?|\\\\u[0-9a-f]{4}|[0-9a-fA-F]{8,40}|[a-zA-Z_/+-]{1,20}|=|=|\\.|%)",
                0..12,
            )
        ) {
            kinds_agree(parts.concat().as_bytes());
        }
    }

    #[test]
    fn unicode_escapes_decode() {
        assert_eq!(decode_unicode(br"\u0041\u0042"), b"AB");
        assert_eq!(decode_unicode(b"U+0041 U+0042"), b"AB");
    }
}
