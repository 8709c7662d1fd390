//! The commit-message policy: Conventional Commits 1.0 (`type(scope)!: subject`, blank line, body,
//! footers including `BREAKING CHANGE:`), checked on the message as git hands it to the commit-msg hook
//! (comment lines and everything below the scissors line are ignored).

use std::fmt;

/// Types accepted in the header (the conventional set used by commitlint's config-conventional).
pub const TYPES: [&str; 11] = [
    "feat", "fix", "build", "chore", "ci", "docs", "perf", "refactor", "revert", "style", "test",
];

/// A valid example shown with every error.
pub const EXAMPLE: &str = "feat(scan): detect Proxmox API tokens";

/// The line below which git drops everything (`git commit -v`, `--cleanup=scissors`).
const SCISSORS: &str = " ------------------------ >8 ------------------------";

/// A parsed, valid commit message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMessage {
    /// `feat`, `fix`, … — or `merge`, `revert`, `fixup`, `squash`, `amend` for messages git generates.
    pub kind: String,
    pub scope: Option<String>,
    /// `!` in the header or a `BREAKING CHANGE` footer.
    pub breaking: bool,
    pub subject: String,
}

/// What is wrong with a commit message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CommitMsgError {
    /// The problem, in one sentence.
    pub problem: String,
    /// The offending line.
    pub line: String,
}

impl fmt::Display for CommitMsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commit message does not follow Conventional Commits: {}",
            self.problem
        )?;
        if !self.line.is_empty() {
            write!(f, "\n  got:      {}", self.line)?;
        }
        write!(
            f,
            "\n  expected: <type>[(scope)][!]: <subject>, e.g. `{EXAMPLE}`\n  types:    {}\n  footer:   `BREAKING CHANGE: <what breaks>` after a blank line",
            TYPES.join(", ")
        )
    }
}

fn err(problem: impl Into<String>, line: &str) -> CommitMsgError {
    CommitMsgError {
        problem: problem.into(),
        line: line.to_owned(),
    }
}

