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
    let (mut block_ind, mut flow_ind, mut line_breaks, mut special) = (false, false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    if value.starts_with("---") || value.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_by_ws = true;
    // One pass with a one-character lookahead: this runs for every value sops writes, and collecting the
    // characters into a vector first made it a fifth of encrypting a large file.
    let mut chars = value.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let last = next.is_none();
        let followed_by_ws = next.is_none_or(is_blank);
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if first {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if first {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank(c) || is_break(c);
        first = false;
    }
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
