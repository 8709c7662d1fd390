//! go-yaml v3's guard against alias bombs ("billion laughs"): the rule its decoder applies before it
//! expands an alias, so that every YAML reader here refuses the same documents sops and kubectl refuse,
//! with the same message, before it has allocated the expansion.
//!
//! go-yaml counts one "decode" per node it visits (aliases re-visit their anchor's whole subtree) and how
//! many of those happened inside an alias expansion; once more than 100 aliased decodes and 1000 decodes in
//! all have happened, the aliased share may not exceed 99 % for documents up to 400,000 decodes, falling
//! linearly to 10 % at 4,000,000 (go-yaml v3 `decode.go`, `allowedAliasRatio`). The counts restart at every
//! document, as go-yaml starts a new decoder for each. This guard keeps the same two counters over
//! saphyr-parser events, knowing each anchor's expanded size, so a reader asks it *before* cloning an
//! anchored value and memory stays proportional to the input (at most about 100 times its node count).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// go-yaml's message, kept word for word so errors read the same as sops' and kubectl's.
pub const EXCESSIVE_ALIASING: &str = "document contains excessive aliasing";

/// An alias whose expansion would break go-yaml's limit; `line` and `column` are 1-based and point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExcessiveAliasing {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for ExcessiveAliasing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {EXCESSIVE_ALIASING}",
            self.line, self.column
        )
    }
}

impl std::error::Error for ExcessiveAliasing {}

// go-yaml v3 decode.go: below `RANGE_LOW` decodes 99 % may come from aliases, above `RANGE_HIGH` 10 %.
const RANGE_LOW: u64 = 400_000;
const RANGE_HIGH: u64 = 4_000_000;

/// The share of decodes go-yaml lets come from alias expansion at `decoded` decodes.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    if decoded <= RANGE_LOW {
        0.99
    } else if decoded >= RANGE_HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - RANGE_LOW) as f64 / (RANGE_HIGH - RANGE_LOW) as f64)
    }
}

/// Counts decodes as go-yaml would while a reader walks saphyr-parser events; feed it every event (in
/// order, before acting on it) with [`AliasGuard::observe`].
#[derive(Debug, Default)]
pub struct AliasGuard {
    /// Nodes visited in the current document, alias expansions included.
    decoded: u64,
    /// The part of `decoded` that came from alias expansion.
    aliased: u64,
    /// Expanded size (in decodes) of every completed anchor of the current document.
    sizes: HashMap<usize, u64>,
    /// Open collections: their anchor id and the decode count before them.
    open: Vec<(usize, u64)>,
    /// The largest `decoded` seen in any document (a measure of work done, for tests).
    peak: u64,
}

