//! Finds the line of a field inside a YAML document's source text from its JSON pointer
//! (`/spec/template/spec/containers/0/image`), so that a schema finding points at the field rather than
//! at the start of the object. Block-style YAML only: when the path runs through flow style (`{a: b}`),
//! or the field is not in the source (added by a patch or generator), there is no answer and the caller
//! keeps the document's line.

/// The 1-based line of the field at `pointer` in the document starting at line `doc_line` of `text`.
pub fn field_line(text: &str, doc_line: usize, pointer: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let first = doc_line.checked_sub(1)?;
    // The document ends at the next `---` (or `...`).
    let end = lines
        .iter()
        .enumerate()
        .skip(first + 1)
        .find(|(_, l)| l.starts_with("---") || l.starts_with("..."))
        .map_or(lines.len(), |(i, _)| i);
    let mut at = first;
    // Keys of the current mapping are indented more than this; -1 for the document's top level.
    let mut parent: isize = -1;
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let (line, indent) = match seg.parse::<usize>() {
            Ok(n) => nth_item(&lines, at, end, parent, n)?,
            Err(_) => key(&lines, at, end, parent, &seg)?,
        };
        at = line;
        parent = indent;
    }
    Some(at + 1)
}

/// Indentation and content of a line that holds YAML (not blank, not a comment).
fn content(line: &str) -> Option<(isize, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    Some(((line.len() - trimmed.len()) as isize, trimmed))
}

/// The line of `name:` in the mapping whose keys are indented more than `parent`, searching from line `from`
/// (the line of the parent key, or of a `- ` item whose first key may share the line).
fn key(
    lines: &[&str],
    from: usize,
    end: usize,
    parent: isize,
    name: &str,
) -> Option<(usize, isize)> {
    let mut own_indent = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(from) {
        let Some((raw_indent, mut rest)) = content(line) else {
            continue;
        };
        // Past the starting line, anything at or left of the parent ends the mapping (a sibling key, or
        // the next `- ` item of the sequence the mapping is an item of).
        if i > from && raw_indent <= parent {
            return None;
        }
        // `- key: v` opens an item whose first key sits after the dash.
        let mut indent = raw_indent;
        while let Some(r) = rest.strip_prefix("- ") {
            let r2 = r.trim_start();
            indent += (rest.len() - r2.len()) as isize;
            rest = r2;
        }
        if indent <= parent {
            continue;
        }
        // Only keys of this mapping, not of nested ones.
        let own = *own_indent.get_or_insert(indent);
        if indent != own {
            continue;
        }
        if key_of(rest) == Some(name) {
            return Some((i, indent));
        }
    }
    None
}

/// The key of a `key: value` (or `key:`) line, unquoted.
fn key_of(rest: &str) -> Option<&str> {
    let (k, _) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|k| (k, "")))?;
    let k = k.trim();
    Some(
        k.strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .or_else(|| k.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
            .unwrap_or(k),
    )
}

/// The line of item `n` of the block sequence under the key at line `from` (indented more than `parent`).
fn nth_item(
    lines: &[&str],
    from: usize,
    end: usize,
    parent: isize,
    n: usize,
) -> Option<(usize, isize)> {
    let mut seen = 0;
    let mut dash_indent = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(from + 1) {
        let Some((indent, rest)) = content(line) else {
            continue;
        };
        // A sequence may sit at its key's own indentation (`key:\n- a`).
        if indent < parent || (indent == parent && !rest.starts_with("- ")) {
            return None;
        }
        if !rest.starts_with("- ") && rest != "-" {
            continue;
        }
        let d = *dash_indent.get_or_insert(indent);
        if indent != d {
            continue;
        }
        if seen == n {
            // The item's keys are found from this line, one level in from the dash.
            return Some((i, indent));
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::field_line;

    const DOC: &str = "# comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: a
          image: x
        - name: b
          image: y
          ports:
          - containerPort: 80
---
kind: Other
spec: {}
";

    #[test]
    fn fields_are_found_by_their_pointer() {
        assert_eq!(field_line(DOC, 2, "/spec/replicas"), Some(7));
        assert_eq!(field_line(DOC, 2, "/spec"), Some(6));
        assert_eq!(
            field_line(DOC, 2, "/spec/template/spec/containers/0/image"),
            Some(12)
        );
        assert_eq!(
            field_line(DOC, 2, "/spec/template/spec/containers/1"),
            Some(13)
        );
        assert_eq!(
            field_line(DOC, 2, "/spec/template/spec/containers/1/name"),
            Some(13)
        );
        assert_eq!(
            field_line(
                DOC,
                2,
                "/spec/template/spec/containers/1/ports/0/containerPort"
            ),
            Some(16)
        );
        assert_eq!(field_line(DOC, 2, "/metadata/name"), Some(5));
    }

    #[test]
    fn absent_fields_and_other_documents_give_no_line() {
        assert_eq!(field_line(DOC, 2, "/spec/missing"), None);
        assert_eq!(field_line(DOC, 2, "/spec/template/spec/containers/2"), None);
        // `spec` of the next document is not this one's.
        assert_eq!(field_line(DOC, 18, "/spec/replicas"), None);
        assert_eq!(field_line("a: {b: 1}\n", 1, "/a/b"), None);
        assert_eq!(field_line("", 0, "/a"), None);
    }
}
