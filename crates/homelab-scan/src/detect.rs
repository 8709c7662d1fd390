//! The detector: one fragment of text (a file, or the added lines of a diff hunk) in, findings out.
//!
//! Pipeline, as gitleaks runs it: global commit/path allowlists → keyword prefilter (Aho-Corasick) → per rule:
//! rule allowlists, `path`, regex matches, line location, inline allow comment, secret group, entropy,
//! global then rule allowlists → drop `generic*` findings another rule found on the same line.
//! homelabctl adds: values inside SOPS `ENC[…]` tokens are never findings.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use crate::allowlist::Candidate;
use crate::codec::{self, Passes};
use crate::config::{Config, Rule};
use crate::entropy;
use crate::finding::{CommitInfo, Finding, Sensitive};
use homelab_sops::detect as sops;

/// Inline comments that suppress a finding on their line.
pub const ALLOW_MARKERS: [&str; 2] = ["gitleaks:allow", "homelabctl:allow"];

/// Behaviour switches of a scan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Honour `gitleaks:allow` / `homelabctl:allow` comments (default true).
    pub allow_comments: bool,
    /// Skip SOPS-encrypted files and `ENC[…]` values (default true).
    pub sops_aware: bool,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
    /// How many decoding passes (base64, hex, percent, unicode) to rescan, like gitleaks'
    /// `--max-decode-depth` (default 5; 0 turns decoding off).
    pub max_decode_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_comments: true,
            sops_aware: true,
            threads: 0,
            max_decode_depth: codec::DEFAULT_MAX_DECODE_DEPTH,
        }
    }
}

/// Text to scan and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub raw: &'a [u8],
    /// Path relative to the scanned root, `/`-separated.
    pub path: &'a str,
    /// Line number of the first line of `raw` (1 for whole files, the hunk's new start for diffs).
    pub start_line: usize,
    pub commit: Option<&'a Arc<CommitInfo>>,
}

/// A compiled configuration ready to scan fragments; cheap to share between threads.
#[derive(Debug)]
pub struct Detector {
    config: Config,
    options: Options,
    prefilter: Option<AhoCorasick>,
    /// For each prefilter pattern (keyword), the rules that have it.
    keyword_rules: Vec<Vec<usize>>,
    /// The rules without keywords, which run on every fragment.
    keywordless: Vec<usize>,
    skip_paths: Vec<String>,
}

