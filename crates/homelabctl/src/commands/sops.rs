//! `homelabctl sops encrypt|decrypt|edit|updatekeys FILE`: SOPS files with age, compatible with the sops CLI.

use crate::ExitStatus;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use homelab_fs::Mode;
use homelab_sops::{
    CreationRule, EditOutcome, EditSession, Format, Identities, SopsConfig, SopsError, Style,
    decrypt_file, edit_file, editor_candidates, editor_failed, editor_unstartable,
    encrypt_with_style, no_editor,
};
use miette::{IntoDiagnostic as _, miette};

use super::Global;

/// SOPS files encrypted to age keys (readable and writable by the real sops CLI and Flux).
#[derive(Debug, Args)]
pub struct SopsArgs {
    #[command(subcommand)]
    pub command: SopsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SopsCommand {
    /// Encrypt a plaintext file using the creation rule `.sops.yaml` (looked up from the working directory)
    /// gives for its path. Prints the result unless --in-place or --output.
    Encrypt {
        /// The plaintext file (.yaml/.yml, .json, .env; anything else is encrypted as binary).
        file: PathBuf,
        /// Replace FILE with its encrypted form.
        #[arg(long, short = 'i', conflicts_with = "output_file")]
        in_place: bool,
        /// Write the encrypted file here instead of standard output (sops's --output; the global --output
        /// selects text/JSON rendering).
        #[arg(short = 'o', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
        /// age recipients (comma-separated) overriding the rule's keys, as sops's --age.
        #[arg(
            long,
            env = "SOPS_AGE_RECIPIENTS",
            value_delimiter = ',',
            value_name = "AGE_PUBLIC_KEY"
        )]
        age: Vec<String>,
        /// Treat the input as this format instead of guessing from the extension.
        #[arg(long, value_parser = ["yaml", "json", "dotenv", "binary"])]
        input_type: Option<String>,
    },
    /// Decrypt a SOPS file (MAC verified) to standard output, or --output FILE (written with mode 0600).
    Decrypt {
        /// The encrypted file.
        file: PathBuf,
        /// Print only this value, e.g. '["proxmox"]["token_secret"]'.
        #[arg(long, value_name = "PATH")]
        extract: Option<String>,
        /// Write the plaintext here (mode 0600) instead of standard output.
        #[arg(short = 'o', long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
    /// Edit a SOPS file in $EDITOR: decrypted into a private directory, re-encrypted on save with the same data
    /// key (unchanged values keep their ciphertext); nothing is written when nothing changed.
    Edit {
        /// The encrypted file.
        file: PathBuf,
    },
    /// Re-wrap a file's data key for the recipients its `.sops.yaml` creation rule now lists.
    Updatekeys {
        /// The encrypted file.
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

fn report(e: SopsError) -> miette::Report {
    crate::failure::failure(e)
}

/// Writes `bytes` to `path` atomically, reporting a failure like any other SOPS file error.
fn write_file(path: &Path, bytes: &[u8], mode: Mode) -> miette::Result<()> {
    homelab_fs::write(path, bytes, mode).map_err(|e| report(e.into()))
}

/// The homelab repository root: the directory of the homelab configuration (where `.age-key.txt` lives).
fn repo_root(global: &Global) -> PathBuf {
    match global.config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn config() -> miette::Result<Option<SopsConfig>> {
    let cwd = std::env::current_dir().into_diagnostic()?;
    SopsConfig::find(&cwd).map_err(report)
}

fn style(config: &Option<SopsConfig>) -> Style {
    config.as_ref().map(|c| c.style).unwrap_or_default()
}

pub fn run(global: &Global, args: SopsArgs) -> miette::Result<ExitStatus> {
    match args.command {
        SopsCommand::Encrypt {
            file,
            in_place,
            output_file,
            age,
            input_type,
        } => encrypt(
            &file,
            in_place,
            output_file.as_deref(),
            &age,
            input_type.as_deref(),
        ),
        SopsCommand::Decrypt {
            file,
            extract,
            output_file,
        } => decrypt(global, &file, extract.as_deref(), output_file.as_deref()),
        SopsCommand::Edit { file } => edit(global, &file),
        SopsCommand::Updatekeys { file, yes } => updatekeys(global, &file, yes),
    }
}

fn encrypt(
    file: &Path,
    in_place: bool,
    output: Option<&Path>,
    age: &[String],
    input_type: Option<&str>,
) -> miette::Result<ExitStatus> {
    let config = config()?.filter(SopsConfig::has_rules);
    let name = file.display().to_string();
    let mut rule = match &config {
        Some(c) => c.rule_for(file).map_err(report)?,
        None => CreationRule::default(),
    };
    let age: Vec<String> = age
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if !age.is_empty() {
        rule.recipients = age;
    }
    if rule.recipients.is_empty() {
        return Err(report(SopsError::NoRecipients { file: name }));
    }
    let format = input_type
        .and_then(Format::from_name)
        .unwrap_or_else(|| Format::from_path(file));
    let plaintext = zeroize::Zeroizing::new(
        std::fs::read(file).map_err(|e| miette!("{}: reading: {e}", file.display()))?,
    );
    let out =
        encrypt_with_style(&plaintext, format, &rule, &style(&config), &name).map_err(report)?;
    match (in_place, output) {
        (true, _) => write_file(file, &out, Mode::KeepOr(0o644))?,
        (false, Some(o)) => write_file(o, &out, Mode::KeepOr(0o644))?,
        (false, None) => crate::out::bytes(&out)?,
    }
    Ok(ExitStatus::Success)
}

fn decrypt(
    global: &Global,
    file: &Path,
    extract: Option<&str>,
    output: Option<&Path>,
) -> miette::Result<ExitStatus> {
    let config = config()?;
    let ids = Identities::discover(Some(&repo_root(global))).map_err(report)?;
    let decrypted = decrypt_file(file, &ids).map_err(report)?;
    let style = style(&config);
    let plain = match extract {
        Some(path) => decrypted.extract(path, &style).map_err(report)?,
        None => decrypted.plaintext(&style),
    };
    match output {
        Some(o) => write_file(o, &plain, Mode::Private)?,
        None => crate::out::bytes(&plain)?,
    }
    Ok(ExitStatus::Success)
}

/// The signals that end `sops edit` early. While they are handled, none kills homelabctl outright, so
/// the editor is stopped and the decrypted copy removed (by `edit_file`'s cleanup) on each of them.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// The first of the signals to arrive, with its number.
    async fn recv(&mut self) -> (&'static str, u8) {
        tokio::select! {
            _ = self.term.recv() => ("SIGTERM", 15),
            _ = self.int.recv() => ("SIGINT", 2),
            _ = self.hup.recv() => ("SIGHUP", 1),
        }
    }
}

/// Runs the editor and asks on the terminal whether to re-open after a parse error, giving up at once
/// on SIGTERM, SIGHUP or SIGINT (the editor is killed; the caller exits with 128 + the signal number),
/// except a terminal's Ctrl-C while an interactive editor runs, which is the editor's.
struct TerminalSession {
    runtime: tokio::runtime::Runtime,
    signals: Signals,
    /// The signal that ended the session, if one did.
    received: Option<(&'static str, u8)>,
    /// Whether standard input is a terminal: then a SIGINT is the terminal's Ctrl-C, which reaches the
    /// interactive editor too and is its key (vim and nano use it), so, as git does while its editor
    /// runs, it does not end the edit. A SIGINT sent to homelabctl without a terminal does.
    interactive: bool,
}

impl TerminalSession {
    /// Starts handling the signals; from here until the process exits they no longer kill it.
    fn start() -> miette::Result<TerminalSession> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .into_diagnostic()?;
        let signals = runtime
            .block_on(async {
                Ok::<_, std::io::Error>(Signals {
                    term: signal(SignalKind::terminate())?,
                    int: signal(SignalKind::interrupt())?,
                    hup: signal(SignalKind::hangup())?,
                })
            })
            .into_diagnostic()?;
        Ok(TerminalSession {
            runtime,
            signals,
            received: None,
            interactive: std::io::stdin().is_terminal(),
        })
    }

    /// A signal that arrived while no editor ran (e.g. during re-encryption), if any.
    fn pending(&mut self) -> Option<(&'static str, u8)> {
        let (signals, interactive) = (&mut self.signals, self.interactive);
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    biased;
                    sig = signals.recv() => {
                        if !ends_edit(sig, interactive) {
                            continue;
                        }
                        break Some(sig);
                    }
                    _ = std::future::ready(()) => break None,
                }
            }
        })
    }
}

