//! Translation of Go RE2 regular expressions (as written in gitleaks.toml) into Rust `regex` syntax.
//!
//! The two dialects differ where it matters for secret rules: Go's `\w \d \s \b` are ASCII-only (Rust's are
//! Unicode), Go reads a `{` that does not start a repetition as a literal, Go reads `[`, `&&`, `--`, `~~` inside
//! a class literally (Rust nests and combines classes), and Go has octal escapes and `\Q…\E` quoting.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// A Go pattern that could not be translated or compiled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("regular expression `{pattern}` is not valid RE2 syntax as Go reads it: {reason}")]
pub struct GoRegexError {
    /// The pattern as written in the configuration.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Go's `\w`, `\d`, `\s` as the bodies of ASCII classes.
const WORD: &str = "0-9A-Za-z_";
const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\f\r ";

/// Compiles a Go RE2 pattern into a Rust regex that matches the same bytes.
pub fn compile(pattern: &str) -> Result<Regex, GoRegexError> {
    build(pattern, &translate(pattern)?)
}

fn build(pattern: &str, translated: &str) -> Result<Regex, GoRegexError> {
    RegexBuilder::new(translated)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .map_err(|e| GoRegexError {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })
}

/// Checks a Go pattern as [`compile`] reads it (translation and syntax, with the same messages) without
/// building its automata; returns the translated pattern and its number of explicit capture groups.
pub fn check(pattern: &str) -> Result<(String, usize), GoRegexError> {
    let translated = translate(pattern)?;
    // The syntax `regex::bytes` accepts: Unicode-aware, matching any bytes.
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(&translated)
        .map_err(|e| GoRegexError {
            pattern: pattern.to_owned(),
            reason: regex::Error::Syntax(e.to_string()).to_string(),
        })?;
    let groups = hir.properties().explicit_captures_len();
    Ok((translated, groups))
}

/// A rule's pattern, checked when its configuration loads and compiled when a scan first needs it. A scan
/// usually runs few of gitleaks' two hundred rules (their keywords never occur), and compiling all of them
/// took a tenth of a second before the first file was read.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: String,
    translated: String,
    groups: usize,
    compiled: OnceLock<Result<Regex, GoRegexError>>,
}

impl LazyRegex {
    /// Checks `pattern` (see [`check`]); compiling waits for [`LazyRegex::get`].
    pub fn new(pattern: &str) -> Result<Self, GoRegexError> {
        let (translated, groups) = check(pattern)?;
        Ok(Self {
            pattern: pattern.to_owned(),
            translated,
            groups,
            compiled: OnceLock::new(),
        })
    }

    /// Explicit capture groups (group 0, the whole match, not counted).
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The compiled regex, compiled by the first caller; an error only for a pattern whose automaton
    /// exceeds the size limit, since its syntax was checked when it loaded.
    pub fn get(&self) -> Result<&Regex, &GoRegexError> {
        self.compiled
            .get_or_init(|| build(&self.pattern, &self.translated))
            .as_ref()
    }

    /// Why an earlier [`LazyRegex::get`] failed; `None` if it succeeded or was never called.
    pub fn failed(&self) -> Option<&GoRegexError> {
        self.compiled.get()?.as_ref().err()
    }
}

