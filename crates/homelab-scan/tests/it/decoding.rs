//! gitleaks' decoding passes, differentially: files holding `aws-access-token`s (and other secrets) only
//! visible after base64, percent-then-base64, base64-then-percent, hex and unicode decoding give the same
//! findings as gitleaks 8.30.1 with its default configuration and depth, tags (`decoded:*`,
//! `decode-depth:N`) included.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use homelab_scan::{ScanRequest, Source, scan};

use crate::support::Planted;

type Key = (String, String, usize, Vec<String>);

/// gitleaks' default configuration, from the repository's test data.
fn default_config() -> PathBuf {
    crate::support::testdata("gitleaks/gitleaks-default.toml")
}

fn percent_encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn percent_encode_some(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '=' | '+' | '/' | ' ' | ':' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

fn fixtures(dir: &Path) {
    let aws = Planted::new(21).aws;
    let aws2 = Planted::new(22).aws;
    let aws3 = Planted::new(23).aws;
    let github = Planted::new(24).github;
    let line = |k: &str| format!("aws_access_key_id = {k}");
    let write = |rel: &str, text: String| {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write fixture");
    };
    // The two shapes the real README had: base64, and percent-encoded base64.
    write(
        "README.md",
        format!(
            "# setup\n\nExport this:\n\n    echo {} | base64 -d\n\nor from the URL parameter `cred={}`\n",
            B64.encode(line(&aws)),
            percent_encode_some(&B64.encode(line(&aws2)))
        ),
    );
    write(
        "nested/base64-of-percent.txt",
        format!(
            "payload: {}\n",
            B64.encode(format!("k={}", percent_encode_all(&aws3)))
        ),
    );
    write(
        "nested/hex.txt",
        format!("blob = {}\n", hex::encode(line(&aws))),
    );
    write(
        "nested/double-base64.yaml",
        format!(
            "data:\n  token: {}\n",
            B64.encode(B64.encode(format!("token: {github}")))
        ),
    );
    write(
        "nested/unicode.json",
        format!(
            "{{\"k\": \"{}\"}}\n",
            aws2.chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect::<String>()
        ),
    );
    write(
        "plain.env",
        format!("AWS_ACCESS_KEY_ID={aws}\nNOT_ENCODED=hello-world-value\n"),
    );
}

fn gitleaks_dir(dir: &Path) -> BTreeSet<Key> {
    let findings = crate::support::gitleaks_report(dir, "dir", &default_config(), None);
    findings
        .iter()
        .map(|f| {
            (
                f["RuleID"].as_str().unwrap_or_default().to_owned(),
                f["File"].as_str().unwrap_or_default().to_owned(),
                f["StartLine"].as_u64().unwrap_or_default() as usize,
                f["Tags"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn ours_dir(dir: &Path) -> BTreeSet<Key> {
    let mut req = ScanRequest::tree(dir);
    req.source = Source::Directory;
    req.config = Some(default_config());
    scan(&req)
        .expect("scan")
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.clone(),
                f.file.clone(),
                f.start_line,
                f.tags.clone(),
            )
        })
        .collect()
}

#[test]
fn decoded_findings_and_tags_equal_gitleaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixtures(dir.path());
    let theirs = gitleaks_dir(dir.path());
    let decoded_aws = theirs
        .iter()
        .filter(|k| k.0 == "aws-access-token" && k.3.iter().any(|t| t.starts_with("decoded:")))
        .count();
    assert!(
        decoded_aws >= 3,
        "gitleaks should find the encoded aws-access-tokens: {theirs:#?}"
    );
    assert_eq!(ours_dir(dir.path()), theirs);
}

#[test]
fn decoding_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixtures(dir.path());
    let mut req = ScanRequest::tree(dir.path());
    req.source = Source::Directory;
    req.config = Some(default_config());
    req.options.max_decode_depth = 0;
    let outcome = scan(&req).expect("scan");
    assert!(
        outcome
            .findings
            .iter()
            .all(|f| f.tags.iter().all(|t| !t.starts_with("decode")))
    );
    assert!(outcome.findings.iter().any(|f| f.file == "plain.env"));
}
