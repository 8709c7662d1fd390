//! Reads YAML into [`Map`] documents with their comments: saphyr-parser gives the structure as spanned events,
//! comments are recovered from the source text between those spans and placed the way sops (through go-yaml's
//! head/line/foot comments) places them: in document order, a line comment before the entry it trails.
//! Aliases are expanded under go-yaml's limit (sops refuses the same files with the same message).
//! The events come from [`super::fast`] when the file stays inside the block subset sops writes, else from
//! saphyr; both feed the same tree builder, so the two paths differ only in speed. The fast scanner hands
//! each event to the builder as it finds it (no event list is kept); when it gives up, or the builder
//! refuses something, the whole text is read again through saphyr, whose answer (a parse error anywhere
//! in the file comes first) is the one given.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use homelab_goyaml::alias::{AliasGuard, EXCESSIVE_ALIASING};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::error::SopsError;
use crate::value::{Entry, Key, Map, Value};

use super::resolve::{resolve_plain, resolve_tagged};

/// A comment found in the source.
pub(super) struct Comment {
    /// Where it starts, as an offset that orders it among the events' (chars for saphyr, bytes for the
    /// fast scanner: only the order matters).
    pub idx: usize,
    pub line: usize,
    pub col: usize,
    /// Whether something other than whitespace precedes it on its line.
    pub trailing: bool,
    pub text: String,
}

/// Where an event starts: 1-based line, 0-based column in characters, and an offset ordered like
/// [`Comment::idx`].
#[derive(Clone, Copy)]
pub(super) struct Pos {
    pub line: usize,
    pub col: usize,
    pub idx: usize,
}

/// A scalar's tag, as far as typing it goes.
pub(super) enum Tagged {
    None,
    /// A core-schema tag (`!!int`, `tag:yaml.org,2002:str`): its suffix.
    Core(String),
    /// Any other tag.
    Other,
}

/// One parse event, independent of the parser that produced it.
pub(super) enum Ev<'a> {
    DocStart,
    DocEnd,
    StreamEnd,
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
        anchor: usize,
        tag: Tagged,
    },
    MapStart {
        anchor: usize,
        flow: bool,
    },
    SeqStart {
        anchor: usize,
        flow: bool,
    },
    MapEnd,
    SeqEnd,
    Alias(usize),
}

/// A stream's events and the comments between them.
type Scanned<'a> = (Vec<(Ev<'a>, Pos)>, Vec<Comment>);

enum Kind {
    Map {
        map: Map,
        pending: Option<Key>,
        key_line: usize,
        /// Hashes of the keys so far, once the map has [`SCAN_KEYS`] entries: the
        /// duplicate-key check is then a lookup, not a scan of the map (a 4,000-key map made that check
        /// quadratic and a large part of reading a big file). A small map is scanned: cheaper than
        /// hashing, and most maps are small.
        key_hashes: HashSet<u64>,
    },
    Seq {
        items: Vec<Value>,
    },
}

struct Frame {
    kind: Kind,
    indent: usize,
    flow: bool,
    anchor: usize,
    /// Comments that belong after the currently open child.
    after: Vec<String>,
    /// Line where the current (or last) item started, and its index once pushed.
    item_line: usize,
    item_idx: Option<usize>,
}

/// Parses a YAML stream into documents (each must be a mapping or empty).
pub fn read_documents(text: &str, file: &str) -> Result<Vec<Map>, SopsError> {
    read_documents_via(text, file, true)
}

/// [`read_documents`], with the fast scanner allowed or not (the tests compare the two).
pub(super) fn read_documents_via(
    text: &str,
    file: &str,
    allow_fast: bool,
) -> Result<Vec<Map>, SopsError> {
    if allow_fast {
        let mut builder = Builder::new(file);
        if super::fast::scan(text, &mut builder).is_some() {
            return Ok(builder.docs);
        }
    }
    let (events, comments) = saphyr_events(text, file)?;
    let mut builder = Builder::new(file);
    builder.comments = comments;
    for (ev, pos) in events {
        builder.event(ev, pos)?;
    }
    Ok(builder.docs)
}

