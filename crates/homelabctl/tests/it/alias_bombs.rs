//! A "billion laughs" against every YAML entry point of the binary (`validate`, `plan`, `check`, `build`,
//! `sops encrypt`, `sops decrypt`): each ends with go-yaml's "document contains excessive aliasing" naming
//! the file and line. The bomb has 40 levels (10^40 scalars once expanded), and the process runs under a
//! 4 GiB address-space limit, so finishing at all proves the alias was refused unexpanded.

use std::path::Path;

use homelab_goyaml::alias::{EXCESSIVE_ALIASING, billion_laughs};

/// The refused alias is the first on line 5 (see `billion_laughs`).
const LINE: &str = ":5";

/// Runs the binary in `dir` under `ulimit -v` (4 GiB), with no identity source but the given one.
fn run_bounded(dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("homelabctl");
    std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env_remove("HOMELAB_CONFIG")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("runs")
}

fn assert_refused(out: &std::process::Output, file: &str, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{what}: {text}");
    // miette wraps long messages wherever the path length puts the line end: compare without layout.
    let flat = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    let text = flat(&text);
    assert!(text.contains(&flat(EXCESSIVE_ALIASING)), "{what}: {text}");
    assert!(text.contains(file), "{what} names the file: {text}");
    assert!(
        text.contains(&format!("{file}{LINE}")) || text.contains("line5,"),
        "{what} names the line: {text}"
    );
}

#[test]
fn validate_and_plan_refuse_an_alias_bomb_in_homelab_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("homelab.yaml"), billion_laughs(40)).expect("write");
    for args in [
        &["validate", "--config", "homelab.yaml"][..],
        &["plan", "--config", "homelab.yaml"][..],
    ] {
        assert_refused(&run_bounded(dir.path(), args), "homelab.yaml", args[0]);
    }
}

#[test]
fn check_and_build_refuse_an_alias_bomb_in_a_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("kubernetes/app");
    std::fs::create_dir_all(&app).expect("mkdir");
    std::fs::write(app.join("kustomization.yaml"), "resources: [bomb.yaml]\n").expect("write");
    std::fs::write(app.join("bomb.yaml"), billion_laughs(40)).expect("write");
    let check = run_bounded(dir.path(), &["check", "--fast", "--dir", "."]);
    assert_refused(&check, "bomb.yaml", "check");
    let build = run_bounded(dir.path(), &["build", "kubernetes/app"]);
    assert_refused(&build, "bomb.yaml", "build");
}

#[test]
fn sops_encrypt_and_decrypt_refuse_an_alias_bomb() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bomb.yaml"), billion_laughs(40)).expect("write");
    let recipient = "age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy";
    let encrypt = run_bounded(
        dir.path(),
        &["sops", "encrypt", "--age", recipient, "bomb.yaml"],
    );
    assert_refused(&encrypt, "bomb.yaml", "sops encrypt");
    assert!(encrypt.stdout.is_empty(), "nothing written");
    let decrypt = run_bounded(dir.path(), &["sops", "decrypt", "bomb.yaml"]);
    assert_refused(&decrypt, "bomb.yaml", "sops decrypt");
}
