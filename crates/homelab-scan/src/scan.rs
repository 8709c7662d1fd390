//! Running a scan: choosing the configuration and baseline, enumerating the source (working tree, plain
//! directory, git history, staged changes), detecting in parallel, and filtering accepted findings.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use crate::baseline::{Baseline, BaselineError};
use crate::config::{Config, ConfigError};
use crate::detect::{Detector, Fragment, Options};
use crate::finding::{CommitInfo, Finding};
use crate::gitdiff::{self, FileDiff, Hunk};
use crate::history::{self, History, HistoryError};
use homelab_sops::detect as sops;

/// What to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The working tree: files git tracks or would track; outside git, files `.gitignore` does not ignore
    /// (see [`tree_files`]).
    Tree,
    /// Every file under the root, without consulting git (like `gitleaks dir`).
    Directory,
    /// The added lines of every commit on every ref (like `gitleaks git`).
    History,
    /// The added lines of the staged changes (for the pre-commit hook).
    Staged,
}

/// A scan to run.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub root: PathBuf,
    pub source: Source,
    /// A gitleaks.toml; `None` uses `<root>/.gitleaks.toml` when present, else homelabctl's defaults.
    pub config: Option<PathBuf>,
    /// Accepted findings; `<root>/.gitleaksignore` is always honoured too.
    pub baseline: Option<PathBuf>,
    pub options: Options,
}

impl ScanRequest {
    /// A working-tree scan of `root` with default configuration discovery.
    pub fn tree(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            source: Source::Tree,
            config: None,
            baseline: None,
            options: Options::default(),
        }
    }
}

/// The result of a scan.
#[derive(Debug)]
pub struct ScanOutcome {
    /// Findings not accepted by the baseline, in a stable order.
    pub findings: Vec<Finding>,
    /// Files (tree, directory) or commits (history) scanned.
    pub scanned: usize,
    /// Findings dropped because the baseline accepted them.
    pub accepted: usize,
    /// The configuration used (for reports that list rules).
    pub config: Config,
}

/// A scan that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("cannot scan {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {root}: {message}")]
    Git {
        root: PathBuf,
        args: String,
        message: String,
    },
    #[error("cannot read the git history of {root}: {message}")]
    History { root: PathBuf, message: String },
}

impl ScanError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ScanError::Config(_) => {
                "fix the configuration file, or run without --gitleaks-config to use the built-in rules"
            }
            ScanError::Baseline(_) => {
                "a baseline holds one fingerprint per line (file:rule:line or commit:file:rule:line)"
            }
            ScanError::Io { .. } => "check that the path exists and is readable",
            ScanError::Git { .. } | ScanError::History { .. } => {
                "history and staged scans need a git repository and the `git` command; use --no-git for a plain directory"
            }
        }
    }
}

/// Runs a scan.
pub fn run(req: &ScanRequest) -> Result<ScanOutcome, ScanError> {
    run_listed(req, None)
}

