//! libyaml's scalar analysis as go-yaml has it: which characters are printable, line breaks and blanks,
//! which output styles can carry a given string, the style go-yaml picks for it, and its double-quoted form.

/// libyaml's `is_printable` as go-yaml has it (astral-plane characters count as not printable).
pub fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}
/// A YAML 1.1 line break: go-yaml treats U+0085, U+2028 and U+2029 like `\n`.
pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}
/// Space or tab.
pub fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Which styles can write a scalar so that it reads back unchanged (go-yaml's `scalar_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analysis {
    /// It holds a line break.
    pub multiline: bool,
    /// Plain style inside a flow collection.
    pub flow_plain: bool,
    /// Plain style in block context.
    pub block_plain: bool,
    /// Single-quoted style.
    pub single: bool,
    /// Literal or folded block style.
    pub block: bool,
}

/// go-yaml's `yaml_emitter_analyze_scalar`.
pub fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let mut f = Scan::default();
    if value.starts_with("---") || value.starts_with("...") {
        f.block_ind = true;
        f.flow_ind = true;
    }
    // One pass with a one-character lookahead: this runs for every value sops writes (3.7 MB of `ENC[…]`
    // text for a 1 MB file). ASCII text, nearly all of it, is walked as bytes without UTF-8 decoding; the
    // loop body is the same for both, so the two cannot disagree.
    if value.is_ascii() {
        if !scan_graphic(value.as_bytes(), &mut f) {
            scan_ascii(value.as_bytes(), &mut f);
        }
    } else {
        scan(value.chars(), &mut f, true);
    }
    f.finish()
}

/// What one pass over a scalar's characters found (the fields of libyaml's `analyze_scalar`).
#[derive(Default, Debug, PartialEq)]
struct Scan {
    flow_ind: bool,
    block_ind: bool,
    line_breaks: bool,
    special: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
}

/// A character that, after the first position, changes nothing but the "previous was space/break/blank"
/// state: printable ASCII other than space and the flow/comment indicators.
fn is_inert(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, ',' | '?' | '[' | ']' | '{' | '}' | ':' | '#')
}

/// The state carried from one character to the next.
struct Walker {
    prev_space: bool,
    prev_break: bool,
    preceded_by_ws: bool,
    first: bool,
}

impl Walker {
    fn new() -> Walker {
        Walker {
            prev_space: false,
            prev_break: false,
            preceded_by_ws: true,
            first: true,
        }
    }

    /// After an [`is_inert`] character that is not the first.
    fn inert(&mut self) {
        self.prev_space = false;
        self.prev_break = false;
        self.preceded_by_ws = false;
    }
}

/// One character `c`, followed by `next`.
fn step(c: char, next: Option<char>, w: &mut Walker, f: &mut Scan) {
    let last = next.is_none();
    let followed_by_ws = next.is_none_or(is_blank);
    if w.first {
        match c {
            '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
            | '@' | '`' => {
                f.flow_ind = true;
                f.block_ind = true;
            }
            '?' | ':' => {
                f.flow_ind = true;
                if followed_by_ws {
                    f.block_ind = true;
                }
            }
            '-' if followed_by_ws => {
                f.flow_ind = true;
                f.block_ind = true;
            }
            _ => {}
        }
    } else {
        match c {
            ',' | '?' | '[' | ']' | '{' | '}' => f.flow_ind = true,
            ':' => {
                f.flow_ind = true;
                if followed_by_ws {
                    f.block_ind = true;
                }
            }
            '#' if w.preceded_by_ws => {
                f.flow_ind = true;
                f.block_ind = true;
            }
            _ => {}
        }
    }
    if !is_printable(c) {
        f.special = true;
    }
    if c == ' ' {
        if w.first {
            f.leading_space = true;
        }
        if last {
            f.trailing_space = true;
        }
        if w.prev_break {
            f.break_space = true;
        }
        w.prev_space = true;
        w.prev_break = false;
    } else if is_break(c) {
        f.line_breaks = true;
        if w.first {
            f.leading_break = true;
        }
        if last {
            f.trailing_break = true;
        }
        if w.prev_space {
            f.space_break = true;
        }
        w.prev_space = false;
        w.prev_break = true;
    } else {
        w.prev_space = false;
        w.prev_break = false;
    }
    w.preceded_by_ws = is_blank(c) || is_break(c);
    w.first = false;
}