impl AliasGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one event; `Err` when it is an alias whose expansion go-yaml would refuse (the reader
    /// must then stop without expanding it).
    pub fn observe(&mut self, event: &Event<'_>, span: &Span) -> Result<(), ExcessiveAliasing> {
        match event {
            Event::DocumentStart(_) => {
                self.decoded = 0;
                self.aliased = 0;
                self.sizes.clear();
                self.open.clear();
                // go-yaml visits the document node itself.
                self.add(1, 0);
            }
            Event::Scalar(_, _, anchor, _) => {
                self.add(1, 0);
                if *anchor > 0 {
                    self.sizes.insert(*anchor, 1);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((*anchor, self.decoded));
                self.add(1, 0);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop()
                    && anchor > 0
                {
                    self.sizes.insert(anchor, self.decoded - start);
                }
            }
            Event::Alias(id) => {
                // An alias to an unknown or still-open anchor is the reader's error to report; count the
                // alias node alone.
                let size = self.sizes.get(id).copied().unwrap_or(0);
                self.add(size.saturating_add(1), size);
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        if self.excessive() {
            return Err(ExcessiveAliasing {
                line: span.start.line(),
                column: span.start.col() + 1,
            });
        }
        Ok(())
    }

    /// The most decodes any document has needed so far, alias expansions included: what a reader that
    /// expands aliases has built, node for node.
    pub fn peak_decodes(&self) -> u64 {
        self.peak
    }

    fn add(&mut self, decoded: u64, aliased: u64) {
        self.decoded = self.decoded.saturating_add(decoded);
        self.aliased = self.aliased.saturating_add(aliased);
        self.peak = self.peak.max(self.decoded);
    }

    fn excessive(&self) -> bool {
        self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
    }
}

/// Scans `text` for excessive aliasing without building anything, for readers that hand the text to a
/// library (serde-saphyr) afterwards. Syntax errors are left for that reader to report.
pub fn check(text: &str) -> Result<(), ExcessiveAliasing> {
    let mut guard = AliasGuard::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        guard.observe(&event, &span)?;
        if matches!(event, Event::StreamEnd) {
            break;
        }
    }
    Ok(())
}

/// The classic "billion laughs" mapping, for tests of every reader: key `a<i>` on line `i + 1` is a list
/// of ten aliases of level `i - 1`, so level `i` expands to 10^i scalars. With this guard the alias that
/// is refused is the first one on line 5 (level 4), whatever `levels` (≥ 4) is.
pub fn billion_laughs(levels: usize) -> String {
    let mut s = String::from("a0: &a0 [lol]\n");
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(text: &str) -> (Result<(), ExcessiveAliasing>, u64) {
        let mut guard = AliasGuard::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            if let Err(e) = guard.observe(&event, &span) {
                return (Err(e), guard.peak_decodes());
            }
        }
        (Ok(()), guard.peak_decodes())
    }

    #[test]
    fn a_billion_laughs_is_refused_at_the_alias_that_tips_it_with_little_work() {
        let (result, work) = scan(&billion_laughs(9));
        let err = result.expect_err("bomb must be refused");
        // Level 4 is the first whose expansion pushes aliased decodes past 99 %.
        assert_eq!(err.line, 5);
        assert_eq!(
            err.to_string(),
            format!("line 5, column {}: {EXCESSIVE_ALIASING}", err.column)
        );
        assert!(work < 20_000, "the guard stopped after {work} decodes");
    }

    #[test]
    fn the_limit_restarts_with_every_document() {
        let doc = "a: &a [x, y]\nb: [*a, *a, *a]\n";
        let stream = vec![doc; 2000].join("---\n");
        assert_eq!(check(&stream), Ok(()));
    }

    #[test]
    fn ratio_matches_go_yaml_at_the_ends_and_in_between() {
        assert_eq!(allowed_alias_ratio(1), 0.99);
        assert_eq!(allowed_alias_ratio(RANGE_HIGH), 0.10);
        let mid = allowed_alias_ratio((RANGE_LOW + RANGE_HIGH) / 2);
        assert!((mid - 0.545).abs() < 1e-9);
    }

    #[test]
    fn syntax_errors_are_left_to_the_reader() {
        assert_eq!(check("a: [unclosed\n"), Ok(()));
        assert_eq!(check("a: *nowhere\n"), Ok(()));
    }

    proptest! {
        /// A few anchors, each reused a handful of times, is ordinary YAML (Helm values, CI files) and
        /// must always pass.
        #[test]
        fn modest_reuse_of_a_few_anchors_is_accepted(
            anchors in 1usize..6,
            width in 1usize..20,
            uses in 1usize..12,
        ) {
            let mut s = String::new();
            for a in 0..anchors {
                let body: Vec<String> = (0..width).map(|i| format!("k{i}: v{i}")).collect();
                s.push_str(&format!("base{a}: &b{a} {{{}}}\n", body.join(", ")));
            }
            for u in 0..uses {
                for a in 0..anchors {
                    s.push_str(&format!("use{u}_{a}: *b{a}\n"));
                }
            }
            prop_assert_eq!(check(&s), Ok(()));
        }
    }
}