/// [`run`] for a working-tree request whose files the caller already listed (repository-relative, `/`
/// separators): `homelabctl check` scans exactly the files its other checks saw.
pub fn run_listed(req: &ScanRequest, listed: Option<&[String]>) -> Result<ScanOutcome, ScanError> {
    let root = &req.root;
    if !root.is_dir() {
        return Err(ScanError::Io {
            path: root.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    std::thread::scope(|s| {
        // A history opens (the commit walk, the pack indexes) while the rules load.
        let opening = (req.source == Source::History).then(|| s.spawn(|| History::open(root)));
        let (detector, baseline, threads) = prepare(req)?;
        let (findings, scanned) = match req.source {
            Source::Tree => {
                let files = match listed {
                    Some(files) => files.to_vec(),
                    None => tree_files(root)?,
                };
                scan_files(&detector, root, &files, threads)
            }
            Source::Directory => {
                let files = walk(root)?;
                scan_files(&detector, root, &files, threads)
            }
            Source::History => {
                let history = match opening {
                    Some(thread) => thread.join().unwrap_or_else(|_| {
                        Err(HistoryError("the thread opening it panicked".into()))
                    }),
                    None => History::open(root),
                }
                .map_err(|e| history_error(root, e))?;
                scan_history(&detector, history, root, threads)?
            }
            Source::Staged => {
                let args = [
                    "diff",
                    "-U0",
                    "--no-ext-diff",
                    "--no-color",
                    "--staged",
                    ".",
                ];
                let run = GitRun {
                    args: args.iter().map(|a| (*a).to_owned()).collect(),
                    stdin: None,
                };
                scan_diff(&detector, root, vec![run], threads)?
            }
        };
        finish(detector, &baseline, findings, scanned)
    })
}

/// The rules (configuration and detector), the baseline, and the number of scanning threads of `req`.
fn prepare(req: &ScanRequest) -> Result<(Detector, Baseline, usize), ScanError> {
    let root = &req.root;
    let config_path = req
        .config
        .clone()
        .or_else(|| Some(root.join(".gitleaks.toml")).filter(|p| p.is_file()));
    let config = match &config_path {
        Some(p) => Config::from_file(p)?,
        None => Config::homelab_default(),
    };
    let mut baseline = Baseline::default();
    let ignore_file = root.join(".gitleaksignore");
    if ignore_file.is_file() {
        baseline.extend(Baseline::load(&ignore_file)?);
    }
    if let Some(b) = &req.baseline {
        baseline.extend(Baseline::load(b)?);
    }
    let mut detector = Detector::new(config, req.options.clone());
    for p in config_path.iter().chain(req.baseline.iter()) {
        if let Some(rel) = relative_to(root, p) {
            detector.skip_path(rel);
        }
    }
    let threads = match req.options.threads {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    Ok((detector, baseline, threads))
}

/// The outcome of a scan that found `findings` in `scanned` files or commits: fails if a rule it needed
/// could not compile, and drops what the baseline accepts.
fn finish(
    detector: Detector,
    baseline: &Baseline,
    mut findings: Vec<Finding>,
    scanned: usize,
) -> Result<ScanOutcome, ScanError> {
    if let Some(e) = detector.config().unusable_rule() {
        return Err(e.into());
    }
    let before = findings.len();
    findings.retain(|f| !baseline.accepts(f));
    let accepted = before - findings.len();
    Ok(ScanOutcome {
        findings,
        scanned,
        accepted,
        config: detector.into_config(),
    })
}

fn history_error(root: &Path, e: HistoryError) -> ScanError {
    ScanError::History {
        root: root.to_owned(),
        message: e.0,
    }
}

fn relative_to(root: &Path, p: &Path) -> Option<String> {
    let abs = |p: &Path| std::fs::canonicalize(p).ok();
    let (root, p) = (abs(root)?, abs(p)?);
    let rel = p.strip_prefix(&root).ok()?;
    Some(
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Files git tracks or would track, relative to `root`.
fn git_ls_files(root: &Path) -> Result<Vec<String>, ScanError> {
    let out = git(
        root,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?;
    let mut files: Vec<String> = out
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, ScanError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ScanError::Git {
            root: root.to_owned(),
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ScanError::Git {
            root: root.to_owned(),
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// The files of the working tree at `root`, repository-relative and sorted: what git tracks or would track
/// (`ls-files --cached --others --exclude-standard`); outside a git work tree (or without git), every
/// regular file that the `.gitignore` files below `root` and `.git/info/exclude` do not ignore. The user's
/// global excludes are not read outside git, so the answer does not depend on who asks.
pub fn tree_files(root: &Path) -> Result<Vec<String>, ScanError> {
    match git_ls_files(root) {
        Ok(files) => Ok(files),
        Err(_) => gitignore_walk(root),
    }
}

fn gitignore_walk(root: &Path) -> Result<Vec<String>, ScanError> {
    let io = |source: std::io::Error| ScanError::Io {
        path: root.to_owned(),
        source,
    };
    // An unreadable root is an error, not an empty tree.
    std::fs::read_dir(root).map_err(io)?;
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| io(std::io::Error::other(e)))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        files.push(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    files.sort();
    Ok(files)
}

/// Every regular file under `root` except inside `.git` directories; symlinks are not followed.
fn walk(root: &Path) -> Result<Vec<String>, ScanError> {
    let mut files = Vec::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ScanError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                if name != ".git" {
                    stack.push((entry.path(), child_rel));
                }
            } else if kind.is_file() {
                files.push(child_rel);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn scan_files(
    detector: &Detector,
    root: &Path,
    files: &[String],
    threads: usize,
) -> (Vec<Finding>, usize) {
    let next = AtomicUsize::new(0);
    let scanned = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(rel) = files.get(i) else { break };
                    let path = root.join(rel);
                    // Symlinks (and files removed since listing) are skipped like gitleaks does by default.
                    let Ok(meta) = std::fs::symlink_metadata(&path) else {
                        continue;
                    };
                    if !meta.is_file() || meta.len() == 0 {
                        continue;
                    }
                    let Ok(content) = std::fs::read(&path) else {
                        continue;
                    };
                    scanned.fetch_add(1, Ordering::Relaxed);
                    if history::is_binary(&content)
                        || (detector.options().sops_aware && sops::is_sops_content(&content))
                    {
                        continue;
                    }
                    let frag = Fragment {
                        raw: &content,
                        path: rel,
                        start_line: 1,
                        commit: None,
                    };
                    local.extend(detector.detect(&frag));
                }
                if let Ok(mut r) = results.lock() {
                    r.append(&mut local);
                }
            });
        }
    });
    let mut findings = results.into_inner().unwrap_or_default();
    findings.sort_by(|a, b| {
        (&a.file, a.start_line, &a.rule_id, a.start_column).cmp(&(
            &b.file,
            b.start_line,
            &b.rule_id,
            b.start_column,
        ))
    });
    (findings, scanned.into_inner())
}

/// One `git` process whose output is a diff stream.
struct GitRun {
    args: Vec<String>,
    /// Written to the process's standard input (commit ids for `--stdin`).
    stdin: Option<Vec<u8>>,
}

/// Scans the added lines of every commit, read from the object database (see [`history`]).
fn scan_history(
    detector: &Detector,
    history: History,
    root: &Path,
    threads: usize,
) -> Result<(Vec<Finding>, usize), ScanError> {
    let results = Mutex::new(Vec::<((usize, usize), Finding)>::new());
    let scan = |index: usize, path: &str, hunks: &[Hunk], commit: &Arc<CommitInfo>| {
        let mut local = Vec::new();
        scan_hunks(detector, (index, 0), path, hunks, Some(commit), &mut local);
        let found = !local.is_empty();
        if found && let Ok(mut r) = results.lock() {
            r.append(&mut local);
        }
        found
    };
    // Findings carry their commit's id until the scan ends; then the details of those commits.
    let described = Mutex::new(HashMap::<usize, Arc<CommitInfo>>::new());
    let describe = |index: usize, info: CommitInfo| {
        if let Ok(mut d) = described.lock() {
            d.insert(index, Arc::new(info));
        }
    };
    let commits = history
        .for_each_change(threads, &scan, &describe)
        .map_err(|e| history_error(root, e))?;
    let described = described.into_inner().unwrap_or_default();
    let mut tagged = results.into_inner().unwrap_or_default();
    for ((index, _), finding) in &mut tagged {
        if let Some(info) = described.get(index) {
            finding.commit = Some(Arc::clone(info));
        }
    }
    tagged.sort_by(|(sa, a), (sb, b)| {
        (sa, &a.file, a.start_line, &a.rule_id, a.start_column).cmp(&(
            sb,
            &b.file,
            b.start_line,
            &b.rule_id,
            b.start_column,
        ))
    });
    Ok((tagged.into_iter().map(|(_, f)| f).collect(), commits))
}

/// Runs the git processes and scans the added lines of their diff output as it streams.
fn scan_diff(
    detector: &Detector,
    root: &Path,
    runs: Vec<GitRun>,
    threads: usize,
) -> Result<(Vec<Finding>, usize), ScanError> {
    let git_err = |args: &[String], message: String| ScanError::Git {
        root: root.to_owned(),
        args: args.join(" "),
        message,
    };
    let mut children = Vec::with_capacity(runs.len());
    for run in &runs {
        let child = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(&run.args)
            .stdin(if run.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| git_err(&run.args, e.to_string()))?;
        children.push(child);
    }

    type Batch = Vec<((usize, usize), FileDiff)>;
    let (tx, rx) = mpsc::sync_channel::<Batch>(64);
    let rx = Arc::new(Mutex::new(rx));
    let results = Mutex::new(Vec::<((usize, usize), Finding)>::new());
    let mut parsed: Vec<std::io::Result<usize>> = Vec::new();
    let mut stderr_texts: Vec<String> = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let results = &results;
            s.spawn(move || {
                let mut local = Vec::new();
                loop {
                    let batch = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => break,
                    };
                    let Ok(batch) = batch else { break };
                    for (seq, file) in batch {
                        scan_file_diff(detector, seq, &file, &mut local);
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.append(&mut local);
                }
            });
        }
        let mut parsers = Vec::new();
        let mut err_readers = Vec::new();
        for (k, (child, run)) in children.iter_mut().zip(&runs).enumerate() {
            if let (Some(mut stdin), Some(input)) = (child.stdin.take(), run.stdin.as_deref()) {
                s.spawn(move || {
                    let _ = std::io::Write::write_all(&mut stdin, input);
                });
            }
            if let Some(mut stderr) = child.stderr.take() {
                err_readers.push(s.spawn(move || {
                    let mut text = String::new();
                    let _ = stderr.read_to_string(&mut text);
                    text
                }));
            }
            let Some(stdout) = child.stdout.take() else {
                continue;
            };
            let tx = tx.clone();
            parsers.push(s.spawn(move || {
                let mut seq = 0;
                let mut batch: Batch = Vec::new();
                let mut batch_bytes = 0;
                let result = gitdiff::parse(BufReader::with_capacity(1 << 16, stdout), |file| {
                    batch_bytes += file.hunks.iter().map(|h| h.added.len() + 64).sum::<usize>();
                    batch.push(((k, seq), file));
                    seq += 1;
                    if batch_bytes > 32 * 1024 || batch.len() >= 256 {
                        let _ = tx.send(std::mem::take(&mut batch));
                        batch_bytes = 0;
                    }
                });
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                result
            }));
        }
        drop(tx);
        parsed = parsers
            .into_iter()
            .map(|p| {
                p.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("parser thread failed")))
            })
            .collect();
        stderr_texts = err_readers
            .into_iter()
            .map(|r| r.join().unwrap_or_default())
            .collect();
    });
    let mut commits = 0;
    for ((child, run), (result, err_text)) in children
        .iter_mut()
        .zip(&runs)
        .zip(parsed.into_iter().zip(stderr_texts))
    {
        let status = child
            .wait()
            .map_err(|e| git_err(&run.args, e.to_string()))?;
        commits += result.map_err(|e| git_err(&run.args, e.to_string()))?;
        if !status.success() {
            return Err(git_err(&run.args, err_text.trim().to_owned()));
        }
    }
    let mut tagged = results.into_inner().unwrap_or_default();
    tagged.sort_by(|(sa, a), (sb, b)| {
        (sa, a.start_line, &a.rule_id, a.start_column).cmp(&(
            sb,
            b.start_line,
            &b.rule_id,
            b.start_column,
        ))
    });
    Ok((tagged.into_iter().map(|(_, f)| f).collect(), commits))
}

fn scan_file_diff(
    detector: &Detector,
    seq: (usize, usize),
    file: &FileDiff,
    out: &mut Vec<((usize, usize), Finding)>,
) {
    scan_hunks(
        detector,
        seq,
        &file.path,
        &file.hunks,
        file.commit.as_ref(),
        out,
    );
}

/// Scans one file's added lines (its hunks) in one commit, unless they are SOPS-encrypted content.
fn scan_hunks(
    detector: &Detector,
    seq: (usize, usize),
    path: &str,
    hunks: &[Hunk],
    commit: Option<&Arc<CommitInfo>>,
    out: &mut Vec<((usize, usize), Finding)>,
) {
    if detector.options().sops_aware && hunks.iter().any(|h| sops::is_sops_content(&h.added)) {
        return;
    }
    for hunk in hunks {
        let frag = Fragment {
            raw: &hunk.added,
            path,
            start_line: hunk.start,
            commit,
        };
        out.extend(detector.detect(&frag).into_iter().map(|f| (seq, f)));
    }
}