impl Detector {
    pub fn new(config: Config, options: Options) -> Self {
        let mut keywords: Vec<String> = config
            .rules
            .iter()
            .flat_map(|r| r.keywords.iter().cloned())
            .collect();
        keywords.sort();
        keywords.dedup();
        let mut keyword_rules = vec![Vec::new(); keywords.len()];
        let mut keywordless = Vec::new();
        for (index, rule) in config.rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                keywordless.push(index);
            }
            for k in &rule.keywords {
                if let Ok(k) = keywords.binary_search(k) {
                    keyword_rules[k].push(index);
                }
            }
        }
        let prefilter = if keywords.is_empty() {
            None
        } else {
            // A DFA: every fragment passes through it, and its transitions are one table lookup per byte
            // where the default (a contiguous NFA for this many keywords) follows failure links.
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&keywords)
                .ok()
        };
        Self {
            config,
            options,
            prefilter,
            keyword_rules,
            keywordless,
            skip_paths: Vec::new(),
        }
    }

    /// Files never scanned (the configuration and baseline files themselves), as relative paths.
    pub fn skip_path(&mut self, relative: String) {
        self.skip_paths.push(relative);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, taken back (a clone would copy every compiled rule, and dropping the detector
    /// would free the matchers' caches on the caller's time).
    pub fn into_config(self) -> Config {
        self.config
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Scans one fragment.
    pub fn detect(&self, frag: &Fragment<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        if self.skip_paths.iter().any(|p| p == frag.path) {
            return findings;
        }
        let commit = frag.commit.map_or("", |c| c.sha.as_str());
        if self
            .config
            .allowlists
            .iter()
            .any(|a| a.allows_fragment(frag.path, commit))
        {
            return findings;
        }
        let mut newlines: Option<Vec<usize>> = None;
        // gitleaks' decoding loop: scan, decode what looks encoded, scan the decoded text, up to the depth.
        let mut passes = Passes::default();
        let mut current = Cow::Borrowed(frag.raw);
        let mut depth = 0;
        let mut undecoded = 0;
        loop {
            for rule in self.rules_for(&current) {
                let pass = Pass {
                    text: &current,
                    passes: &passes,
                };
                self.detect_rule(frag, &pass, rule, commit, &mut newlines, &mut findings);
            }
            if depth == 0 {
                undecoded = findings.len();
            }
            depth += 1;
            if depth > self.options.max_decode_depth {
                break;
            }
            match passes.decode(&current) {
                Some(next) => current = Cow::Owned(next),
                None => break,
            }
        }
        if self.config.built_in && findings.len() > undecoded {
            let lines: Vec<usize> = findings[..undecoded].iter().map(|f| f.start_line).collect();
            let mut i = 0;
            findings.retain(|f| {
                i += 1;
                i <= undecoded || !lines.contains(&f.start_line)
            });
        }
        dedupe_generic(findings)
    }

    /// The rules whose keywords occur in `text` (gitleaks' keyword prefilter) and those without keywords, in
    /// configuration order (which orders findings and decides which duplicate `dedupe_generic` keeps).
    fn rules_for(&self, text: &[u8]) -> impl Iterator<Item = &Rule> {
        let rules = &self.config.rules;
        let mut wanted = vec![0u64; rules.len().div_ceil(64)];
        let mut want = |index: usize| wanted[index / 64] |= 1 << (index % 64);
        self.keywordless.iter().for_each(|&r| want(r));
        if let Some(ac) = &self.prefilter {
            let mut seen = vec![false; self.keyword_rules.len()];
            for m in ac.find_overlapping_iter(text) {
                let k = m.pattern().as_usize();
                if !std::mem::replace(&mut seen[k], true) {
                    self.keyword_rules[k].iter().for_each(|&r| want(r));
                }
            }
        }
        wanted
            .into_iter()
            .enumerate()
            .flat_map(move |(word_index, mut word)| {
                std::iter::from_fn(move || {
                    let bit = word.trailing_zeros() as usize;
                    (word != 0).then(|| {
                        word &= word - 1;
                        &rules[word_index * 64 + bit]
                    })
                })
            })
    }

    fn detect_rule(
        &self,
        frag: &Fragment<'_>,
        pass: &Pass<'_>,
        rule: &Rule,
        commit: &str,
        newlines: &mut Option<Vec<usize>>,
        out: &mut Vec<Finding>,
    ) {
        if rule.skip_report
            || rule
                .allowlists
                .iter()
                .any(|a| a.allows_fragment(frag.path, commit))
        {
            return;
        }
        if let Some(path_re) = &rule.path {
            let path_matches = path_re.is_match(frag.path.as_bytes());
            if rule.regex.is_none() && pass.passes.current().is_empty() {
                if path_matches {
                    let text = format!("file detected: {}", frag.path);
                    out.push(Finding {
                        rule_id: rule.id.clone(),
                        description: rule.description.clone(),
                        file: frag.path.to_owned(),
                        start_line: 0,
                        end_line: 0,
                        start_column: 0,
                        end_column: 0,
                        commit: frag.commit.cloned(),
                        entropy: 0.0,
                        tags: rule.tags.clone(),
                        secret: Sensitive::new(b""),
                        matched: Sensitive::new(text.as_bytes()),
                    });
                }
                return;
            }
            if !path_matches {
                return;
            }
        }
        let Some(lazy) = &rule.regex else { return };
        // A pattern too big to compile skips its rule here and fails the scan at its end
        // (`Config::unusable_rule`).
        let Ok(re) = lazy.get() else { return };
        let raw = frag.raw;
        let decoding = !pass.passes.current().is_empty();
        for m in re.find_iter(pass.text) {
            let matched = trim_newlines(m.as_bytes());
            // In a decoded pass, only matches touching newly decoded text count, located at the encoded
            // run they came from; allowlists then see the decoded line (gitleaks' `currentLine`).
            let (start, end, meta_tags, current_line) = if decoding {
                let segments = pass.passes.overlapping(m.start(), m.end());
                if segments.is_empty() {
                    continue;
                }
                let (s, e) = pass.passes.adjust(&segments, m.start(), m.end());
                (
                    s.min(raw.len()),
                    e.min(raw.len()),
                    codec::tags(&segments),
                    Some(codec::current_line(&segments, pass.text)),
                )
            } else {
                (m.start(), m.start() + matched.len(), Vec::new(), None)
            };
            let nl = newlines.get_or_insert_with(|| memchr_all(raw));
            let loc = locate(nl, raw, start, end);
            let line = &raw[loc.line_start.min(raw.len())..loc.line_end.min(raw.len())];
            if self.options.allow_comments
                && ALLOW_MARKERS.iter().any(|mk| contains(line, mk.as_bytes()))
            {
                continue;
            }
            if self.options.sops_aware && sops::inside_encrypted_value(raw, start, end) {
                continue;
            }
            let secret = secret_of(re, rule.secret_group, matched);
            let Some(secret) = secret else { continue };
            let ent = entropy::shannon(secret);
            if rule.entropy != 0.0 && ent <= rule.entropy {
                continue;
            }
            let cand = Candidate {
                secret,
                matched,
                line: current_line.unwrap_or(line),
                path: frag.path,
                commit,
            };
            if self
                .config
                .allowlists
                .iter()
                .any(|a| a.allows_finding(&cand))
                || rule.allowlists.iter().any(|a| a.allows_finding(&cand))
            {
                continue;
            }
            out.push(Finding {
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                file: frag.path.to_owned(),
                start_line: frag.start_line + loc.start_line,
                end_line: frag.start_line + loc.end_line,
                start_column: loc.start_column,
                end_column: loc.end_column,
                commit: frag.commit.cloned(),
                entropy: ent as f32,
                tags: rule.tags.iter().cloned().chain(meta_tags).collect(),
                secret: Sensitive::new(secret),
                matched: Sensitive::new(matched),
            });
        }
    }
}

/// The text one scanning pass reads: the fragment itself, or its decoded form after some passes.
struct Pass<'a> {
    text: &'a [u8],
    passes: &'a Passes,
}

/// gitleaks re-runs the rule on the match and takes the requested group, or the first non-empty one.
/// `None` means "skip" (a secret group the pattern does not have).
fn secret_of<'a>(re: &regex::bytes::Regex, group: usize, matched: &'a [u8]) -> Option<&'a [u8]> {
    let Some(caps) = re.captures(matched) else {
        return Some(matched);
    };
    if caps.len() < 2 {
        return Some(matched);
    }
    if group > 0 {
        if caps.len() <= group {
            return None;
        }
        return Some(caps.get(group).map_or(&matched[..0], |g| g.as_bytes()));
    }
    Some(
        caps.iter()
            .skip(1)
            .flatten()
            .map(|g| g.as_bytes())
            .find(|g| !g.is_empty())
            .unwrap_or(matched),
    )
}