/// Rewrites a Go RE2 pattern into an equivalent Rust `regex` pattern.
pub fn translate(pattern: &str) -> Result<String, GoRegexError> {
    let err = |reason: &str| GoRegexError {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    // Position just after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    // The previous character inside a class was a literal `-`.
    let mut prev_dash = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return Err(err("trailing backslash"));
            };
            i += 2;
            if e == 'Q' {
                // Literal text up to `\E` (or the end).
                let mut j = i;
                while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                    push_literal(&mut out, chars[j]);
                    j += 1;
                }
                i = if j < chars.len() { j + 2 } else { j };
                class_start = false;
                prev_dash = false;
                continue;
            }
            if let Some(octal) = octal_escape(e, &chars, &mut i) {
                out.push_str(&format!("\\x{{{octal:X}}}"));
            } else if in_class {
                match e {
                    'w' => out.push_str(WORD),
                    'd' => out.push_str(DIGIT),
                    's' => out.push_str(SPACE),
                    'W' => out.push_str(&format!("[^{WORD}]")),
                    'D' => out.push_str(&format!("[^{DIGIT}]")),
                    'S' => out.push_str(&format!("[^{SPACE}]")),
                    _ => {
                        out.push('\\');
                        out.push(e);
                        copy_escape_argument(e, &chars, &mut i, &mut out);
                    }
                }
                // A `-` right after an expanded class is a literal in Go.
                if matches!(e, 'w' | 'd' | 's' | 'W' | 'D' | 'S')
                    && chars.get(i) == Some(&'-')
                    && chars.get(i + 1) != Some(&']')
                {
                    out.push_str("\\-");
                    i += 1;
                }
            } else {
                match e {
                    'w' => out.push_str(&format!("[{WORD}]")),
                    'd' => out.push_str(&format!("[{DIGIT}]")),
                    's' => out.push_str(&format!("[{SPACE}]")),
                    'W' => out.push_str(&format!("[^{WORD}]")),
                    'D' => out.push_str(&format!("[^{DIGIT}]")),
                    'S' => out.push_str(&format!("[^{SPACE}]")),
                    'b' => out.push_str(r"(?-u:\b)"),
                    'B' => out.push_str(r"(?-u:\B)"),
                    'C' => out.push_str(r"(?s-u:.)"),
                    _ => {
                        out.push('\\');
                        out.push(e);
                        copy_escape_argument(e, &chars, &mut i, &mut out);
                    }
                }
            }
            class_start = false;
            prev_dash = false;
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => {
                    in_class = false;
                    out.push(']');
                }
                '[' => {
                    if let Some(len) = posix_class_len(&chars[i..]) {
                        out.extend(&chars[i..i + len]);
                        i += len;
                        class_start = false;
                        prev_dash = false;
                        continue;
                    }
                    out.push_str("\\[");
                }
                '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' => {
                    let next_dash = chars.get(i + 1) == Some(&'-');
                    if next_dash || prev_dash {
                        out.push_str("\\-");
                        prev_dash = true;
                        class_start = false;
                        i += 1;
                        continue;
                    }
                    out.push('-');
                }
                _ => out.push(c),
            }
            prev_dash = false;
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                prev_dash = false;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            '{' => {
                if let Some(len) = repetition_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                    continue;
                }
                out.push_str("\\{");
            }
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err(err("missing closing ]"));
    }
    Ok(out)
}

