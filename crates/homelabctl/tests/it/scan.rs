//! `homelabctl scan` end to end: exit codes, formats, redaction, baselines.

use predicates::prelude::*;

use crate::homelabctl;

fn repo_with_secret() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    // Assembled at run time so this file holds no secret.
    let secret = format!("{}{}", "ghp_", "Zq8Xw2Lr5Tn9Vb3Mk7Hj1Gf4Dd6Ss0Aa8Pp2");
    std::fs::write(dir.path().join("ci.env"), format!("TOKEN={secret}\n")).unwrap();
    (dir, secret)
}

#[test]
fn clean_directory_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "hello\n").unwrap();
    homelabctl()
        .args(["scan", "--no-git"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("no secrets found"));
}

#[test]
fn findings_exit_one_and_every_format_is_redacted() {
    let (dir, secret) = repo_with_secret();
    for format in ["text", "json", "sarif"] {
        let out = homelabctl()
            .args(["scan", "--no-git", "--format", format])
            .arg(dir.path())
            .assert()
            .code(1);
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(stdout.contains("github-pat"), "{format}: {stdout}");
        assert!(!stdout.contains(&secret[4..]), "{format} leaks the secret");
    }
    let out = homelabctl()
        .args(["scan", "--no-git", "--format", "sarif"])
        .arg(dir.path())
        .assert()
        .code(1);
    let sarif: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
}

#[test]
fn a_written_baseline_makes_the_next_scan_clean() {
    let (dir, _) = repo_with_secret();
    let baseline = dir.path().join("scan-baseline.txt");
    homelabctl()
        .args(["scan", "--no-git", "--write-baseline"])
        .arg(&baseline)
        .arg(dir.path())
        .assert()
        .success();
    homelabctl()
        .args(["scan", "--no-git", "--baseline"])
        .arg(&baseline)
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("1 accepted by the baseline"));
}

#[test]
fn a_bad_gitleaks_config_is_a_clear_error() {
    let (dir, _) = repo_with_secret();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[[rules]]\nid = 'x'\nregex = '''(unclosed'''\n").unwrap();
    homelabctl()
        .args(["scan", "--no-git", "--gitleaks-config"])
        .arg(&cfg)
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("without --gitleaks-config"));
}

#[test]
fn check_reports_secrets_found_by_the_scanner_without_showing_them() {
    let (dir, secret) = repo_with_secret();
    let out = homelabctl()
        .args(["check", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("secret-scan")
            && stdout.contains("github-pat")
            && stdout.contains("ci.env"),
        "{stdout}"
    );
    assert!(!stdout.contains(&secret[4..]), "{stdout}");
    std::fs::write(dir.path().join(".gitleaksignore"), "ci.env:github-pat:1\n").unwrap();
    homelabctl()
        .args(["check", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
}

#[test]
fn config_names_homelab_yaml_so_a_gitleaks_toml_there_is_a_usage_error() {
    let (dir, _) = repo_with_secret();
    let cfg = dir.path().join("gitleaks.toml");
    std::fs::write(&cfg, "[extend]\nuseDefault = true\n").unwrap();
    homelabctl()
        .args(["scan", "--no-git", "--config"])
        .arg(&cfg)
        .arg(dir.path())
        .assert()
        .code(64)
        .stderr(predicate::str::contains("--gitleaks-config"));
}
