//! What a folded (`>`) block scalar reads as after kustomize has written it once with go-yaml v3 and read it
//! back: go-yaml's emitter and scanner disagree on folded text, so the string the cluster receives is not
//! the string the file spells.
//!
//! The scanner (`yaml_parser_scan_block_scalar`) folds a line break into a space only between two lines that
//! both start with a non-blank (its `leading_blank`/`trailing_blank` test) and keeps the break next to a
//! more-indented line, as the YAML spec does. The emitter (`yaml_emitter_write_folded_scalar`) must then
//! write each `\n` that follows a non-blank line as two breaks, except before a more-indented line; but it
//! looks for that next line at the start of the value (`k := 0`) instead of after the break. So unless the
//! value itself starts with a blank, every such `\n` is written as an empty line, and reading the output
//! back turns `"[\n  {"` into `"[\n\n  {"`. kyaml (kustomize, Flux's kustomize-controller) keeps a node's
//! folded style across exactly one such write-and-read, which [`after_kyaml_round_trip`] reproduces.

use crate::scalar::{analyze, is_blank};

/// How the emitter ends a block scalar (its chomping hint), which decides the tail the scanner keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

/// The string a folded block scalar holding `value` reads as after go-yaml v3 writes it in folded style and
/// reads it again. Values go-yaml would not write as a block scalar (trailing spaces, a space before a
/// break, non-printable characters) are written double-quoted instead and come back unchanged.
///
/// The emitter's 80-column wrapping of long lines is not modelled: it only changes the text of lines that
/// start with a blank and are longer than the line width.
pub fn after_kyaml_round_trip(value: &str) -> String {
    // `analyze` is v2's analysis, where a tab is a special character; v3 (kyaml) counts tabs apart and
    // still allows block styles, and tabs change no other flag that decides `block`.
    let v3_view;
    let analysed = if value.contains('\t') {
        v3_view = value.replace('\t', "x");
        &v3_view
    } else {
        value
    };
    if !analyze(analysed).block {
        return value.to_string();
    }
    scan_folded(&emit_folded(value), chomp_hint(value))
}

/// `yaml_emitter_write_block_scalar_hints`' chomping indicator for `value`.
fn chomp_hint(value: &str) -> Chomp {
    let mut rev = value.chars().rev();
    match (rev.next(), rev.next()) {
        (None, _) => Chomp::Strip,
        (Some(last), _) if !crate::scalar::is_break(last) => Chomp::Strip,
        (Some(_), None) => Chomp::Keep,
        (Some(_), Some(prev)) if crate::scalar::is_break(prev) => Chomp::Keep,
        _ => Chomp::Clip,
    }
}

/// The body of `yaml_emitter_write_folded_scalar`, relative to the block's indentation (every content line
/// starts at column 0; empty lines are empty).
fn emit_folded(value: &str) -> String {
    // go-yaml's `k := 0`: whether the *value* starts (after any breaks) with a blank or ends, decided once.
    let first_content = value.chars().find(|c| !crate::scalar::is_break(*c));
    let start_is_blankz = first_content.is_none_or(is_blank);
    let mut out = String::with_capacity(value.len() + value.len() / 16);
    let (mut breaks, mut leading_spaces) = (true, true);
    for c in value.chars() {
        if c == '\n' {
            if !breaks && !leading_spaces && !start_is_blankz {
                out.push('\n');
            }
            out.push('\n');
            breaks = true;
        } else {
            if breaks {
                leading_spaces = is_blank(c);
            }
            out.push(c);
            breaks = false;
        }
    }
    out
}

/// The content loop of `yaml_parser_scan_block_scalar` for a folded scalar whose lines are already stripped
/// of the block indentation.
fn scan_folded(body: &str, chomp: Chomp) -> String {
    let bytes = body.as_bytes();
    let mut pos = 0;
    let mut s = String::with_capacity(body.len());
    let mut leading_break = false;
    let mut trailing_breaks = 0usize;
    while pos < bytes.len() && bytes[pos] == b'\n' {
        trailing_breaks += 1;
        pos += 1;
    }
    let mut leading_blank = false;
    while pos < bytes.len() {
        let trailing_blank = is_blank(char::from(bytes[pos]));
        if !leading_blank && !trailing_blank && leading_break {
            if trailing_breaks == 0 {
                s.push(' ');
            }
        } else if leading_break {
            s.push('\n');
        }
        leading_break = false;
        s.extend(std::iter::repeat_n('\n', trailing_breaks));
        trailing_breaks = 0;
        leading_blank = trailing_blank;
        let end = body[pos..].find('\n').map_or(bytes.len(), |n| pos + n);
        s.push_str(&body[pos..end]);
        pos = end;
        if pos < bytes.len() {
            leading_break = true;
            pos += 1;
        }
        while pos < bytes.len() && bytes[pos] == b'\n' {
            trailing_breaks += 1;
            pos += 1;
        }
    }
    if chomp != Chomp::Strip && leading_break {
        s.push('\n');
    }
    if chomp == Chomp::Keep {
        s.extend(std::iter::repeat_n('\n', trailing_breaks));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::after_kyaml_round_trip as rt;

    #[test]
    fn break_before_a_more_indented_line_gains_an_empty_line() {
        assert_eq!(
            rt("[\n  {\n    \"a\": 1\n  }\n]"),
            "[\n\n  {\n    \"a\": 1\n  }\n]"
        );
        assert_eq!(rt("a b\n  c\nd\ne"), "a b\n\n  c\nd\ne");
    }

    #[test]
    fn plain_folded_text_is_unchanged() {
        assert_eq!(rt("plain fold\n"), "plain fold\n");
        assert_eq!(rt("one\ntwo\n"), "one\ntwo\n");
        assert_eq!(rt("x"), "x");
    }

    #[test]
    fn value_starting_with_a_blank_loses_its_single_breaks() {
        // The emitter's look-ahead sees the leading blank and writes no empty lines at all.
        assert_eq!(rt("  a\nb\nc"), "  a\nb c");
    }

    #[test]
    fn kept_trailing_breaks_gain_one() {
        assert_eq!(rt("a\n\n"), "a\n\n\n");
    }

    #[test]
    fn values_go_yaml_writes_double_quoted_are_unchanged() {
        assert_eq!(rt("a \nb"), "a \nb");
        assert_eq!(rt("a\n  b "), "a\n  b ");
    }

    #[test]
    fn tabs_do_not_stop_the_round_trip() {
        assert_eq!(rt("x\n\ttabbed\ny"), "x\n\n\ttabbed\ny");
    }
}