/// Pushes `c` escaped so that it is a literal in Rust syntax.
fn push_literal(out: &mut String, c: char) {
    if regex_syntax_is_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

fn regex_syntax_is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// Go octal escapes: `\0` plus up to two octal digits, or `\1`–`\7` followed by an octal digit.
fn octal_escape(first: char, chars: &[char], i: &mut usize) -> Option<u32> {
    let is_octal = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
    match first {
        '0' => {}
        '1'..='7' if is_octal(chars.get(*i)) => {}
        _ => return None,
    }
    let mut value = first.to_digit(8)?;
    for _ in 0..2 {
        if is_octal(chars.get(*i)) {
            value = value * 8 + chars[*i].to_digit(8)?;
            *i += 1;
        } else {
            break;
        }
    }
    Some(value)
}

/// Copies the argument of escapes that take one (`\x41`, `\x{263a}`, `\pL`, `\p{Greek}`).
fn copy_escape_argument(e: char, chars: &[char], i: &mut usize, out: &mut String) {
    match e {
        'x' | 'p' | 'P' => {
            if chars.get(*i) == Some(&'{') {
                while *i < chars.len() {
                    let c = chars[*i];
                    out.push(c);
                    *i += 1;
                    if c == '}' {
                        break;
                    }
                }
            } else {
                let n = if e == 'x' { 2 } else { 1 };
                for _ in 0..n {
                    if let Some(&c) = chars.get(*i) {
                        out.push(c);
                        *i += 1;
                    }
                }
            }
        }
        _ => {}
    }
}

/// Length of a `{n}`, `{n,}` or `{n,m}` repetition at the start of `s`, if it is one.
fn repetition_len(s: &[char]) -> Option<usize> {
    let mut j = 1;
    let digits = |j: &mut usize| {
        let start = *j;
        while s.get(*j).is_some_and(char::is_ascii_digit) {
            *j += 1;
        }
        *j > start
    };
    if !digits(&mut j) {
        return None;
    }
    if s.get(j) == Some(&',') {
        j += 1;
        digits(&mut j);
    }
    (s.get(j) == Some(&'}')).then_some(j + 1)
}

/// Length of a POSIX class like `[:alpha:]` or `[:^space:]` at the start of `s`.
fn posix_class_len(s: &[char]) -> Option<usize> {
    if s.get(1) != Some(&':') {
        return None;
    }
    let mut j = 2;
    if s.get(j) == Some(&'^') {
        j += 1;
    }
    let name_start = j;
    while s.get(j).is_some_and(char::is_ascii_lowercase) {
        j += 1;
    }
    (j > name_start && s.get(j) == Some(&':') && s.get(j + 1) == Some(&']')).then_some(j + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(go: &str, hay: &str) -> bool {
        compile(go)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_match(hay.as_bytes())
    }

    #[test]
    fn perl_classes_are_ascii_only_like_go() {
        assert!(!is_match(r"^\w+$", "héllo"));
        assert!(is_match(r"^\w+$", "hello_1"));
        assert!(!is_match(r"^\d$", "٣"));
        assert!(!is_match(r"^\s$", "\u{a0}"));
        assert!(!is_match(r"^[\w.-]+$", "naïve"));
        assert!(is_match(r"^[^\W]+$", "abc"));
    }

    #[test]
    fn word_boundary_is_ascii() {
        // In Go `é` is not a word character, so there is a boundary between it and `a`.
        assert!(is_match(r"\bab", "éab"));
    }

    #[test]
    fn brace_that_is_not_a_repetition_is_literal() {
        assert!(is_match(r"^\$(?:\d+|{\d+})$", "${12}"));
        assert!(is_match(r"^\${{[ \t]*x[ \t]*}}$", "${{ x }}"));
        assert!(is_match(r"import[ \t]+{", "import {"));
        assert!(is_match(r"^a{2}$", "aa"));
        assert!(is_match(r"^a{2,}$", "aaaa"));
        assert!(is_match(r"^a{,2}$", "a{,2}"));
    }

    #[test]
    fn class_operators_are_literal() {
        assert!(is_match(r"^[a&&b]+$", "a&&b"));
        assert!(is_match(r"^[[a]+$", "[a["));
        assert!(is_match(r"^[~~]+$", "~~"));
        assert!(is_match(r"^[[:alpha:]]+$", "abc"));
        assert!(is_match(r"^[]a]+$", "]a"));
    }

    #[test]
    fn octal_and_quoted_escapes() {
        assert!(is_match(r"^\101$", "A"));
        assert!(is_match(r"^\Qa.b*\E$", "a.b*"));
        assert!(!is_match(r"^\Qa.b\E$", "axb"));
    }

    #[test]
    fn a_check_reports_what_compiling_would() {
        for bad in ["(a", "a{2,1}", r"\p{Nope}", "a)"] {
            let checked = check(bad).map(|_| ()).map_err(|e| e.to_string());
            let compiled = compile(bad).map(|_| ()).map_err(|e| e.to_string());
            assert!(checked.is_err(), "{bad}");
            assert_eq!(checked, compiled, "{bad}");
        }
        assert_eq!(check("(a)(?:b)(?P<c>c)").map(|c| c.1).ok(), Some(2));
        let lazy = LazyRegex::new("(a)b").expect("valid");
        assert_eq!(lazy.groups(), 1);
        assert!(lazy.get().expect("compiles").is_match(b"xab"));
    }

    #[test]
    fn a_pattern_too_big_to_compile_fails_on_first_use_not_on_load() {
        // Valid syntax whose automaton exceeds the 64 MiB limit.
        let lazy = LazyRegex::new(r"(?:\pL{500}){50}").expect("syntax is valid");
        let e = lazy.get().expect_err("too big");
        assert!(e.to_string().contains("size limit"), "{e}");
    }

    #[test]
    fn the_whole_gitleaks_default_config_compiles() {
        let text = std::fs::read_to_string(crate::testdata::path("gitleaks/gitleaks-default.toml"))
            .expect("repository test data");
        let value: toml::Table = toml::from_str(&text).expect("toml");
        let mut n = 0;
        for rule in value["rules"].as_array().expect("rules") {
            for key in ["regex", "path"] {
                if let Some(p) = rule.get(key).and_then(|v| v.as_str()) {
                    compile(p).unwrap_or_else(|e| panic!("{e}"));
                    n += 1;
                }
            }
        }
        assert!(n > 200);
    }

    proptest::proptest! {
        #[test]
        fn translation_never_panics(s in "\\PC{0,40}") {
            let _ = compile(&s);
        }

        #[test]
        fn plain_literals_translate_to_themselves(s in "[a-zA-Z0-9 _:=/]{0,40}") {
            proptest::prop_assert_eq!(translate(&s).ok(), Some(s.clone()));
        }
    }
}