/// `skip_inert` takes the shortcut for [`is_inert`] characters; the tests compare it with the full path.
fn scan(chars: impl Iterator<Item = char>, f: &mut Scan, skip_inert: bool) {
    let mut w = Walker::new();
    let mut chars = chars.peekable();
    while let Some(c) = chars.next() {
        if skip_inert && !w.first && is_inert(c) {
            w.inert();
            continue;
        }
        step(c, chars.peek().copied(), &mut w, f);
    }
}

/// [`scan`] for ASCII text: runs of inert bytes are skipped in a tight loop, the rest take the full step.
fn scan_ascii(b: &[u8], f: &mut Scan) {
    let mut w = Walker::new();
    let mut i = 0;
    while i < b.len() {
        if i > 0 {
            let run = inert_run(&b[i..]);
            if run > 0 {
                w.inert();
                i += run;
                continue;
            }
        }
        step(
            char::from(b[i]),
            b.get(i + 1).map(|&n| char::from(n)),
            &mut w,
            f,
        );
        i += 1;
    }
}

/// [`scan_ascii`] for text of printable ASCII without spaces (every `ENC[…]` value sops writes): such
/// text has no blank, break or special character, so only the indicators matter, and those are found in
/// one branch-free pass the compiler vectorises. Returns `false`, leaving `f` alone, for any other text.
fn scan_graphic(b: &[u8], f: &mut Scan) -> bool {
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    let graphic = |c: u8| (c > b' ') & (c < 0x7f);
    let flow = |c: u8| {
        (c == b',')
            | (c == b'?')
            | (c == b'[')
            | (c == b']')
            | (c == b'{')
            | (c == b'}')
            | (c == b':')
    };
    let (mut all_graphic, mut any_flow) = (graphic(first), false);
    let rest = &b[1..];
    let chunks = rest.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        let (g, fl) = chunk
            .iter()
            .fold((true, false), |(g, fl), &c| (g & graphic(c), fl | flow(c)));
        all_graphic &= g;
        any_flow |= fl;
    }
    for &c in tail {
        all_graphic &= graphic(c);
        any_flow |= flow(c);
    }
    if !all_graphic {
        return false;
    }
    // The first character, as `step` takes it: with no blank anywhere, "followed by whitespace" means
    // "is the last character".
    let alone = b.len() == 1;
    match first {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => {
            f.flow_ind = true;
            f.block_ind = true;
        }
        b'?' | b':' => {
            f.flow_ind = true;
            f.block_ind |= alone;
        }
        b'-' if alone => {
            f.flow_ind = true;
            f.block_ind = true;
        }
        _ => {}
    }
    // After it: a flow indicator anywhere; `: ` only as the last character; `#` never (it needs a
    // blank before it).
    f.flow_ind |= any_flow;
    f.block_ind |= !alone && last == b':';
    true
}

/// How many bytes at the start of `b` are [`is_inert`]. Whole 16-byte chunks are tested with a
/// branch-free reduction the compiler vectorises: the base64 in sops's `ENC[…]` values is long runs of
/// inert bytes, and a byte-at-a-time search was a fifth of encrypting a large file.
fn inert_run(b: &[u8]) -> usize {
    const CHUNK: usize = 16;
    let mut run = 0;
    for chunk in b.chunks_exact(CHUNK) {
        let stops = chunk.iter().fold(false, |acc, &c| acc | !inert_byte(c));
        if stops {
            break;
        }
        run += CHUNK;
    }
    run + b[run..]
        .iter()
        .position(|&c| !inert_byte(c))
        .unwrap_or(b.len() - run)
}

/// [`is_inert`] for a byte, written as comparisons only so a reduction over it vectorises.
fn inert_byte(c: u8) -> bool {
    (c > b' ')
        & (c < 0x7f)
        & (c != b',')
        & (c != b'?')
        & (c != b'[')
        & (c != b']')
        & (c != b'{')
        & (c != b'}')
        & (c != b':')
        & (c != b'#')
}

