//! One identity lookup for every command that decrypts: with `SOPS_AGE_KEY_FILE` pointing at an unrelated
//! personal key, the repository's `.age-key.txt` still decrypts, for each command, against a kept demo
//! lab brought back by `homelabctl sim`.

use std::path::Path;

use crate::homelabctl;
use crate::lab_sim::start_sim;

/// Runs `homelabctl --config REPO/homelab.yaml ARGS` in the repository with only an unrelated key named by
/// `SOPS_AGE_KEY_FILE`, a private HOME and no other identity source.
fn run(repo: &Path, personal: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    homelabctl()
        .current_dir(repo)
        .arg("--config")
        .arg(repo.join("homelab.yaml"))
        .args(args)
        .env("SOPS_AGE_KEY_FILE", personal)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("EDITOR", "true")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_EDITOR")
        .env_remove("KUBECONFIG")
        .env_remove("HOMELAB_PROXMOX_TOKEN_SECRET")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs")
}

/// The age recipient a repository made by `init` encrypts to (its `.sops.yaml`).
fn recipient(repo: &Path) -> String {
    let text = std::fs::read_to_string(repo.join(".sops.yaml")).expect(".sops.yaml");
    text.split(|c: char| c.is_whitespace() || c == ',')
        .find(|w| w.starts_with("age1"))
        .expect("a recipient")
        .to_string()
}

#[test]
fn every_decrypting_command_uses_the_repository_key_beside_an_unrelated_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("homelab");
    let demo = homelabctl()
        .args(["demo", "--subnet", "57", "--keep"])
        .arg(&repo)
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .expect("demo runs");
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let repo = std::fs::canonicalize(&repo).expect("repo");
    let (_sim, _rest) = start_sim(&repo.join(".homelab/sim"));

    // Another repository's key stands in for the operator's personal key.
    let other = dir.path().join("other");
    homelabctl().arg("init").arg(&other).assert().success();
    let personal = other.join(".age-key.txt");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");

    let commands: &[&[&str]] = &[
        &["sops", "decrypt", "talos-secrets.enc.yaml"],
        &["sops", "edit", "talos-secrets.enc.yaml"],
        &["sops", "updatekeys", "--yes", "talos-secrets.enc.yaml"],
        &["talos", "config"],
        &["config", "export"],
        &["config", "decrypt"],
        &["plan", "--detailed-exitcode"],
        &["apply", "--yes"],
        &["doctor"],
        &["flux", "sops-key"],
        &["setup", "."],
    ];
    for args in commands {
        let out = run(&repo, &personal, &home, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "homelabctl {}:\n{}\n{stderr}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("no age identity"), "{stderr}");
        if args[0] == "flux" {
            // Flux gets the repository's key, never the personal one found beside it.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains(&recipient(&repo)), "{stdout}");
            assert!(!stdout.contains(&recipient(&other)), "{stdout}");
        }
    }
    // The personal key stayed where it was: setup found it and created nothing.
    assert!(!home.join(".config/sops/age/keys.txt").exists());
}

/// A repository made by `init` (its key in `.age-key.txt`) holding `s.enc.yaml`, encrypted to that key.
pub fn repo_with_secret(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    homelabctl().arg("init").arg(&repo).assert().success();
    std::fs::write(repo.join("s.enc.yaml"), "token: abc\n").expect("write");
    homelabctl()
        .current_dir(&repo)
        .args(["sops", "encrypt", "--in-place", "s.enc.yaml"])
        .env_remove("SOPS_AGE_RECIPIENTS")
        .assert()
        .success();
    repo
}

#[test]
fn the_looked_in_list_names_each_place_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_secret(dir.path());
    // No key decrypts: the default keys.txt is also what SOPS_AGE_KEY_FILE names.
    let home = dir.path().join("home");
    let keys = home.join(".config/sops/age/keys.txt");
    let other = dir.path().join("other");
    homelabctl().arg("init").arg(&other).assert().success();
    std::fs::create_dir_all(keys.parent().expect("parent")).expect("mkdir");
    std::fs::copy(other.join(".age-key.txt"), &keys).expect("copy");
    std::fs::remove_file(repo.join(".age-key.txt")).expect("rm");
    let out = homelabctl()
        .current_dir(&repo)
        .args(["sops", "decrypt", "s.enc.yaml"])
        .env("SOPS_AGE_KEY_FILE", &keys)
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    // miette wraps the message (also at the hyphen of `.age-key.txt`): compare without the layout.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(stderr.contains("noageidentity"), "{stderr}");
    assert_eq!(
        stderr.matches("keys.txt").count(),
        1,
        "each place once: {stderr}"
    );
    assert!(stderr.contains(".age-key.txt"), "{stderr}");
}
