//! A YAML writer that reproduces go-yaml v3's encoder as sops drives it: block style, sops's indent (4 by
//! default), go-yaml's indentation steps inside sequences, its scalar style choice (plain, single-, double-quoted,
//! literal) and escapes, and comments written as their own lines before the entry they precede.

use homelab_goyaml::scalar::write_string;

use crate::value::{Entry, Key, Map, Value, go_yaml_float};

use super::resolve::plain_is_string;

/// Writes documents separated by `---`.
pub fn write_documents(docs: &[Map], indent: usize) -> String {
    write_all(docs, None, indent)
}

/// Writes documents separated by `---`, each ending with a `sops:` entry holding `meta` (how sops stores its
/// metadata in every document), without copying the documents to append it.
pub fn write_documents_with_metadata(docs: &[Map], meta: &Map, indent: usize) -> String {
    let extra = Entry::Item(Key::new("sops"), Value::Map(meta.clone()));
    write_all(docs, Some(&extra), indent)
}

fn write_all(docs: &[Map], extra: Option<&Entry>, indent: usize) -> String {
    let mut w = Writer {
        out: String::new(),
        best: indent.max(2),
    };
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            w.out.push_str("---\n");
        }
        if doc.entries.is_empty() && extra.is_none() {
            w.out.push_str("{}\n");
        } else {
            w.entries(doc.entries.iter().chain(extra), 0, false);
        }
    }
    w.out
}

struct Writer {
    out: String,
    best: usize,
}

impl Writer {
    /// go-yaml's indent step for a collection or block scalar below a mapping key.
    fn deeper(&self, ind: usize) -> usize {
        self.best * ((ind + self.best) / self.best)
    }

    fn pad(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    fn newline(&mut self) {
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn map(&mut self, map: &Map, ind: usize, first_inline: bool) {
        self.entries(map.entries.iter(), ind, first_inline);
    }

    fn entries<'e>(
        &mut self,
        entries: impl Iterator<Item = &'e Entry>,
        ind: usize,
        first_inline: bool,
    ) {
        for (i, e) in entries.enumerate() {
            if !(first_inline && i == 0) {
                self.pad(ind);
            }
            match e {
                Entry::Comment(c) => {
                    self.out.push('#');
                    self.out.push_str(c);
                    self.out.push('\n');
                }
                Entry::Item(k, v) if k.scalar.is_none() && !is_simple_key(&k.text) => {
                    // go-yaml's complex key form: `? key` then `: value` on the next line.
                    self.out.push_str("? ");
                    let d = self.deeper(ind);
                    self.string(&k.text, d, d - ind, false);
                    self.newline();
                    self.pad(ind);
                    self.out.push(':');
                    self.value_after_key(v, ind);
                }
                Entry::Item(k, v) => {
                    self.key(k);
                    self.out.push(':');
                    self.value_after_key(v, ind);
                }
            }
        }
    }

    fn key(&mut self, k: &Key) {
        match k.scalar.as_deref() {
            Some(v) => self.scalar(v, 0, 0, true),
            None => self.string(&k.text, 0, 0, true),
        }
    }

    fn value_after_key(&mut self, v: &Value, ind: usize) {
        match v {
            Value::Map(m) if !m.entries.is_empty() => {
                self.out.push('\n');
                let d = self.deeper(ind);
                self.map(m, d, false);
            }
            Value::Seq(s) if !s.is_empty() => {
                self.out.push('\n');
                let d = self.deeper(ind);
                self.seq(s, d, false);
            }
            _ => {
                self.out.push(' ');
                let d = self.deeper(ind);
                self.scalar(v, d, d - ind, false);
                self.newline();
            }
        }
    }

    fn seq(&mut self, items: &[Value], ind: usize, first_inline: bool) {
        for (i, item) in items.iter().enumerate() {
            if !(first_inline && i == 0) {
                self.pad(ind);
            }
            match item {
                Value::Comment(c) => {
                    self.out.push('#');
                    self.out.push_str(c);
                    self.out.push('\n');
                }
                Value::Map(m) if !m.entries.is_empty() => {
                    self.out.push_str("- ");
                    self.map(m, ind + 2, true);
                }
                Value::Seq(s) if !s.is_empty() => {
                    self.out.push_str("- ");
                    self.seq(s, ind + 2, true);
                }
                _ => {
                    self.out.push_str("- ");
                    self.scalar(item, ind + 2, 2, false);
                    self.newline();
                }
            }
        }
    }

    /// A scalar (or empty collection); `block_ind` is the content indent of a literal block and `hint` its
    /// indentation relative to the parent node.
    fn scalar(&mut self, v: &Value, block_ind: usize, hint: usize, is_key: bool) {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => self.out.push_str(&go_yaml_float(*f)),
            Value::Time(t) => self.out.push_str(t),
            Value::Str(s) | Value::Comment(s) => self.string(s, block_ind, hint, is_key),
            Value::Map(_) => self.out.push_str("{}"),
            Value::Seq(_) => self.out.push_str("[]"),
        }
    }

    fn string(&mut self, s: &str, block_ind: usize, hint: usize, is_key: bool) {
        if s == "<<" {
            // go-yaml resolves `<<` to the merge tag and writes it explicitly.
            self.out.push_str("!!merge <<");
            return;
        }
        // go-yaml writes `best_indent` as a literal block's indentation indicator; inside sequences that is
        // wrong (the content sits 2 columns in), so the indicator here is the real relative indent, which
        // equals go-yaml's wherever go-yaml's output is valid YAML.
        write_string(
            &mut self.out,
            s,
            is_key,
            plain_is_string(s),
            block_ind,
            hint,
        );
    }
}

/// go-yaml writes a key as `key:` only when it is one line and at most 128 bytes long.
fn is_simple_key(s: &str) -> bool {
    !s.contains('\n') && s.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styled(s: &str) -> String {
        let mut w = Writer {
            out: String::new(),
            best: 4,
        };
        w.string(s, 4, 4, false);
        w.out
    }

    #[test]
    fn scalar_styles_match_go_yaml() {
        assert_eq!(styled("hello world"), "hello world");
        assert_eq!(styled("tab\there"), "\"tab\\there\"");
        assert_eq!(styled("emoji 😀"), "\"emoji \\U0001F600\"");
        assert_eq!(styled(" lead"), "' lead'");
        assert_eq!(styled("a: b"), "'a: b'");
        assert_eq!(styled("a:b"), "a:b");
        assert_eq!(styled("x #y"), "'x #y'");
        assert_eq!(styled("'x"), "'''x'");
        assert_eq!(styled("-x"), "-x");
        assert_eq!(styled("- x"), "'- x'");
        assert_eq!(styled("yes"), "\"yes\"");
        assert_eq!(styled("123"), "\"123\"");
        assert_eq!(styled(""), "\"\"");
        assert_eq!(styled("ctrl\u{1}"), "\"ctrl\\x01\"");
        assert_eq!(styled("sp \nx"), "\"sp \\nx\"");
        assert_eq!(styled("line1\nline2"), "|-\n    line1\n    line2");
        assert_eq!(styled("trail\n\n"), "|+\n    trail\n\n");
        assert_eq!(styled("  lead\nx"), "|4-\n      lead\n    x");
    }

    #[test]
    fn multi_line_keys_use_the_complex_key_form() {
        let mut m = Map::default();
        m.push("key\nnl", Value::Int(1));
        m.push("<<", Value::Str("<<".into()));
        assert_eq!(
            write_documents(&[m], 4),
            "? |-\n    key\n    nl\n: 1\n!!merge <<: !!merge <<\n"
        );
    }
}