/// Whether `signal` ends the edit: SIGTERM and SIGHUP always; SIGINT unless it is a terminal's Ctrl-C
/// (see [`TerminalSession::interactive`]).
fn ends_edit(signal: (&str, u8), interactive: bool) -> bool {
    !(interactive && signal.0 == "SIGINT")
}

/// The error that ends an edit stopped by `signal`.
fn interrupted(signal: &str) -> SopsError {
    SopsError::Edit {
        message: format!(
            "interrupted by {signal}: the editor was stopped and the decrypted copy removed; nothing was saved"
        ),
    }
}

impl EditSession for TerminalSession {
    fn open_editor(&mut self, path: &Path) -> Result<(), SopsError> {
        let _context = self.runtime.enter();
        let mut started = None;
        for words in editor_candidates() {
            let Some((prog, args)) = words.split_first() else {
                continue;
            };
            match tokio::process::Command::new(prog)
                .args(args)
                .arg(path)
                .kill_on_drop(true)
                .spawn()
            {
                Ok(child) => {
                    started = Some((prog.clone(), child));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(editor_unstartable(prog, &e)),
            }
        }
        let (prog, mut child) = started.ok_or_else(no_editor)?;
        let (signals, interactive) = (&mut self.signals, self.interactive);
        let ended = self.runtime.block_on(async {
            loop {
                tokio::select! {
                    status = child.wait() => break Ok(status),
                    sig = signals.recv() => {
                        if ends_edit(sig, interactive) {
                            break Err(sig);
                        }
                    }
                }
            }
        });
        match ended {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(editor_failed(&prog, &status)),
            Ok(Err(e)) => Err(editor_unstartable(&prog, &e)),
            Err(sig) => {
                // Killed and reaped before the plaintext is removed, so it cannot write it back.
                let _ = child.start_kill();
                let _ = self.runtime.block_on(child.wait());
                self.received = Some(sig);
                Err(interrupted(sig.0))
            }
        }
    }

    fn reopen_after_error(&mut self, error: &SopsError) -> bool {
        eprintln!("error: {error}");
        if !std::io::stdin().is_terminal() {
            return false;
        }
        eprint!("Re-open the editor to fix it? [Y/n] ");
        // The answer is read on a thread so that a signal still ends the edit while it waits.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line);
            let _ = tx.send(read.map(|n| (n, line)));
        });
        let signals = &mut self.signals;
        let answer = self.runtime.block_on(async {
            tokio::select! {
                answer = rx => Ok(answer),
                sig = signals.recv() => Err(sig),
            }
        });
        match answer {
            Ok(Ok(Ok((n, line)))) if n > 0 => !matches!(line.trim(), "n" | "N" | "no"),
            Ok(_) => false,
            Err(sig) => {
                self.received = Some(sig);
                false
            }
        }
    }
}

