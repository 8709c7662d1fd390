//! Rules compile when a scan first needs them: a configuration whose pattern is too big to compile loads,
//! scans fine while nothing triggers that rule, and fails the scan, naming the pattern, once something does.

use homelab_scan::{ScanError, ScanRequest, Source, scan};

fn scan_dir(text: &str) -> Result<usize, ScanError> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("scan.toml"),
        concat!(
            "[[rules]]\nid = 'huge'\nkeywords = ['zzz']\nregex = '''zzz(?:\\pL{500}){50}'''\n",
            "[[rules]]\nid = 'small'\nkeywords = ['tok_']\nregex = '''tok_[a-z0-9]{12}'''\n",
        ),
    )
    .expect("config");
    std::fs::write(dir.path().join("app.txt"), text).expect("file");
    let mut req = ScanRequest::tree(dir.path());
    req.source = Source::Directory;
    req.config = Some(dir.path().join("scan.toml"));
    scan(&req).map(|o| o.findings.len())
}

#[test]
fn a_rule_too_big_to_compile_fails_the_scan_only_once_its_keyword_occurs() {
    assert_eq!(scan_dir("token = tok_a1b2c3d4e5f6\n").expect("scans"), 1);
    let e = scan_dir("zzz and tok_a1b2c3d4e5f6\n").expect_err("the huge rule was needed");
    let message = e.to_string();
    assert!(matches!(e, ScanError::Config(_)), "{message}");
    assert!(
        message.contains("scan.toml") && message.contains(r"\pL{500}"),
        "{message}"
    );
    assert!(message.contains("size limit"), "{message}");
}