fn trim_newlines(mut s: &[u8]) -> &[u8] {
    while let [b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'\n'] = s {
        s = rest;
    }
    s
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

fn memchr_all(raw: &[u8]) -> Vec<usize> {
    memchr::memchr_iter(b'\n', raw).collect()
}

/// Where a match sits, in gitleaks' terms (0-based line offset into the fragment, quirky columns).
#[derive(Debug, PartialEq, Eq)]
struct Location {
    start_line: usize,
    end_line: usize,
    start_column: usize,
    end_column: usize,
    line_start: usize,
    line_end: usize,
}

/// Reproduces gitleaks' `location`: a fragment without newlines counts as one line ending at its end;
/// a match after the last newline gets the line count as its line and the whole fragment up to the end
/// of its line as its "line".
fn locate(newlines: &[usize], raw: &[u8], start: usize, end: usize) -> Location {
    let fake = [raw.len()];
    let nls: &[usize] = if newlines.is_empty() { &fake } else { newlines };
    let s_idx = nls.partition_point(|&p| p <= start);
    let mut loc;
    if s_idx < nls.len() {
        let prev = if s_idx == 0 { 0 } else { nls[s_idx - 1] };
        loc = Location {
            start_line: s_idx,
            end_line: s_idx,
            start_column: start - prev + 1,
            end_column: 0,
            line_start: prev,
            line_end: nls[s_idx],
        };
        let e_idx = nls.partition_point(|&p| p < end);
        let prev_e = if e_idx == 0 { 0 } else { nls[e_idx - 1] };
        if e_idx < nls.len() && prev_e < end {
            loc.end_line = e_idx;
            loc.end_column = end - prev_e;
            loc.line_end = nls[e_idx];
        }
    } else {
        let prev = nls[nls.len() - 1];
        let mut i = 0;
        while end + i < raw.len() && raw[end + i] != b'\n' && raw[end + i] != b'\r' {
            i += 1;
        }
        loc = Location {
            start_line: nls.len(),
            end_line: nls.len(),
            start_column: start.saturating_sub(prev) + 1,
            end_column: end.saturating_sub(prev),
            line_start: 0,
            line_end: end + i,
        };
    }
    if end > loc.line_end {
        loc.line_end = end;
    }
    loc
}

/// Drops a `generic*` finding when a non-generic rule found a secret containing it on the same line.
fn dedupe_generic(findings: Vec<Finding>) -> Vec<Finding> {
    let is_generic = |f: &Finding| f.rule_id.to_lowercase().contains("generic");
    let keep: Vec<bool> = findings
        .iter()
        .map(|f| {
            !is_generic(f)
                || !findings.iter().any(|o| {
                    o.start_line == f.start_line
                        && o.commit_sha() == f.commit_sha()
                        && o.rule_id != f.rule_id
                        && o.secret.expose().contains(f.secret.expose())
                        && !is_generic(o)
                })
        })
        .collect();
    findings
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(toml: &str) -> Detector {
        Detector::new(
            Config::from_toml_str(toml, "test", None).expect("config"),
            Options::default(),
        )
    }

    fn scan(d: &Detector, text: &str) -> Vec<(String, usize)> {
        let frag = Fragment {
            raw: text.as_bytes(),
            path: "f.txt",
            start_line: 1,
            commit: None,
        };
        d.detect(&frag)
            .into_iter()
            .map(|f| (f.rule_id, f.start_line))
            .collect()
    }

    const RULES: &str = r#"
        [[rules]]
        id = "tok"
        regex = '''tok_[a-z0-9]{12}'''
        keywords = ["tok_"]
        entropy = 2.0
        [[rules]]
        id = "generic-x"
        regex = '''secret = "?([a-z0-9_]{8,})'''
        keywords = ["secret"]
    "#;

    #[test]
    fn finds_rules_with_line_numbers() {
        let d = detector(RULES);
        assert_eq!(scan(&d, "a\nb tok_a1b2c3d4e5f6\n"), vec![("tok".into(), 2)]);
    }

    #[test]
    fn keyword_prefilter_is_case_insensitive_and_gates_rules() {
        let d = detector("[[rules]]\nid='x'\nregex='''(?i)TOK_[a-z]{4}'''\nkeywords=['tok_']");
        assert_eq!(scan(&d, "TOK_abcd").len(), 1);
        let d = detector("[[rules]]\nid='x'\nregex='''[a-z]{4}'''\nkeywords=['zzz']");
        assert!(scan(&d, "abcd").is_empty());
    }

    #[test]
    fn entropy_threshold_is_strict() {
        let d = detector(RULES);
        assert!(scan(&d, "tok_aaaaaaaaaaaa").is_empty());
    }

    #[test]
    fn inline_allow_comments_suppress() {
        let d = detector(RULES);
        assert!(scan(&d, "x tok_a1b2c3d4e5f6 # gitleaks:allow").is_empty());
        assert!(scan(&d, "x tok_a1b2c3d4e5f6 # homelabctl:allow").is_empty());
        assert_eq!(
            scan(&d, "# homelabctl:allow\nx tok_a1b2c3d4e5f6\n").len(),
            1
        );
    }

    #[test]
    fn generic_finding_yields_to_a_specific_rule_on_the_same_line() {
        let d = detector(RULES);
        assert_eq!(
            scan(&d, "secret = \"tok_a1b2c3d4e5f6\"\n"),
            vec![("tok".into(), 1)]
        );
        assert_eq!(
            scan(&d, "secret = \"zzzzzzzzzz\"\n"),
            vec![("generic-x".into(), 1)]
        );
    }

    #[test]
    fn sops_values_are_never_findings() {
        let d = detector("[[rules]]\nid='x'\nregex='''data:[A-Za-z0-9+/=]{8,}'''");
        assert!(
            scan(
                &d,
                "k: ENC[AES256_GCM,data:Zm9vYmFyYmF6cXV4,iv:x,tag:y,type:str]\n"
            )
            .is_empty()
        );
        assert_eq!(scan(&d, "k: data:ZmvvYmFyYmFaaXVq\n").len(), 1);
    }

    #[test]
    fn location_matches_gitleaks_quirks() {
        let raw = b"ab\ncdef\ngh";
        let nl = memchr_all(raw);
        let l = locate(&nl, raw, 4, 6);
        assert_eq!(
            (
                l.start_line,
                l.start_column,
                l.end_column,
                l.line_start,
                l.line_end
            ),
            (1, 3, 4, 2, 7)
        );
        let l = locate(&nl, raw, 8, 10);
        assert_eq!((l.start_line, l.line_start, l.line_end), (2, 0, 10));
        let l = locate(&[], b"abc", 0, 3);
        assert_eq!((l.start_line, l.start_column, l.end_column), (0, 1, 3));
    }

    #[test]
    fn path_only_rule_reports_the_file() {
        let d = detector("[[rules]]\nid='p12'\npath='''\\.p12$'''");
        let frag = Fragment {
            raw: b"x",
            path: "a/cert.p12",
            start_line: 1,
            commit: None,
        };
        let f = d.detect(&frag);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].redacted_match(), "file detected: a/cert.p12");
    }
}