/// saphyr's events for any YAML, with go-yaml's alias limit applied and comments recovered from the text.
fn saphyr_events<'a>(text: &'a str, file: &str) -> Result<Scanned<'a>, SopsError> {
    let events = collect_events(text, file)?;
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (ev, span) in &events {
        if let Event::Scalar(_, style, ..) = ev {
            spans.push(scalar_extent(&chars, *style, span));
        }
    }
    let comments = scan_comments(&chars, &spans);
    let mut guard = AliasGuard::new();
    let mut out = Vec::with_capacity(events.len());
    for (ev, span) in events {
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col(),
            idx: span.start.index(),
        };
        guard
            .observe(&ev, &span)
            .map_err(|_| parse_error(file, pos.line, pos.col, EXCESSIVE_ALIASING))?;
        let flow = matches!(chars.get(pos.idx), Some('[' | '{'));
        let ev = match ev {
            Event::StreamStart | Event::Nothing => continue,
            Event::DocumentStart(_) => Ev::DocStart,
            Event::DocumentEnd => Ev::DocEnd,
            Event::StreamEnd => Ev::StreamEnd,
            Event::Scalar(text, style, anchor, tag) => Ev::Scalar {
                text,
                plain: matches!(style, ScalarStyle::Plain),
                anchor,
                tag: match tag.as_deref() {
                    None => Tagged::None,
                    Some(t) => tag_suffix(t).map_or(Tagged::Other, |s| Tagged::Core(s.to_string())),
                },
            },
            Event::MappingStart(anchor, _) => Ev::MapStart { anchor, flow },
            Event::SequenceStart(anchor, _) => Ev::SeqStart { anchor, flow },
            Event::MappingEnd => Ev::MapEnd,
            Event::SequenceEnd => Ev::SeqEnd,
            Event::Alias(id) => Ev::Alias(id),
        };
        out.push((ev, pos));
    }
    Ok((out, comments))
}

fn parse_error(file: &str, line: usize, col: usize, message: impl Into<String>) -> SopsError {
    SopsError::Parse {
        file: file.to_string(),
        format: "YAML",
        line,
        column: col + 1,
        message: message.into(),
    }
}

fn collect_events<'a>(text: &'a str, file: &str) -> Result<Vec<(Event<'a>, Span)>, SopsError> {
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    while let Some(r) = parser.next_event() {
        match r {
            Ok((ev, span)) => {
                let end = matches!(ev, Event::StreamEnd);
                events.push((ev, span));
                if end {
                    break;
                }
            }
            Err(e) => {
                let m = e.marker();
                return Err(parse_error(file, m.line(), m.col(), e.info()));
            }
        }
    }
    Ok(events)
}

/// The char range a scalar occupies (quoted scalars are re-measured: the parser's end can run past them).
fn scalar_extent(chars: &[char], style: ScalarStyle, span: &Span) -> (usize, usize) {
    let (start, end) = (span.start.index(), span.end.index());
    let quote = match style {
        ScalarStyle::SingleQuoted => '\'',
        ScalarStyle::DoubleQuoted => '"',
        _ => return (start, end.max(start)),
    };
    let mut i = start;
    while i < chars.len() && chars[i] != quote {
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        let c = chars[i];
        if quote == '"' && c == '\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if quote == '\'' && chars.get(i + 1) == Some(&'\'') {
                i += 2;
                continue;
            }
            return (start, i + 1);
        }
        i += 1;
    }
    (start, end.max(start))
}

