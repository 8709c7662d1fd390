//! Streaming parser for `git log -p -U0` / `git diff -U0` output: yields, per changed file, the added lines of
//! every hunk with the hunk's first new line number (what gitleaks scans), and the commit they came from.
//!
//! It expects the commit header format `%x00%H%x1f%an%x1f%ae%x1f%at%x1f%B%x1e` that [`LOG_FORMAT`] sets.

use std::io::BufRead;
use std::sync::Arc;

use crate::finding::CommitInfo;

/// The `--format` the parser understands.
pub const LOG_FORMAT: &str = "--format=%x00%H%x1f%an%x1f%ae%x1f%at%x1f%B%x1e";

/// The added lines of one hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// First line number of the hunk in the new file.
    pub start: usize,
    /// Added lines, each with its `\n` (except a last line without one).
    pub added: Vec<u8>,
}

/// One file's changes in one commit (or in the index for `git diff --staged`).
#[derive(Debug, Clone)]
pub struct FileDiff {
    pub commit: Option<Arc<CommitInfo>>,
    /// The file's new path.
    pub path: String,
    pub hunks: Vec<Hunk>,
}

#[derive(Debug, Default)]
struct Pending {
    path: Option<String>,
    deleted: bool,
    binary: bool,
    hunks: Vec<Hunk>,
}

enum State {
    /// Between files, in a file header, or after a hunk's lines.
    Header,
    Hunk {
        old_left: usize,
        new_left: usize,
    },
}

/// Parses a diff stream, calling `emit` for every file with added or changed text (deleted and binary files
/// are skipped, as gitleaks does). Returns the number of commits seen.
pub fn parse(mut input: impl BufRead, mut emit: impl FnMut(FileDiff)) -> std::io::Result<usize> {
    let mut line = Vec::with_capacity(256);
    let mut commit: Option<Arc<CommitInfo>> = None;
    let mut commits = 0;
    let mut file: Option<Pending> = None;
    let mut state = State::Header;
    let mut last_was_add = false;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let State::Hunk { old_left, new_left } = &mut state {
            let Some(f) = file.as_mut() else {
                state = State::Header;
                continue;
            };
            match line.first() {
                Some(b'+') if *new_left > 0 => {
                    if let Some(h) = f.hunks.last_mut() {
                        h.added.extend_from_slice(&line[1..]);
                    }
                    *new_left -= 1;
                    last_was_add = true;
                }
                Some(b'-') if *old_left > 0 => {
                    *old_left -= 1;
                    last_was_add = false;
                }
                Some(b' ') => {
                    *old_left = old_left.saturating_sub(1);
                    *new_left = new_left.saturating_sub(1);
                    last_was_add = false;
                }
                Some(b'\\') => no_newline(f, last_was_add),
                _ => {
                    // Malformed counts: treat the line as a header line.
                    state = State::Header;
                    header_line(
                        &line,
                        &mut file,
                        &mut commit,
                        &mut commits,
                        &mut state,
                        &mut input,
                        &mut emit,
                    )?;
                    continue;
                }
            }
            if *old_left == 0 && *new_left == 0 {
                state = State::Header;
            }
            continue;
        }
        if line.first() == Some(&b'\\') {
            if let Some(f) = file.as_mut() {
                no_newline(f, last_was_add);
            }
            continue;
        }
        last_was_add = false;
        header_line(
            &line,
            &mut file,
            &mut commit,
            &mut commits,
            &mut state,
            &mut input,
            &mut emit,
        )?;
    }
    flush(&mut file, &commit, &mut emit);
    Ok(commits)
}

fn no_newline(f: &mut Pending, last_was_add: bool) {
    if last_was_add
        && let Some(h) = f.hunks.last_mut()
        && h.added.last() == Some(&b'\n')
    {
        h.added.pop();
    }
}

fn header_line(
    line: &[u8],
    file: &mut Option<Pending>,
    commit: &mut Option<Arc<CommitInfo>>,
    commits: &mut usize,
    state: &mut State,
    input: &mut impl BufRead,
    emit: &mut impl FnMut(FileDiff),
) -> std::io::Result<()> {
    let text = trim_eol(line);
    if text.first() == Some(&0) {
        flush(file, commit, emit);
        let mut header = text[1..].to_vec();
        header.push(b'\n');
        while !header.contains(&0x1e) {
            let mut more = Vec::new();
            if input.read_until(b'\n', &mut more)? == 0 {
                break;
            }
            header.extend_from_slice(&more);
        }
        *commit = Some(Arc::new(parse_commit(&header)));
        *commits += 1;
    } else if text.starts_with(b"diff --git ")
        || text.starts_with(b"diff --cc ")
        || text.starts_with(b"diff --combined ")
    {
        flush(file, commit, emit);
        *file = Some(Pending::default());
    } else if let Some(f) = file.as_mut() {
        if let Some(rest) = text.strip_prefix(b"+++ ") {
            // git ends a name containing a space with a tab.
            let rest = rest.strip_suffix(b"\t").unwrap_or(rest);
            if rest == b"/dev/null" {
                f.deleted = true;
            } else {
                let name = unquote(rest);
                f.path = Some(name.strip_prefix("b/").map(str::to_owned).unwrap_or(name));
            }
        } else if let Some(rest) = text
            .strip_prefix(b"rename to ")
            .or_else(|| text.strip_prefix(b"copy to "))
        {
            f.path = Some(unquote(rest));
        } else if text.starts_with(b"deleted file mode") {
            f.deleted = true;
        } else if text.starts_with(b"Binary files ") || text.starts_with(b"GIT binary patch") {
            f.binary = true;
        } else if text.starts_with(b"@@ ") {
            let (old, new_start, new) = parse_hunk_header(text).unwrap_or((0, 0, 0));
            f.hunks.push(Hunk {
                start: new_start,
                added: Vec::new(),
            });
            if old > 0 || new > 0 {
                *state = State::Hunk {
                    old_left: old,
                    new_left: new,
                };
            }
        }
    }
    Ok(())
}