impl Scan {
    fn finish(self) -> Analysis {
        let Scan {
            flow_ind,
            block_ind,
            line_breaks,
            special,
            leading_space,
            leading_break,
            trailing_space,
            trailing_break,
            break_space,
            space_break,
        } = self;
        let mut a = Analysis {
            multiline: line_breaks,
            flow_plain: true,
            block_plain: true,
            single: true,
            block: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            a.flow_plain = false;
            a.block_plain = false;
        }
        if trailing_space {
            a.block = false;
        }
        if break_space {
            a.flow_plain = false;
            a.block_plain = false;
            a.single = false;
        }
        if space_break || special {
            a.flow_plain = false;
            a.block_plain = false;
            a.single = false;
            a.block = false;
        }
        if line_breaks {
            a.flow_plain = false;
            a.block_plain = false;
        }
        if flow_ind {
            a.flow_plain = false;
        }
        if block_ind {
            a.block_plain = false;
        }
        a
    }
}

/// The style go-yaml writes a string scalar in.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's encoder style (`stringv`) followed by the emitter's `select_scalar_style`. `resolves_as_string`
/// says whether the string, written plain, would read back as that same string (the caller's resolver:
/// not a bool, number, null or timestamp).
pub fn choose_style(s: &str, is_key: bool, resolves_as_string: bool) -> Style {
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if resolves_as_string {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    if is_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain || (s.is_empty() && is_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block || is_key) {
        style = Style::Double;
    }
    style
}

/// Writes the string `s` as go-yaml v3 does (as sops and talosctl use it): in the style [`choose_style`]
/// picks, a literal block's lines indented by `block_indent` columns, its indentation indicator being
/// `indicator` (written when the text starts with a space or a line break).
pub fn write_string(
    out: &mut String,
    s: &str,
    is_key: bool,
    resolves_as_string: bool,
    block_indent: usize,
    indicator: usize,
) {
    match choose_style(s, is_key, resolves_as_string) {
        Style::Plain => out.push_str(s),
        Style::Single => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Style::Double => write_double_quoted(out, s),
        Style::Literal => write_literal(out, s, block_indent, indicator),
    }
}

/// libyaml's literal block writer: `|`, the indentation indicator when the text starts with a space or a
/// line break, the chomping indicator (`-` without a final line break, `+` with more than one), then each
/// line indented by `indent` columns (empty lines left empty).
pub fn write_literal(out: &mut String, s: &str, indent: usize, indicator: usize) {
    out.push('|');
    if matches!(s.chars().next(), Some(' ' | '\n')) {
        out.push_str(&indicator.to_string());
    }
    let b = s.as_bytes();
    if !s.ends_with('\n') {
        out.push('-');
    } else if b.len() == 1 || b[b.len() - 2] == b'\n' {
        out.push('+');
    }
    out.push('\n');
    for (k, line) in s.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
}

/// libyaml's double-quoted writer, without line folding (go-yaml v3 as sops and talosctl use it never wraps).
pub fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    let bom_first = s.starts_with('\u{FEFF}');
    for c in s.chars() {
        if needs_escape(c, bom_first) {
            push_escape(out, c);
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

/// Whether libyaml writes `c` as an escape inside a double-quoted scalar: not printable (a byte-order
/// mark included), a line break, `"` or `\` — or any character at all of a scalar that starts with a
/// byte-order mark (`bom_first`): go-yaml's `is_bom(value, i)` looks at the start of the value, not at
/// `i`, so such a string is written escape by escape. Emitters that fold long lines write character by
/// character with this and [`push_escape`].
pub fn needs_escape(c: char, bom_first: bool) -> bool {
    bom_first || !is_printable(c) || is_break(c) || c == '"' || c == '\\'
}

/// Appends libyaml's escape for `c` (`\n`, `\x07`, `\u2028`, …): always ASCII, one byte per column.
pub fn push_escape(out: &mut String, c: char) {
    out.push('\\');
    match c {
        '\0' => out.push('0'),
        '\u{7}' => out.push('a'),
        '\u{8}' => out.push('b'),
        '\t' => out.push('t'),
        '\n' => out.push('n'),
        '\u{b}' => out.push('v'),
        '\u{c}' => out.push('f'),
        '\r' => out.push('r'),
        '\u{1b}' => out.push('e'),
        '"' => out.push('"'),
        '\\' => out.push('\\'),
        '\u{85}' => out.push('N'),
        '\u{a0}' => out.push('_'),
        '\u{2028}' => out.push('L'),
        '\u{2029}' => out.push('P'),
        _ => {
            let u = c as u32;
            if u <= 0xFF {
                out.push_str(&format!("x{u:02X}"));
            } else if u <= 0xFFFF {
                out.push_str(&format!("u{u:04X}"));
            } else {
                out.push_str(&format!("U{u:08X}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s, false, true, 4, 4);
        out
    }

    #[test]
    fn strings_are_written_as_go_yaml_v3_writes_them() {
        assert_eq!(written("hello world"), "hello world");
        assert_eq!(written("a: b"), "'a: b'");
        assert_eq!(written("'x"), "'''x'");
        assert_eq!(written("tab\there"), "\"tab\\there\"");
        assert_eq!(written("line1\nline2"), "|-\n    line1\n    line2");
        assert_eq!(written("trail\n\n"), "|+\n    trail\n\n");
        assert_eq!(written("one\n"), "|\n    one\n");
        assert_eq!(written("  lead\nx"), "|4-\n      lead\n    x");
        assert_eq!(written("\nfirst empty\n"), "|4\n\n    first empty\n");
        assert_eq!(written("a\n\nb"), "|-\n    a\n\n    b");
        let mut key = String::new();
        write_string(&mut key, "multi\nline", true, true, 4, 4);
        assert_eq!(key, "\"multi\\nline\"", "a key is never a block");
    }

    #[test]
    fn styles_follow_go_yaml() {
        let plain = analyze("hello world");
        assert!(plain.block_plain && plain.flow_plain && !plain.multiline);
        assert!(!analyze("a: b").block_plain);
        assert!(analyze("a:b").block_plain && !analyze("a:b").flow_plain);
        assert!(!analyze(" lead").block_plain);
        let trailing = analyze("x ");
        assert!(!trailing.block && trailing.single);
        let lines = analyze("a\nb");
        assert!(lines.multiline && lines.block && !lines.block_plain);
        assert!(
            !analyze("a \nb").single,
            "space before a break rules out single quotes"
        );
        assert!(
            !analyze("bell\u{7}").single,
            "a non-printable forces double quotes"
        );
        assert!(analyze("\u{2028}").multiline);
        assert!(!analyze("--- x").block_plain);
    }

    proptest::proptest! {
        #[test]
        fn the_inert_shortcut_and_the_byte_walk_change_nothing(
            s in "[a-z0-9 \\t\\n:#,?\\[\\]{}'\"&*!|>%@`.-]{0,12}|.{0,6}|[A-Za-z0-9+/=]{0,40}[:,\\]# ]?[A-Za-z0-9+/=]{0,40}|[!-~]{1,40}|[-?:.]{1,4}[a-z]{0,2}"
        ) {
            let mut full = Scan::default();
            scan(s.chars(), &mut full, false);
            let mut fast = Scan::default();
            if s.is_ascii() {
                scan_ascii(s.as_bytes(), &mut fast);
            } else {
                scan(s.chars(), &mut fast, true);
            }
            proptest::prop_assert_eq!(&full, &fast);
            let mut graphic = Scan::default();
            if scan_graphic(s.as_bytes(), &mut graphic) {
                proptest::prop_assert_eq!(&full, &graphic);
            } else {
                proptest::prop_assert!(s.bytes().any(|c| !c.is_ascii_graphic()) || s.is_empty());
            }
        }
    }

    #[test]
    fn the_byte_test_for_inert_agrees_with_the_char_test() {
        for c in 0..=u8::MAX {
            assert_eq!(
                inert_byte(c),
                c.is_ascii() && is_inert(char::from(c)),
                "{c}"
            );
        }
        let s = "ENC[AES256_GCM,data:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=,iv:x,tag:y,type:str]";
        let b = s.as_bytes();
        for i in 0..b.len() {
            let expected = b[i..]
                .iter()
                .position(|&c| !inert_byte(c))
                .unwrap_or(b.len() - i);
            assert_eq!(inert_run(&b[i..]), expected, "from {i}");
        }
    }

    #[test]
    fn double_quoted_escapes_like_libyaml() {
        let quoted = |s: &str| {
            let mut out = String::new();
            write_double_quoted(&mut out, s);
            out
        };
        assert_eq!(quoted("a\"b\\\n\u{7}\u{2028}"), r#""a\"b\\\n\a\L""#);
        assert_eq!(quoted("x\u{FEFF}"), r#""x\uFEFF""#);
        // go-yaml's is_bom checks the start of the value: every character of it is escaped.
        assert_eq!(quoted("\u{FEFF}ab"), r#""\uFEFF\x61\x62""#);
    }
}