fn edit(global: &Global, file: &Path) -> miette::Result<ExitStatus> {
    let config = config()?;
    let ids = Identities::discover(Some(&repo_root(global))).map_err(report)?;
    let mut session = TerminalSession::start()?;
    let outcome = edit_file(file, &ids, &style(&config), &mut session);
    // A signal ends the command with 128 + its number, as if it had killed it, after the cleanup.
    if let Some((name, number)) = session.received.or_else(|| session.pending()) {
        match &outcome {
            Err(e) => eprintln!("error: {e}"),
            Ok(_) => eprintln!("{}: interrupted by {name} after saving", file.display()),
        }
        return Ok(ExitStatus::Signalled(number));
    }
    match outcome.map_err(report)? {
        EditOutcome::Unchanged => eprintln!("{}: no changes, file not written", file.display()),
        EditOutcome::Saved => eprintln!("{}: saved", file.display()),
    }
    Ok(ExitStatus::Success)
}

fn updatekeys(global: &Global, file: &Path, yes: bool) -> miette::Result<ExitStatus> {
    let config = config()?.filter(SopsConfig::has_rules).ok_or_else(|| {
        miette!(
            help = "run from inside the repository that holds .sops.yaml",
            "no .sops.yaml with creation_rules found"
        )
    })?;
    let rule = config.rule_for(file).map_err(report)?;
    let ids = Identities::discover(Some(&repo_root(global))).map_err(report)?;
    let original = std::fs::read(file).map_err(|e| miette!("{}: reading: {e}", file.display()))?;
    let decrypted = decrypt_file(file, &ids).map_err(report)?;
    let current = decrypted.recipients();
    let Some(out) = decrypted
        .update_keys(&original, &rule.recipients, &config.style)
        .map_err(report)?
    else {
        eprintln!("{}: already up to date", file.display());
        return Ok(ExitStatus::Success);
    };
    eprintln!("The following changes will be made to the file's age recipients:");
    for r in rule.recipients.iter().filter(|r| !current.contains(r)) {
        eprintln!("+++ {r}");
    }
    for r in current.iter().filter(|r| !rule.recipients.contains(r)) {
        eprintln!("--- {r}");
    }
    if !yes {
        eprint!("Is this okay? (y/n) ");
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .into_diagnostic()?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("{}: not changed", file.display());
            return Ok(ExitStatus::Failure);
        }
    }
    write_file(file, &out, Mode::KeepOr(0o644))?;
    eprintln!("{}: keys updated", file.display());
    Ok(ExitStatus::Success)
}