fn flush(
    file: &mut Option<Pending>,
    commit: &Option<Arc<CommitInfo>>,
    emit: &mut impl FnMut(FileDiff),
) {
    if let Some(f) = file.take()
        && !f.deleted
        && !f.binary
        && !f.hunks.is_empty()
        && let Some(path) = f.path
    {
        emit(FileDiff {
            commit: commit.clone(),
            path,
            hunks: f.hunks,
        });
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// `@@ -a[,b] +c[,d] @@ …` → (old count, new start, new count).
fn parse_hunk_header(text: &[u8]) -> Option<(usize, usize, usize)> {
    let s = std::str::from_utf8(text.get(3..)?).ok()?;
    let mut parts = s.split(' ');
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (_, old_count) = range(old)?;
    let (new_start, new_count) = range(new)?;
    Some((old_count, new_start, new_count))
}

/// Undoes git's C-style quoting of unusual path names (`"a/\303\244.txt"`).
fn unquote(raw: &[u8]) -> String {
    let Some(inner) = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) else {
        return String::from_utf8_lossy(raw).into_owned();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if c != b'\\' || i + 1 >= inner.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = inner[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'3' if i + 1 < inner.len() => {
                let digits = [e, inner[i], inner[i + 1]];
                let value = digits.iter().try_fold(0u32, |acc, d| {
                    (b'0'..=b'7')
                        .contains(d)
                        .then(|| acc * 8 + u32::from(d - b'0'))
                });
                match value.and_then(|v| u8::try_from(v).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(e),
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_commit(header: &[u8]) -> CommitInfo {
    let end = header
        .iter()
        .position(|&b| b == 0x1e)
        .unwrap_or(header.len());
    let text = String::from_utf8_lossy(&header[..end]);
    let mut fields = text.splitn(5, '\x1f');
    let sha = fields.next().unwrap_or_default().trim().to_owned();
    let author = fields.next().unwrap_or_default().to_owned();
    let email = fields.next().unwrap_or_default().to_owned();
    let date = fields
        .next()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(rfc3339_utc)
        .unwrap_or_default();
    let message = fields.next().unwrap_or_default().trim_end().to_owned();
    CommitInfo {
        sha,
        author,
        email,
        date,
        message,
    }
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (`None` beyond the years 1–9999).
pub(crate) fn rfc3339_utc(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<FileDiff> {
        let mut out = Vec::new();
        parse(input, |f| out.push(f)).expect("parse");
        out
    }

    const LOG: &[u8] = b"\x00dafc\x1ft\x1fa@b.c\x1f1795641617\x1fsecond\n\nbody line\n\x1e\n\ndiff --git a/a.txt b/a.txt\nindex b66124a..f3e41c2 100644\n--- a/a.txt\n+++ b/a.txt\n@@ -3,0 +4,2 @@ ctx\n++++ not a header\n+more\n@@ -9 +11 @@\n-old\n+new\n\\ No newline at end of file\ndiff --git a/b.bin b/b.bin\nnew file mode 100644\nBinary files /dev/null and b/b.bin differ\n\x00b505\x1ft\x1fa@b.c\x1f0\x1finit\n\x1e\n\ndiff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\ndiff --git \"a/\\303\\244.txt\" \"b/\\303\\244.txt\"\nnew file mode 100644\n--- /dev/null\n+++ \"b/\\303\\244.txt\"\n@@ -0,0 +1 @@\n+diff --git x\n";

    #[test]
    fn parses_added_lines_per_hunk_with_commit_metadata() {
        let files = collect(LOG);
        assert_eq!(files.len(), 2, "{files:?}");
        let a = &files[0];
        assert_eq!(a.path, "a.txt");
        let c = a.commit.as_ref().expect("commit");
        assert_eq!(
            (c.sha.as_str(), c.author.as_str(), c.message.as_str()),
            ("dafc", "t", "second\n\nbody line")
        );
        assert_eq!(c.date, "2026-11-25T21:20:17Z");
        assert_eq!(
            a.hunks,
            vec![
                Hunk {
                    start: 4,
                    added: b"+++ not a header\nmore\n".to_vec()
                },
                Hunk {
                    start: 11,
                    added: b"new".to_vec()
                },
            ]
        );
        assert_eq!(files[1].path, "ä.txt");
        assert_eq!(files[1].hunks[0].added, b"diff --git x\n");
        assert_eq!(
            files[1].commit.as_ref().map(|c| c.date.as_str()),
            Some("1970-01-01T00:00:00Z")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = collect(&bytes);
        }

        #[test]
        fn never_panics_on_diff_shaped_input(lines in proptest::collection::vec("(\\+|-| |@@ -[0-9],?[0-9]? \\+[0-9],?[0-9]? @@|diff --git a b|\\+\\+\\+ b/x|\\\\ No)[a-z]{0,3}", 0..30)) {
            let _ = collect(lines.join("\n").as_bytes());
        }
    }
}
