//! The edit flow: decrypt into a private 0700 directory, run the editor, re-encrypt with the same data key
//! (unchanged values keep their ciphertext), write nothing when nothing changed, and never touch the original
//! when the edited text does not parse (the caller decides whether to re-open the editor). The plaintext copy
//! is overwritten and its directory removed however the flow ends: saved, unchanged, editor failure, error,
//! or a signal the caller turned into an error.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::SopsError;
use crate::identities::{Identities, split_command};
use crate::sopsfile::decrypt;
use crate::store::{Format, Style};

/// What the edit flow needs from its caller: running the editor and asking the user what to do on errors.
pub trait EditSession {
    /// Opens the editor on `path` and returns when it exits.
    fn open_editor(&mut self, path: &Path) -> Result<(), SopsError>;
    /// The edited file does not parse (`error`): return `true` to re-open the editor, `false` to give up.
    fn reopen_after_error(&mut self, error: &SopsError) -> bool;
}

/// How an edit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOutcome {
    /// The plaintext was not changed; the file was not written.
    Unchanged,
    /// The file was re-encrypted and replaced.
    Saved,
}

/// Runs the edit flow on an existing SOPS file.
pub fn edit_file(
    path: &Path,
    identities: &Identities,
    style: &Style,
    session: &mut dyn EditSession,
) -> Result<EditOutcome, SopsError> {
    let name = path.display().to_string();
    let original = std::fs::read(path).map_err(|e| SopsError::io(path, "reading", e))?;
    let format = Format::from_path(path);
    let mut decrypted = decrypt(&original, format, identities, &name)?;
    let plaintext = decrypted.plaintext(style);

    let copy = PlaintextCopy::create(path, &plaintext)?;
    let tmp = copy.file.clone();

    loop {
        session.open_editor(&tmp)?;
        let edited =
            Zeroizing::new(std::fs::read(&tmp).map_err(|e| SopsError::io(&tmp, "reading", e))?);
        if edited[..] == plaintext[..] {
            return Ok(EditOutcome::Unchanged);
        }
        match decrypted.reencrypt(&edited, style) {
            Ok(out) => {
                homelab_fs::write(path, &out, homelab_fs::Mode::KeepOr(0o644))?;
                return Ok(EditOutcome::Saved);
            }
            Err(
                e @ (SopsError::Parse { .. }
                | SopsError::Unsupported { .. }
                | SopsError::AlreadyEncrypted { .. }),
            ) => {
                if !session.reopen_after_error(&e) {
                    return Err(SopsError::Edit {
                        message: format!("{e}\nedit abandoned: {name} was left unchanged"),
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The decrypted copy the editor works on, in its own 0700 directory; dropping it overwrites the copy and
/// removes the directory (with anything the editor left there, such as swap files), on every way out.
struct PlaintextCopy {
    dir: Option<tempfile::TempDir>,
    file: std::path::PathBuf,
}

impl PlaintextCopy {
    fn create(original: &Path, plaintext: &[u8]) -> Result<PlaintextCopy, SopsError> {
        let dir = tempfile::Builder::new()
            .prefix("homelab-sops-edit-")
            .tempdir()
            .map_err(|e| {
                SopsError::io(std::env::temp_dir(), "creating a private directory in", e)
            })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .map_err(|e| SopsError::io(dir.path(), "restricting", e))?;
        }
        let file_name = original
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "secret".into());
        let copy = PlaintextCopy {
            file: dir.path().join(file_name),
            dir: Some(dir),
        };
        write_private(&copy.file, plaintext)?;
        Ok(copy)
    }
}

impl Drop for PlaintextCopy {
    fn drop(&mut self) {
        // Overwrite the plaintext before unlinking it: the editor may have replaced the file, so the
        // current one is what gets zeroed.
        if let Ok(meta) = std::fs::metadata(&self.file) {
            let _ = std::fs::write(&self.file, vec![0u8; meta.len() as usize]);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SopsError> {
    if homelab_fs::write_new(path, bytes, homelab_fs::Mode::Private)? {
        return Ok(());
    }
    Err(SopsError::io(
        path,
        "creating",
        std::io::ErrorKind::AlreadyExists.into(),
    ))
}

/// Runs `$EDITOR` (split like a shell command line, no shell) on `path`, falling back to `vim`, `nano`, `vi`
/// like sops. Returns an error when the editor cannot be started or exits with a failure.
pub fn run_editor(path: &Path) -> Result<(), SopsError> {
    for words in editor_candidates() {
        let Some((prog, args)) = words.split_first() else {
            continue;
        };
        match std::process::Command::new(prog)
            .args(args)
            .arg(path)
            .status()
        {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => return Err(editor_failed(prog, &status)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(editor_unstartable(prog, &e)),
        }
    }
    Err(no_editor())
}

/// The editor command lines to try, in order, as sops picks them: `$SOPS_EDITOR`, else `$EDITOR` (each
/// split like a shell command line, no shell), else `vim`, `nano`, `vi`. The file is the last argument.
pub fn editor_candidates() -> Vec<Vec<String>> {
    let configured = std::env::var("SOPS_EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let configured = configured.or_else(|| {
        std::env::var("EDITOR")
            .ok()
            .filter(|e| !e.trim().is_empty())
    });
    match configured {
        Some(cmd) => vec![split_command(&cmd)],
        None => ["vim", "nano", "vi"]
            .iter()
            .map(|e| vec![e.to_string()])
            .collect(),
    }
}

/// The editor ran and failed: nothing is saved.
pub fn editor_failed(prog: &str, status: &std::process::ExitStatus) -> SopsError {
    SopsError::Edit {
        message: format!("the editor {prog:?} exited with {status}; nothing was saved"),
    }
}

/// The editor exists but could not be started.
pub fn editor_unstartable(prog: &str, error: &std::io::Error) -> SopsError {
    SopsError::Edit {
        message: format!("could not run the editor {prog:?}: {error}"),
    }
}

/// None of [`editor_candidates`] exists.
pub fn no_editor() -> SopsError {
    SopsError::Edit {
        message: "no editor found: set $EDITOR (or $SOPS_EDITOR)".into(),
    }
}