/// Finds `#` comments outside scalars.
fn scan_comments(chars: &[char], spans: &[(usize, usize)]) -> Vec<Comment> {
    let mut out = Vec::new();
    let (mut line, mut col) = (1usize, 0usize);
    let mut content = false;
    let mut prev_ws = true;
    let mut si = 0;
    let mut i = 0;
    while i < chars.len() {
        while si < spans.len() && spans[si].1 <= i {
            si += 1;
        }
        if si < spans.len() && spans[si].0 <= i && i < spans[si].1 {
            // Skip the scalar, tracking lines.
            for &c in &chars[i..spans[si].1] {
                if c == '\n' {
                    line += 1;
                    col = 0;
                } else {
                    col += 1;
                }
            }
            i = spans[si].1;
            content = true;
            prev_ws = false;
            continue;
        }
        let c = chars[i];
        if c == '#' && prev_ws {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j] != '\n' {
                j += 1;
            }
            let mut text: String = chars[start..j].iter().collect();
            if text.ends_with('\r') {
                text.pop();
            }
            out.push(Comment {
                idx: i,
                line,
                col,
                trailing: content,
                text,
            });
            col += j - i;
            i = j;
            continue;
        }
        if c == '\n' {
            line += 1;
            col = 0;
            content = false;
            prev_ws = true;
        } else {
            col += 1;
            prev_ws = c == ' ' || c == '\t' || c == '\r';
            if !prev_ws && c != '\u{feff}' {
                content = true;
            }
        }
        i += 1;
    }
    out
}

/// Below this many entries, a map's duplicate-key check compares the keys themselves.
const SCAN_KEYS: usize = 16;

fn hash_key(key: &str) -> u64 {
    thread_local! {
        static STATE: RandomState = RandomState::new();
    }
    STATE.with(|s| s.hash_one(key))
}

/// Builds documents from events, placing the comments that lie between them.
pub(super) struct Builder<'f> {
    file: &'f str,
    /// Every comment found so far, in source order; those before an event are placed when it arrives.
    pub comments: Vec<Comment>,
    next: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    docs: Vec<Map>,
    root: Option<Map>,
}

fn tag_suffix(tag: &saphyr_parser::Tag) -> Option<&str> {
    if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" {
        Some(tag.suffix.as_str())
    } else {
        None
    }
}

