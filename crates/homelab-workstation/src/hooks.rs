//! Installing homelabctl's git hooks (pre-commit: fast check and a scan of the staged content;
//! commit-msg: the Conventional Commits check) into the directory git really uses (`core.hooksPath`
//! honoured), idempotently, and never over a hook someone else wrote without being told to.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Marks hook files homelabctl wrote (and may rewrite).
pub const MARKER: &str = "# homelabctl-managed hook";

/// Suffix of a foreign hook kept and run first (`--chain`).
pub const CHAINED_SUFFIX: &str = ".homelabctl-chained";

/// Suffix of a foreign hook moved aside (`--force`).
pub const BACKUP_SUFFIX: &str = ".homelabctl-backup";

/// The hooks homelabctl installs.
pub const HOOKS: [&str; 2] = ["pre-commit", "commit-msg"];

/// What to do with a hook file homelabctl did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Foreign {
    /// Stop with an error that explains the choices.
    #[default]
    Refuse,
    /// Keep it and run it before homelabctl's checks.
    Chain,
    /// Move it aside (`<hook>.homelabctl-backup`) and install homelabctl's.
    Replace,
}

/// What happened to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Created(PathBuf),
    Updated(PathBuf),
    Unchanged(PathBuf),
    /// Installed, running the existing hook (moved to the second path) first.
    Chained(PathBuf, PathBuf),
    /// Installed after moving the existing hook to the second path.
    Replaced(PathBuf, PathBuf),
}

/// A hook installation that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{path} is not homelabctl's hook; it was left untouched")]
    Foreign { path: PathBuf },
    #[error("cannot find the git hooks directory of {repo}: {message}")]
    NotARepository { repo: PathBuf, message: String },
    #[error("cannot write hook {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HookError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            HookError::Foreign { path } => format!(
                "rerun with --chain to keep it and run it before homelabctl's checks, or --force to replace it \
                 (it is moved to {}{BACKUP_SUFFIX})",
                path.display()
            ),
            HookError::NotARepository { .. } => {
                "run inside a git repository (git init) or pass its directory".into()
            }
            HookError::Io { .. } => "check the permissions of the hooks directory".into(),
        }
    }
}

/// The hooks directory git uses for `repo`: `core.hooksPath` when set, else `.git/hooks` (worktrees handled).
pub fn hooks_dir(repo: &Path) -> Result<PathBuf, HookError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--git-path", "hooks"])
        .output()
        .map_err(|e| HookError::NotARepository {
            repo: repo.to_owned(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(HookError::NotARepository {
            repo: repo.to_owned(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(if dir.is_absolute() {
        dir
    } else {
        repo.join(dir)
    })
}

/// The script for `hook`. `exe` is the homelabctl that installed it, used when `homelabctl` is not on PATH.
pub fn script(hook: &str, exe: &Path, chained: bool) -> String {
    let exe = shell_quote(&exe.to_string_lossy());
    let mut s = format!(
        "#!/bin/sh\n{MARKER} ({hook}); `homelabctl hooks install` rewrites this file.\n\
         if [ -x {exe} ]; then hl={exe}; else hl=homelabctl; fi\n"
    );
    if chained {
        s.push_str(&format!(
            "# The hook that was here before, kept by `homelabctl hooks install --chain`.\n\
             \"$0{CHAINED_SUFFIX}\" \"$@\" || exit $?\n"
        ));
    }
    match hook {
        "pre-commit" => s.push_str(
            "# `check` runs once this homelabctl has it.\n\
             if \"$hl\" check --help >/dev/null 2>&1; then \"$hl\" check --fast || exit $?; fi\n\
             exec \"$hl\" scan --staged .\n",
        ),
        _ => s.push_str("exec \"$hl\" hooks commit-msg \"$1\"\n"),
    }
    s
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Installs both hooks into `repo`'s hooks directory.
pub fn install(repo: &Path, exe: &Path, foreign: Foreign) -> Result<Vec<Installed>, HookError> {
    let dir = hooks_dir(repo)?;
    std::fs::create_dir_all(&dir).map_err(|source| HookError::Io {
        path: dir.clone(),
        source,
    })?;
    // Check every hook first so a refusal leaves nothing half-installed.
    if foreign == Foreign::Refuse {
        for hook in HOOKS {
            let path = dir.join(hook);
            if is_foreign(&path) {
                return Err(HookError::Foreign { path });
            }
        }
    }
    HOOKS
        .iter()
        .map(|hook| install_one(&dir, hook, exe, foreign))
        .collect()
}

fn is_foreign(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(content) => !String::from_utf8_lossy(&content).contains(MARKER),
        Err(_) => path.symlink_metadata().is_ok(),
    }
}

fn install_one(
    dir: &Path,
    hook: &str,
    exe: &Path,
    foreign: Foreign,
) -> Result<Installed, HookError> {
    let path = dir.join(hook);
    let chained_path = dir.join(format!("{hook}{CHAINED_SUFFIX}"));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| HookError::Io { path: p, source }
    };
    let existed = path.symlink_metadata().is_ok();
    let mut outcome = None;
    if existed && is_foreign(&path) {
        match foreign {
            Foreign::Refuse => return Err(HookError::Foreign { path }),
            Foreign::Chain => {
                if chained_path.symlink_metadata().is_ok() {
                    // A second foreign hook: keep the first chained one as a backup rather than lose either.
                    let backup = dir.join(format!("{hook}{BACKUP_SUFFIX}"));
                    std::fs::rename(&chained_path, &backup).map_err(io(&backup))?;
                }
                std::fs::rename(&path, &chained_path).map_err(io(&chained_path))?;
                outcome = Some(Installed::Chained(path.clone(), chained_path.clone()));
            }
            Foreign::Replace => {
                let backup = dir.join(format!("{hook}{BACKUP_SUFFIX}"));
                std::fs::rename(&path, &backup).map_err(io(&backup))?;
                outcome = Some(Installed::Replaced(path.clone(), backup));
            }
        }
    }
    let content = script(hook, exe, chained_path.symlink_metadata().is_ok());
    if outcome.is_none() && existed && std::fs::read_to_string(&path).is_ok_and(|c| c == content) {
        make_executable(&path).map_err(io(&path))?;
        return Ok(Installed::Unchanged(path));
    }
    // Git runs hooks only when they are executable.
    homelab_fs::write(&path, content.as_bytes(), homelab_fs::Mode::Exact(0o755))
        .map_err(|e| io(&path)(e.source))?;
    Ok(outcome.unwrap_or(if existed {
        Installed::Updated(path)
    } else {
        Installed::Created(path)
    }))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path)?.permissions();
    perms.set_mode(perms.mode() | 0o755);
    std::fs::set_permissions(path, perms)
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_call_the_right_commands_and_quote_the_path() {
        let s = script("pre-commit", Path::new("/opt/it's/homelabctl"), false);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(MARKER));
        assert!(s.contains(r"'/opt/it'\''s/homelabctl'"));
        assert!(s.contains("check --fast") && s.contains("scan --staged"));
        let c = script("commit-msg", Path::new("/x"), true);
        assert!(c.contains("hooks commit-msg \"$1\"") && c.contains(CHAINED_SUFFIX));
    }
}