/// The message as git will store it: comment lines and the scissors section removed, trailing blank
/// lines trimmed. `comment_char` is git's `core.commentChar` (usually `#`).
pub fn clean(raw: &str, comment_char: char) -> String {
    let mut lines = Vec::new();
    for line in raw.lines() {
        if line.starts_with(comment_char) && line[comment_char.len_utf8()..] == *SCISSORS {
            break;
        }
        if line.starts_with(comment_char) {
            continue;
        }
        lines.push(line.trim_end());
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    lines.join("\n")
}

/// Checks a message (already [`clean`]ed).
pub fn check(message: &str) -> Result<CommitMessage, CommitMsgError> {
    let mut lines = message.lines();
    let header = lines.next().unwrap_or_default();
    if header.trim().is_empty() {
        return Err(err("the message is empty", ""));
    }
    if let Some(generated) = git_generated(header) {
        return Ok(generated);
    }
    let parsed = header_parts(header)?;
    let rest: Vec<&str> = lines.collect();
    if rest.first().is_some_and(|l| !l.trim().is_empty()) {
        return Err(err(
            "the subject line must be followed by a blank line before the body",
            rest[0],
        ));
    }
    let mut breaking = parsed.breaking;
    for line in &rest {
        if let Some(value) = breaking_footer(line)? {
            if value.trim().is_empty() {
                return Err(err(
                    "a BREAKING CHANGE footer needs a description after `: `",
                    line,
                ));
            }
            breaking = true;
        }
    }
    Ok(CommitMessage { breaking, ..parsed })
}

/// Merge, revert and autosquash messages exactly as git writes them.
fn git_generated(header: &str) -> Option<CommitMessage> {
    let kinds = [
        ("Merge ", "merge"),
        ("Revert \"", "revert"),
        ("fixup! ", "fixup"),
        ("squash! ", "squash"),
        ("amend! ", "amend"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| header.starts_with(prefix))
        .map(|(prefix, kind)| CommitMessage {
            kind: (*kind).to_owned(),
            scope: None,
            breaking: false,
            subject: header[prefix.len()..].to_owned(),
        })
}

fn header_parts(header: &str) -> Result<CommitMessage, CommitMsgError> {
    let Some(colon) = header.find(':') else {
        return Err(err("the subject line has no `type: ` prefix", header));
    };
    let (prefix, after) = (&header[..colon], &header[colon + 1..]);
    let (prefix, bang) = match prefix.strip_suffix('!') {
        Some(p) => (p, true),
        None => (prefix, false),
    };
    let (kind, scope) = match prefix.find('(') {
        Some(open) => {
            let Some(inner) = prefix[open + 1..].strip_suffix(')') else {
                return Err(err(
                    "the scope must be closed by `)` right before `:` (or `!:`)",
                    header,
                ));
            };
            if inner.trim().is_empty() || inner.contains(['(', ')']) {
                return Err(err(
                    "the scope must be a non-empty word in parentheses, like `(scan)`",
                    header,
                ));
            }
            (&prefix[..open], Some(inner.to_owned()))
        }
        None => (prefix, None),
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(err(
            format!("`{kind}` is not a commit type (letters only, before the scope or colon)"),
            header,
        ));
    }
    if !TYPES.contains(&kind) {
        let lower = kind.to_ascii_lowercase();
        let hint = if TYPES.contains(&lower.as_str()) {
            format!("types are lower case: use `{lower}`")
        } else if let Some(t) = TYPES
            .iter()
            .find(|t| lower.starts_with(*t) || t.starts_with(lower.as_str()))
        {
            format!("unknown type `{kind}` (did you mean `{t}`?)")
        } else {
            format!("unknown type `{kind}`")
        };
        return Err(err(hint, header));
    }
    let Some(subject) = after.strip_prefix(' ') else {
        return Err(err(
            "the type must be followed by `: ` (a colon and one space) and the subject",
            header,
        ));
    };
    if subject.trim().is_empty() {
        return Err(err("the subject after `: ` is empty", header));
    }
    if subject.starts_with(char::is_whitespace) {
        return Err(err(
            "only one space goes between `:` and the subject",
            header,
        ));
    }
    Ok(CommitMessage {
        kind: kind.to_owned(),
        scope,
        breaking: bang,
        subject: subject.to_owned(),
    })
}

/// `Some(value)` for a `BREAKING CHANGE: value` / `BREAKING-CHANGE: value` footer; an error for a
/// wrongly-cased one.
fn breaking_footer(line: &str) -> Result<Option<&str>, CommitMsgError> {
    for token in ["BREAKING CHANGE", "BREAKING-CHANGE"] {
        let Some(head) = line.get(..token.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(token) {
            continue;
        }
        let rest = &line[token.len()..];
        let value = rest.strip_prefix(": ").or_else(|| rest.strip_prefix(" #"));
        let Some(value) = value else {
            if rest.starts_with(':') {
                return Err(err(
                    format!("`{token}` must be followed by `: ` and a description"),
                    line,
                ));
            }
            continue;
        };
        if head != token {
            return Err(err(
                format!("the footer token must be upper case: `{token}:`"),
                line,
            ));
        }
        return Ok(Some(value));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(m: &str) -> CommitMessage {
        check(m).unwrap_or_else(|e| panic!("{m:?}: {e}"))
    }

    fn bad(m: &str) -> String {
        check(m).expect_err("must be rejected").to_string()
    }

    #[test]
    fn accepts_the_spec_examples() {
        assert_eq!(
            ok("feat: allow provided config object to extend other configs").kind,
            "feat"
        );
        let m = ok("feat(api)!: send an email to the customer when a product is shipped");
        assert!(m.breaking);
        assert_eq!(m.scope.as_deref(), Some("api"));
        assert!(
            ok("feat: x\n\nbody\n\nBREAKING CHANGE: `extends` key now extends other files")
                .breaking
        );
        assert!(ok("fix: x\n\nBREAKING-CHANGE: gone").breaking);
        assert!(!ok("docs: correct spelling of CHANGELOG").breaking);
        ok(
            "fix: prevent racing of requests\n\nIntroduce a request id.\n\nReviewed-by: Z\nRefs: #123",
        );
    }

    #[test]
    fn accepts_messages_git_generates() {
        for m in [
            "Merge branch 'feature'",
            "Merge pull request #12 from me/x",
            "Revert \"feat: add x\"\n\nThis reverts commit abc.",
            "fixup! feat: add x",
            "squash! fix(scan): y",
            "amend! feat: z",
        ] {
            ok(m);
        }
    }

    #[test]
    fn rejects_with_what_is_wrong_and_an_example() {
        let e = bad("update stuff");
        assert!(
            e.contains("no `type: ` prefix") && e.contains(EXAMPLE),
            "{e}"
        );
        assert!(bad("feature: x").contains("did you mean `feat`"));
        assert!(bad("Feat: x").contains("lower case"));
        assert!(bad("feat:x").contains("`: `"));
        assert!(bad("feat:  x").contains("one space"));
        assert!(bad("feat: ").contains("empty") || bad("feat: ").contains("`: `"));
        assert!(bad("feat(: x").contains("closed"));
        assert!(bad("feat(): x").contains("non-empty"));
        assert!(bad("feat: x\nbody right away").contains("blank line"));
        assert!(bad("feat: x\n\nbreaking change: y").contains("upper case"));
        assert!(bad("feat: x\n\nBREAKING CHANGE:").contains("description"));
        assert!(bad("").contains("empty"));
    }

    #[test]
    fn clean_drops_comments_and_the_scissors_section() {
        let raw = "feat: x\n\n# Please enter the commit message\nbody\n# ------------------------ >8 ------------------------\ndiff --git a b\n";
        assert_eq!(clean(raw, '#'), "feat: x\n\nbody");
        assert_eq!(clean("; c\nfix: y\n\n", ';'), "fix: y");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}(\n\\PC{0,30}){0,3}") {
            let _ = check(&clean(&s, '#'));
        }

        #[test]
        fn well_formed_headers_pass(t in proptest::sample::select(TYPES.to_vec()), scope in "[a-z]{1,8}", subject in "[a-z][a-z ]{0,30}[a-z]") {
            let header = format!("{t}({scope}): {subject}");
            proptest::prop_assert!(check(&header).is_ok());
        }
    }
}