impl<'f> Builder<'f> {
    pub(super) fn new(file: &'f str) -> Builder<'f> {
        Builder {
            file,
            comments: Vec::new(),
            next: 0,
            stack: Vec::new(),
            anchors: HashMap::new(),
            docs: Vec::new(),
            root: None,
        }
    }

    /// Takes the next event; every comment that starts before it must be in `comments` by now.
    pub(super) fn event(&mut self, ev: Ev<'_>, pos: Pos) -> Result<(), SopsError> {
        let Pos { line, col, idx } = pos;
        match ev {
            Ev::DocStart => {
                self.root = Some(Map::default());
                self.drain(idx);
            }
            Ev::DocEnd | Ev::StreamEnd => {
                self.drain(if matches!(ev, Ev::StreamEnd) {
                    usize::MAX
                } else {
                    idx
                });
                if let Some(root) = self.root.take() {
                    self.docs.push(root);
                }
            }
            Ev::Scalar {
                text,
                plain,
                anchor,
                tag,
            } => {
                self.drain(idx);
                let value = match &tag {
                    Tagged::Core(suffix) => resolve_tagged(suffix, &text, plain),
                    Tagged::None if plain => resolve_plain(&text),
                    Tagged::Other if plain => resolve_tagged("", &text, true),
                    _ => Ok(Value::Str(text.to_string())),
                }
                .map_err(|m| parse_error(self.file, line, col, m))?;
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                if let Some(Frame {
                    kind:
                        Kind::Map {
                            pending: pending @ None,
                            key_line,
                            ..
                        },
                    item_line,
                    ..
                }) = self.stack.last_mut()
                {
                    let scalar = (!matches!(value, Value::Str(_))).then(|| Box::new(value));
                    *pending = Some(Key {
                        text: text.into_owned(),
                        scalar,
                    });
                    *key_line = line;
                    *item_line = line;
                    return Ok(());
                }
                self.add_value(value, line, col)?;
            }
            Ev::MapStart { anchor, flow } | Ev::SeqStart { anchor, flow } => {
                if let Some(Frame {
                    kind: Kind::Map { pending: None, .. },
                    ..
                }) = self.stack.last()
                {
                    return Err(parse_error(
                        self.file,
                        line,
                        col,
                        "complex (non-scalar) mapping keys are not supported",
                    ));
                }
                let kind = if matches!(ev, Ev::MapStart { .. }) {
                    Kind::Map {
                        map: Map::default(),
                        pending: None,
                        key_line: 0,
                        key_hashes: HashSet::new(),
                    }
                } else {
                    Kind::Seq { items: Vec::new() }
                };
                if let Some(parent) = self.stack.last_mut()
                    && matches!(parent.kind, Kind::Seq { .. })
                {
                    parent.item_line = line;
                }
                let frame = Frame {
                    kind,
                    indent: col,
                    flow,
                    anchor,
                    after: Vec::new(),
                    item_line: 0,
                    item_idx: None,
                };
                if flow {
                    self.drain(idx);
                    self.stack.push(frame);
                } else {
                    self.stack.push(frame);
                    self.drain(idx);
                }
            }
            Ev::MapEnd | Ev::SeqEnd => {
                self.drain(idx);
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let value = match frame.kind {
                    Kind::Map { mut map, .. } => {
                        map.entries
                            .extend(frame.after.into_iter().map(Entry::Comment));
                        Value::Map(map)
                    }
                    Kind::Seq { mut items } => {
                        items.extend(frame.after.into_iter().map(Value::Comment));
                        Value::Seq(items)
                    }
                };
                if frame.anchor > 0 {
                    self.anchors.insert(frame.anchor, value.clone());
                }
                self.add_value(value, line, col)?;
            }
            Ev::Alias(id) => {
                self.drain(idx);
                let value = self.anchors.get(&id).cloned().ok_or_else(|| {
                    parse_error(self.file, line, col, "alias to an unknown anchor")
                })?;
                if let Some(Frame {
                    kind:
                        Kind::Map {
                            pending: pending @ None,
                            key_line,
                            ..
                        },
                    item_line,
                    ..
                }) = self.stack.last_mut()
                {
                    let text = match &value {
                        Value::Str(s) => s.clone(),
                        _ => {
                            return Err(parse_error(
                                self.file,
                                line,
                                col,
                                "alias used as a mapping key is not supported",
                            ));
                        }
                    };
                    *pending = Some(Key::new(text));
                    *key_line = line;
                    *item_line = line;
                    return Ok(());
                }
                self.add_value(value, line, col)?;
            }
        }
        Ok(())
    }

    fn add_value(&mut self, value: Value, line: usize, col: usize) -> Result<(), SopsError> {
        let file = self.file;
        let Some(frame) = self.stack.last_mut() else {
            return match value {
                Value::Map(m) => {
                    let root = self.root.get_or_insert_with(Map::default);
                    let mut entries = std::mem::take(&mut root.entries);
                    entries.extend(m.entries);
                    root.entries = entries;
                    Ok(())
                }
                Value::Null => Ok(()),
                Value::Seq(_) => Err(parse_error(
                    file,
                    line,
                    col,
                    "YAML documents that are sequences are not supported by sops",
                )),
                _ => Err(parse_error(
                    file,
                    line,
                    col,
                    "YAML documents that are values are not supported by sops",
                )),
            };
        };
        match &mut frame.kind {
            Kind::Map {
                map,
                pending,
                key_hashes,
                ..
            } => {
                let Some(key) = pending.take() else {
                    return Err(parse_error(file, line, col, "value without a key"));
                };
                let seen = if map.entries.len() < SCAN_KEYS {
                    map.items().any(|(k, _)| k == key.text)
                } else {
                    if key_hashes.is_empty() {
                        key_hashes.extend(map.items().map(|(k, _)| hash_key(k)));
                    }
                    // A hash seen before is confirmed by comparing the keys themselves.
                    !key_hashes.insert(hash_key(&key.text))
                        && map.items().any(|(k, _)| k == key.text)
                };
                if seen {
                    return Err(parse_error(
                        file,
                        line,
                        col,
                        format!("duplicate key {:?}", key.text),
                    ));
                }
                map.entries.push(Entry::Item(key, value));
                frame.item_idx = Some(map.entries.len() - 1);
                map.entries
                    .extend(frame.after.drain(..).map(Entry::Comment));
            }
            Kind::Seq { items } => {
                if !matches!(value, Value::Map(_) | Value::Seq(_)) {
                    frame.item_line = line;
                }
                items.push(value);
                frame.item_idx = Some(items.len() - 1);
                items.extend(frame.after.drain(..).map(Value::Comment));
            }
        }
        Ok(())
    }

    /// Places every comment that starts before char index `upto`.
    fn drain(&mut self, upto: usize) {
        while self.next < self.comments.len() && self.comments[self.next].idx < upto {
            let c = std::mem::replace(
                &mut self.comments[self.next],
                Comment {
                    idx: 0,
                    line: 0,
                    col: 0,
                    trailing: false,
                    text: String::new(),
                },
            );
            self.next += 1;
            self.place(c);
        }
    }

    fn place(&mut self, c: Comment) {
        if c.trailing && self.place_trailing(&c) {
            return;
        }
        let top = self.stack.len();
        let target = (0..top)
            .rev()
            .find(|&i| !self.stack[i].flow && self.stack[i].indent <= c.col);
        let Some(t) = target.or(if top > 0 { Some(0) } else { None }) else {
            // Before the document's root collection starts (or after it ended).
            self.root
                .get_or_insert_with(Map::default)
                .entries
                .push(Entry::Comment(c.text));
            return;
        };
        let frame = &mut self.stack[t];
        if t + 1 < top {
            frame.after.push(c.text);
            return;
        }
        match &mut frame.kind {
            Kind::Map { map, .. } => map.entries.push(Entry::Comment(c.text)),
            Kind::Seq { items } => items.push(Value::Comment(c.text)),
        }
    }

    /// A comment after content on its line goes before the entry that line started (sops 3.11 behaviour).
    fn place_trailing(&mut self, c: &Comment) -> bool {
        let top = self.stack.len();
        for i in (0..top).rev() {
            let open_child = i + 1 < top;
            let frame = &mut self.stack[i];
            if frame.item_line != c.line {
                continue;
            }
            match &mut frame.kind {
                Kind::Map {
                    map,
                    pending,
                    key_line,
                    ..
                } => {
                    if pending.is_some() && *key_line == c.line {
                        map.entries.push(Entry::Comment(c.text.clone()));
                        return true;
                    }
                    if let Some(idx) = frame.item_idx {
                        map.entries.insert(idx, Entry::Comment(c.text.clone()));
                        frame.item_idx = Some(idx + 1);
                        return true;
                    }
                }
                Kind::Seq { items } => {
                    if open_child {
                        items.push(Value::Comment(c.text.clone()));
                        return true;
                    }
                    if let Some(idx) = frame.item_idx {
                        items.insert(idx, Value::Comment(c.text.clone()));
                        frame.item_idx = Some(idx + 1);
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::read_documents_via;

    #[test]
    fn duplicate_keys_are_refused_in_small_and_large_maps_on_both_paths() {
        let keys = |n: usize| (0..n).map(|i| format!("k{i}: {i}\n")).collect::<String>();
        for fast in [true, false] {
            for (text, duplicate) in [
                ("a: 1\nb: 2\na: 3\n".to_string(), Some("a")),
                (keys(40), None),
                (format!("{}k3: x\n", keys(40)), Some("k3")),
                (format!("{}k39: x\n", keys(40)), Some("k39")),
                (format!("{}k0: x\n", keys(16)), Some("k0")),
                (format!("top:\n{}", keys(30).replace("k", "    k")), None),
            ] {
                let got = read_documents_via(&text, "t.yaml", fast);
                match duplicate {
                    None => assert!(got.is_ok(), "{text}: {got:?}"),
                    Some(k) => {
                        let err = got.expect_err("a duplicate key").to_string();
                        assert!(err.contains(&format!("duplicate key \"{k}\"")), "{err}");
                    }
                }
            }
        }
    }
}
