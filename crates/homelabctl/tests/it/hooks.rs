//! `homelabctl hooks` and `homelabctl setup` in temporary repositories, with real `git commit`.

use std::path::Path;
use std::process::{Command, Output};

use predicates::prelude::*;

use crate::homelabctl;

struct Repo {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        r.git_ok(&["init", "-q", "-b", "main"]);
        r.git_ok(&["config", "user.name", "Hook Tester"]);
        r.git_ok(&["config", "user.email", "hooks@example.invalid"]);
        r.git_ok(&["config", "commit.gpgsign", "false"]);
        r
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(self.path())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    }

    fn git_ok(&self, args: &[&str]) -> String {
        let out = self.git(args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn homelabctl(&self) -> assert_cmd::Command {
        let mut cmd = homelabctl();
        cmd.current_dir(self.path())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env_remove("SOPS_AGE_KEY_FILE")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        cmd
    }

    fn commit(&self, message: &str) -> (bool, String) {
        let out = self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

fn token() -> String {
    // Assembled at run time so this file holds no secret.
    format!("{}{}", "ghp_", "Zq8Xw2Lr5Tn9Vb3Mk7Hj1Gf4Dd6Ss0Aa8Pp2")
}

#[test]
fn installed_hooks_enforce_conventional_commits_on_real_commits() {
    let repo = Repo::new();
    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .success()
        .stderr(predicate::str::contains("installed"));
    let (ok, text) = repo.commit("updated some stuff");
    assert!(!ok, "a non-conventional message must be refused: {text}");
    assert!(
        text.contains("Conventional Commits")
            && text.contains("feat(scan): detect Proxmox API tokens"),
        "{text}"
    );
    let (ok, text) =
        repo.commit("feat(hooks): a good message\n\nBody.\n\nBREAKING CHANGE: none really");
    assert!(ok, "{text}");
    assert_eq!(
        repo.git_ok(&["log", "--format=%s"]).trim(),
        "feat(hooks): a good message"
    );
}

#[test]
fn a_staged_secret_blocks_the_commit_until_allowed() {
    let repo = Repo::new();
    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .success();
    std::fs::write(repo.path().join("ci.env"), format!("TOKEN={}\n", token())).unwrap();
    repo.git_ok(&["add", "ci.env"]);
    let (ok, text) = repo.commit("feat: add ci settings");
    assert!(!ok, "{text}");
    assert!(
        text.contains("github-pat") && text.contains("ci.env:1"),
        "{text}"
    );
    assert!(
        !text.contains(&token()[4..]),
        "the hook output must not show the secret"
    );
    std::fs::write(
        repo.path().join("ci.env"),
        format!("TOKEN={} # homelabctl:allow\n", token()),
    )
    .unwrap();
    repo.git_ok(&["add", "ci.env"]);
    let (ok, text) = repo.commit("feat: add ci settings");
    assert!(ok, "{text}");
}

#[test]
fn install_is_idempotent_and_honours_core_hooks_path() {
    let repo = Repo::new();
    repo.git_ok(&["config", "core.hooksPath", ".githooks"]);
    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .success();
    let hook = repo.path().join(".githooks/pre-commit");
    let first = std::fs::read_to_string(&hook).unwrap();
    assert!(first.contains("scan --staged"));
    assert!(!repo.path().join(".git/hooks/pre-commit").exists());
    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already installed"));
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), first);
    let (ok, text) = repo.commit("nope");
    assert!(!ok, "{text}");
}

#[test]
fn a_foreign_hook_is_refused_then_chained_or_replaced() {
    let repo = Repo::new();
    let hooks = repo.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let foreign = "#!/bin/sh\necho ran > \"$(git rev-parse --show-toplevel)/.git/foreign-ran\"\n";
    std::fs::write(hooks.join("pre-commit"), foreign).unwrap();
    make_executable(&hooks.join("pre-commit"));

    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--chain"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).unwrap(),
        foreign,
        "left untouched"
    );
    assert!(!hooks.join("commit-msg").exists(), "nothing half-installed");

    repo.homelabctl()
        .args(["hooks", "install", "--chain"])
        .assert()
        .success();
    let (ok, text) = repo.commit("feat: chained");
    assert!(ok, "{text}");
    assert!(
        repo.path().join(".git/foreign-ran").exists(),
        "the chained hook ran"
    );
    repo.homelabctl()
        .args(["hooks", "install"])
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(hooks.join("pre-commit"))
            .unwrap()
            .contains(".homelabctl-chained"),
        "still chained"
    );

    let other = Repo::new();
    let h = other.path().join(".git/hooks");
    std::fs::create_dir_all(&h).unwrap();
    std::fs::write(h.join("commit-msg"), "#!/bin/sh\nexit 0\n").unwrap();
    other
        .homelabctl()
        .args(["hooks", "install", "--force"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(h.join("commit-msg.homelabctl-backup")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!other.commit("bad message").0);
}

#[cfg(unix)]
fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn make_executable(_: &Path) {}

#[test]
fn commit_msg_checks_a_file_ignoring_comments_and_scissors() {
    let repo = Repo::new();
    let file = repo.path().join("MSG");
    std::fs::write(&file, "fix(scan): handle tabs\n\n# Please enter the commit message\n# ------------------------ >8 ------------------------\nnot: checked\n").unwrap();
    repo.homelabctl()
        .args(["hooks", "commit-msg"])
        .arg(&file)
        .assert()
        .success();
    std::fs::write(&file, "fix(scan) handle tabs\n").unwrap();
    repo.homelabctl()
        .args(["hooks", "commit-msg"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "expected: <type>[(scope)][!]: <subject>",
        ));
}

#[test]
fn setup_creates_the_age_identity_once_prints_only_the_public_key_and_installs_hooks() {
    let repo = Repo::new();
    let out = repo.homelabctl().arg("setup").assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let public = stdout.trim();
    assert!(
        public.starts_with("age1") && !stdout.contains("AGE-SECRET-KEY"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1);
    let keys = repo.home.path().join(".config/sops/age/keys.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The real age agrees on the public key.
    let peer = Command::new("age-keygen")
        .arg("-y")
        .arg(&keys)
        .output()
        .expect("age-keygen (age 1.1.1) installed");
    assert_eq!(String::from_utf8_lossy(&peer.stdout).trim(), public);
    assert!(repo.path().join(".git/hooks/commit-msg").exists());

    let again = repo.homelabctl().arg("setup").assert().success();
    assert_eq!(
        String::from_utf8(again.get_output().stdout.clone())
            .unwrap()
            .trim(),
        public
    );
}
