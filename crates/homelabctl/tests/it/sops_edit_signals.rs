//! `sops edit` never leaves its plaintext behind: SIGTERM, SIGINT or SIGHUP to homelabctl while the editor
//! runs stops the editor, removes the private `homelab-sops-edit-*` directory and exits 128 + the signal;
//! an editor that fails leaves nothing behind either.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::identity_lookup::repo_with_secret;

/// A repository with an encrypted `s.enc.yaml` (and its bytes), and an empty directory for TMPDIR.
struct Fixture {
    dir: tempfile::TempDir,
    repo: std::path::PathBuf,
    before: Vec<u8>,
    tmp: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_with_secret(dir.path());
    let before = std::fs::read(repo.join("s.enc.yaml")).expect("read");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    Fixture {
        dir,
        repo,
        before,
        tmp,
    }
}

/// Writes an editor script that records its pid in `pid_file`, then becomes `sleep` (so the pid is the
/// editor process itself).
fn sleeping_editor(dir: &Path, pid_file: &Path) -> std::path::PathBuf {
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > '{}.tmp'\nmv '{0}.tmp' '{0}'\nexec sleep 600\n",
            pid_file.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    script
}

/// `homelabctl sops edit s.yaml` in `repo` with `editor`, its temporary files under `tmp`.
fn edit_command(repo: &Path, editor: &Path, tmp: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("homelabctl"));
    cmd.args(["sops", "edit", "s.enc.yaml"])
        .current_dir(repo)
        .env("EDITOR", editor)
        .env("TMPDIR", tmp)
        .env("HOME", repo)
        .env("NO_COLOR", "1")
        .env_remove("SOPS_EDITOR")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("HOMELAB_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The `homelab-sops-edit-*` entries under `tmp`.
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .expect("tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("homelab-sops-edit-"))
        .collect()
}

fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// Waits (bounded by a number of checks, not by a deadline the test asserts on) until `ready` holds.
fn wait_until(mut ready: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the editor never started");
}

fn interrupted_edit_leaves_nothing(signal: &str, code: i32) {
    let Fixture {
        dir,
        repo,
        before,
        tmp,
    } = fixture();
    let pid_file = dir.path().join("editor.pid");
    let editor = sleeping_editor(dir.path(), &pid_file);
    let child = edit_command(&repo, &editor, &tmp).spawn().expect("spawn");
    wait_until(|| pid_file.exists());
    let editor_pid = std::fs::read_to_string(&pid_file).expect("pid");
    let editor_pid = editor_pid.trim();
    assert_eq!(
        leftovers(&tmp).len(),
        1,
        "the plaintext copy exists while editing"
    );
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
    assert!(
        stderr.contains(&format!("interrupted by SIG{signal}")),
        "{stderr}"
    );
    assert_eq!(
        leftovers(&tmp),
        Vec::<String>::new(),
        "{signal}: plaintext left"
    );
    assert!(
        !alive(editor_pid),
        "{signal}: the editor {editor_pid} still runs"
    );
    assert_eq!(
        std::fs::read(repo.join("s.enc.yaml")).expect("read"),
        before
    );
}

#[test]
fn sigterm_during_edit_stops_the_editor_and_removes_the_plaintext() {
    interrupted_edit_leaves_nothing("TERM", 143);
}

#[test]
fn sigint_during_edit_stops_the_editor_and_removes_the_plaintext() {
    interrupted_edit_leaves_nothing("INT", 130);
}

#[test]
fn sighup_during_edit_stops_the_editor_and_removes_the_plaintext() {
    interrupted_edit_leaves_nothing("HUP", 129);
}

#[test]
fn a_failing_editor_leaves_no_plaintext_and_the_file_unchanged() {
    let Fixture {
        dir,
        repo,
        before,
        tmp,
    } = fixture();
    let editor = dir.path().join("fail.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\necho 'token: changed' > \"$1\"\nexit 3\n",
    )
    .expect("write");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = edit_command(&repo, &editor, &tmp).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exited with exit status: 3"), "{stderr}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    assert_eq!(
        std::fs::read(repo.join("s.enc.yaml")).expect("read"),
        before
    );
}

#[test]
fn ctrl_c_on_the_terminal_belongs_to_the_interactive_editor() {
    let Fixture { dir, repo, tmp, .. } = fixture();
    let (ppid_file, go) = (dir.path().join("homelabctl.pid"), dir.path().join("go"));
    // The editor records homelabctl's pid (its parent), then waits for the test's go-ahead and exits
    // without changing anything.
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\necho $PPID > '{p}.tmp'\nmv '{p}.tmp' '{p}'\n\
             n=0; while [ ! -e '{g}' ] && [ $n -lt 3000 ]; do sleep 0.02; n=$((n+1)); done\n",
            p = ppid_file.display(),
            g = go.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // `script` gives homelabctl (and the editor) a terminal, as an interactive edit has.
    let bin = assert_cmd::cargo::cargo_bin("homelabctl");
    let cmd = edit_command(&repo, &editor, &tmp);
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut script = Command::new("script");
    script
        .args(["-qec"])
        .arg(format!("'{}' sops edit s.enc.yaml", bin.display()))
        .arg("/dev/null")
        .current_dir(&repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let child = script.spawn().expect("script");
    wait_until(|| ppid_file.exists());
    let pid = std::fs::read_to_string(&ppid_file).expect("pid");
    let sent = Command::new("kill")
        .args(["-INT", pid.trim()])
        .status()
        .expect("kill");
    assert!(sent.success());
    std::fs::write(&go, "").expect("go");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no changes, file not written"), "{text}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
}
