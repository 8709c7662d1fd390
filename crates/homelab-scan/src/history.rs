//! The git history as gitleaks sees it, read straight from the object database with gix instead of parsing
//! `git log -p -U0 --full-history --all --diff-filter=tuxdb`: every commit reachable from a ref or `HEAD`,
//! diffed against its first parent with git's default rename detection (merge commits show no diff, as in
//! `git log -p`; a root commit is diffed against the empty tree). Each text change yields its added lines in
//! `-U0` hunks with the hunk's first new line number; deleted, binary and type-changed files yield nothing,
//! as in gitleaks' view. Commits are diffed on several threads that read trees and blobs through one shared
//! cache of resolved pack objects ([`crate::odb`]), so a blob one commit adds is usually still cached when a
//! neighbouring commit changes it. (A cache of diffs by blob pair was tried and dropped: on the 30,000-commit
//! benchmark history no (old blob, new blob) pair occurs twice, so it only cost memory.)

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::diff::blob::{Algorithm, Diff, InternedInput};
use gix::diff::tree_with_rewrites::{Change, ChangeRef};
use gix::objs::Kind;
use gix::objs::tree::EntryKind;

use crate::finding::CommitInfo;
use crate::gitdiff::Hunk;
use crate::odb::{Packs, Reader};

/// What receives each changed file: its commit's index (newest first), path, added-line hunks and commit
/// (its id only: the rest is read only for commits where something was found). Returns whether it found
/// something.
pub(crate) type Scan<'a> = dyn Fn(usize, &str, &[Hunk], &Arc<CommitInfo>) -> bool + Sync + 'a;

/// What receives the full details of a commit (by index) in which [`Scan`] found something.
pub(crate) type Describe<'a> = dyn Fn(usize, CommitInfo) + Sync + 'a;

/// Why the history could not be read.
#[derive(Debug)]
pub(crate) struct HistoryError(pub String);

fn fail(what: &str, e: impl std::fmt::Display) -> HistoryError {
    HistoryError(format!("{what}: {e}"))
}

/// git's rule for a binary file (`buffer_is_binary`): a NUL byte among the first 8000 bytes.
pub(crate) fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8000)]).is_some()
}

/// Every commit reachable from a ref (tags peeled) or from `HEAD`, newest first by commit time (the order
/// `git log --all` prints them in, for the most part).
fn commits(repo: &gix::Repository) -> Result<Vec<ObjectId>, HistoryError> {
    let mut tips: Vec<ObjectId> = Vec::new();
    let refs = repo
        .references()
        .map_err(|e| fail("cannot read the refs", e))?;
    for r in refs.all().map_err(|e| fail("cannot read the refs", e))? {
        let Ok(mut r) = r else { continue };
        // Refs to trees or blobs have no history; `git log --all` walks only commits too.
        if let Ok(c) = r.peel_to_kind(gix::object::Kind::Commit) {
            tips.push(c.id);
        }
    }
    if let Ok(head) = repo.head_id() {
        tips.push(head.detach());
    }
    tips.sort();
    tips.dedup();
    if tips.is_empty() {
        return Ok(Vec::new());
    }
    let walk = repo
        .rev_walk(tips)
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            Default::default(),
        ))
        .all()
        .map_err(|e| fail("cannot walk the history", e))?;
    let mut out = Vec::new();
    for info in walk {
        out.push(info.map_err(|e| fail("cannot walk the history", e))?.id);
    }
    Ok(out)
}

/// The commit metadata a finding carries (what `%H %an %ae %at %B` gives the `git log` path).
fn commit_info(id: ObjectId, commit: &gix::objs::CommitRef<'_>) -> CommitInfo {
    let (author, email, date) = match commit.author() {
        Ok(sig) => (
            sig.name.to_str_lossy().into_owned(),
            sig.email.to_str_lossy().into_owned(),
            crate::gitdiff::rfc3339_utc(sig.seconds()).unwrap_or_default(),
        ),
        Err(_) => Default::default(),
    };
    CommitInfo {
        sha: id.to_string(),
        author,
        email,
        date,
        message: commit.message.to_str_lossy().trim_end().to_owned(),
    }
}

/// The added lines of `new` relative to `old`, as `git diff -U0` hunks (Myers with git's indent heuristic).
fn added_hunks(old: &[u8], new: &[u8]) -> Vec<Hunk> {
    match single_change(old, new) {
        Some(hunks) => hunks,
        None => diffed_hunks(old, new),
    }
}

/// The common case answered without interning and diffing both files: one run of lines replaced by lines
/// it shares none with (a version bump), inserted, or deleted, between a common head and tail of whole
/// lines. What git (and [`diffed_hunks`]) would give there is fixed: every line between head and tail
/// changed, since Myers can pair no line of the old run with one of the new, and when neither the line above
/// the new run equals its last line nor the line below equals its first, the run cannot slide, so the
/// indent heuristic never moves it. `None` when any of that does not hold (then the files are diffed).
fn single_change(old: &[u8], new: &[u8]) -> Option<Vec<Hunk>> {
    // Head: whole lines equal in both, up to the first differing byte.
    let differ = common_prefix(old, new);
    let head = memchr::memrchr(b'\n', &new[..differ]).map_or(0, |i| i + 1);
    // Tail: whole lines equal in both, not overlapping the head.
    let room = old.len().min(new.len()) - head;
    let same_end = common_suffix(&old[old.len() - room..], &new[new.len() - room..]);
    let (tail_new, tail_old) = {
        let (n, o) = (new.len() - same_end, old.len() - same_end);
        let at_line_start = |data: &[u8], at: usize| at == 0 || data[at - 1] == b'\n';
        if at_line_start(new, n) && at_line_start(old, o) {
            (n, o)
        } else {
            // Inside the common bytes both files break lines alike: skip to the next line start.
            let skip = memchr::memchr(b'\n', &new[n..]).map_or(new.len() - n, |i| i + 1);
            (n + skip, o + skip)
        }
    };
    let (old_run, new_run) = (&old[head..tail_old], &new[head..tail_new]);
    if new_run.is_empty() {
        return Some(Vec::new());
    }
    let lines = |run: &'_ [u8]| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', run).map(|i| i + 1) {
            out.push((from, end));
            from = end;
        }
        if from < run.len() {
            out.push((from, run.len()));
        }
        out
    };
    let new_lines = lines(new_run);
    let old_lines = lines(old_run);
    // Pairwise comparison stays cheap only for short runs; longer ones are diffed.
    if old_lines.len() * new_lines.len() > 64 {
        return None;
    }
    let shared = old_lines.iter().any(|&(a, b)| {
        new_lines
            .iter()
            .any(|&(c, d)| old_run[a..b] == new_run[c..d])
    });
    if shared {
        return None;
    }
    let (first, last) = (new_lines.first()?, new_lines.last()?);
    let first_line = &new_run[first.0..first.1];
    let last_line = &new_run[last.0..last.1];
    let above = memchr::memrchr(b'\n', &new[..head.saturating_sub(1)]).map_or(0, |i| i + 1);
    if head > 0 && new[above..head] == *last_line {
        return None;
    }
    let below_end = memchr::memchr(b'\n', &new[tail_new..]).map_or(new.len(), |i| tail_new + i + 1);
    if tail_new < new.len() && new[tail_new..below_end] == *first_line {
        return None;
    }
    Some(vec![Hunk {
        // A plain count vectorises; newlines are too dense for a search to pay.
        start: new[..head].iter().filter(|&&b| b == b'\n').count() + 1,
        added: new_run.to_vec(),
    }])
}

/// How many leading bytes `a` and `b` share, compared a block at a time (a byte loop here was a tenth of
/// the line diff: most files share all but one line).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let n = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= n && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..n]
        .iter()
        .zip(&b[at..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many trailing bytes `a` and `b` share (see [`common_prefix`]).
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut at = n;
    while at >= BLOCK && a[at - BLOCK..at] == b[at - BLOCK..at] {
        at -= BLOCK;
    }
    n - at
        + a[..at]
            .iter()
            .rev()
            .zip(b[..at].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

/// [`added_hunks`] by interning both files' lines and diffing them.
fn diffed_hunks(old: &[u8], new: &[u8]) -> Vec<Hunk> {
    use gix::diff::blob::sources::byte_lines;
    let input = InternedInput::new(byte_lines(old), byte_lines(new));
    let mut diff = Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_lines(&input);
    // Line starts of the new file, found with a vectorised search (a byte-by-byte filter here cost more
    // than the line interning).
    let mut starts = Vec::with_capacity(input.after.len() + 1);
    starts.push(0usize);
    starts.extend(memchr::memchr_iter(b'\n', new).map(|i| i + 1));
    if starts.last() != Some(&new.len()) {
        starts.push(new.len());
    }
    diff.hunks()
        .filter(|h| !h.after.is_empty())
        .map(|h| {
            let (a, b) = (h.after.start as usize, h.after.end as usize);
            Hunk {
                start: a + 1,
                added: new[starts[a]..starts[b.min(starts.len() - 1)]].to_vec(),
            }
        })
        .collect()
}

/// The bytes of object `id`, which must be a `kind` when one is given (a blob is taken as it comes).
fn read(objects: &Reader<'_>, id: ObjectId, kind: Option<Kind>) -> Result<Arc<[u8]>, HistoryError> {
    let what = || format!("cannot read {} {id}", kind.unwrap_or(Kind::Blob));
    match objects.object(&id) {
        Ok(Some(o)) if kind.is_none_or(|k| o.kind == k) => Ok(o.data),
        Ok(_) => Err(fail(&what(), "not found")),
        Err(e) => Err(fail(&what(), e)),
    }
}

/// One changed file of a commit, before its blobs are read.
struct Pending {
    path: String,
    old: Option<ObjectId>,
    new: ObjectId,
}

fn is_file(mode: gix::objs::tree::EntryMode) -> bool {
    matches!(
        mode.kind(),
        EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link
    )
}

/// [`changed_files`] for the common commit that deletes nothing: with no deleted file, git's rename
/// detection has no source to pair an added file with, so the changes are exactly the added and modified
/// files, found by walking both trees in git's entry order without gix's rename bookkeeping or its copy of
/// every tree. `None` when a file was deleted or changed type (then [`changed_files`] decides).
fn plain_changes(
    objects: &Reader<'_>,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Result<Option<Vec<Pending>>, HistoryError> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    if !walk_trees(objects, old, new, &mut path, &mut out)? {
        return Ok(None);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(out))
}

/// Walks `old` and `new` (trees, `old` absent for an added directory) below `path`, collecting added and
/// modified files; false as soon as something was deleted or changed type.
fn walk_trees(
    objects: &Reader<'_>,
    old: Option<ObjectId>,
    new: ObjectId,
    path: &mut Vec<u8>,
    out: &mut Vec<Pending>,
) -> Result<bool, HistoryError> {
    use gix::objs::TreeRefIter;
    use std::cmp::Ordering;
    let read_tree = |id| read(objects, id, Some(Kind::Tree));
    let old_data = match old {
        Some(id) => read_tree(id)?,
        None => Arc::from(&[][..]),
    };
    let new_data = read_tree(new)?;
    // A tree that does not parse is left to gix, which reports it.
    let mut old_entries = TreeRefIter::from_bytes(&old_data, new.kind()).peekable();
    let mut new_entries = TreeRefIter::from_bytes(&new_data, new.kind()).peekable();
    loop {
        let (before, after) = match (old_entries.peek(), new_entries.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) | (_, Some(Err(_))) => return Ok(false),
            (Some(Ok(a)), Some(Ok(b))) => (Some(*a), Some(*b)),
            (Some(Ok(a)), None) => (Some(*a), None),
            (None, Some(Ok(b))) => (None, Some(*b)),
        };
        let order = match (before, after) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match (order, before, after) {
            (Ordering::Less, Some(gone), _) => {
                // Only in the old tree: a deletion, unless a submodule left (no file, no rename source).
                if !gone.mode.is_commit() {
                    return Ok(false);
                }
                old_entries.next();
            }
            (Ordering::Equal, Some(before), Some(entry)) => {
                if before.oid != entry.oid || before.mode != entry.mode {
                    if before.mode.is_link() != entry.mode.is_link()
                        || before.mode.is_commit() != entry.mode.is_commit()
                    {
                        return Ok(false);
                    }
                    if !collect(objects, Some(before.oid.to_owned()), entry, path, out)? {
                        return Ok(false);
                    }
                }
                old_entries.next();
                new_entries.next();
            }
            (_, _, Some(entry)) => {
                if !collect(objects, None, entry, path, out)? {
                    return Ok(false);
                }
                new_entries.next();
            }
            (_, _, None) => break,
        }
    }
    Ok(true)
}

/// Records `entry` of the new tree (added when `old` is `None`, else changed from `old`), descending into a
/// directory.
fn collect(
    objects: &Reader<'_>,
    old: Option<ObjectId>,
    entry: gix::objs::tree::EntryRef<'_>,
    path: &mut Vec<u8>,
    out: &mut Vec<Pending>,
) -> Result<bool, HistoryError> {
    let len = path.len();
    if len > 0 {
        path.push(b'/');
    }
    path.extend_from_slice(entry.filename);
    let complete = if entry.mode.is_tree() {
        walk_trees(objects, old, entry.oid.to_owned(), path, out)?
    } else {
        if is_file(entry.mode) {
            out.push(Pending {
                path: path.to_str_lossy().into_owned(),
                old,
                new: entry.oid.to_owned(),
            });
        }
        true
    };
    path.truncate(len);
    Ok(complete)
}

/// The files a commit changed relative to its first parent, in path order: what gitleaks' `git log -p`
/// shows, minus deletions (`--diff-filter=tuxdb`).
fn changed_files(
    objects: &Reader<'_>,
    cache: &mut gix::diff::blob::Platform,
    state: &mut gix::diff::tree::State,
    parent_tree: Option<ObjectId>,
    tree: ObjectId,
) -> Result<Vec<Pending>, HistoryError> {
    let read_tree = |id| read(objects, id, Some(Kind::Tree));
    let old: Arc<[u8]> = match parent_tree {
        Some(id) => read_tree(id)?,
        None => Arc::from(&[][..]),
    };
    let new = read_tree(tree)?;
    let mut out = Vec::new();
    let options = gix::diff::tree_with_rewrites::Options {
        location: Some(gix::diff::tree::recorder::Location::Path),
        rewrites: Some(gix::diff::Rewrites::default()),
    };
    gix::diff::tree_with_rewrites(
        gix::objs::TreeRefIter::from_bytes(&old, tree.kind()),
        gix::objs::TreeRefIter::from_bytes(&new, tree.kind()),
        cache,
        state,
        objects,
        |change: ChangeRef<'_>| -> Result<std::ops::ControlFlow<()>, gix::Error> {
            let pending = match change.into_owned() {
                Change::Addition {
                    location,
                    entry_mode,
                    id,
                    ..
                } if is_file(entry_mode) => Some(Pending {
                    path: location.to_str_lossy().into_owned(),
                    old: None,
                    new: id,
                }),
                Change::Modification {
                    location,
                    previous_entry_mode,
                    previous_id,
                    entry_mode,
                    id,
                } if is_file(entry_mode)
                    // A file that became a symlink (or back) is a type change: `--diff-filter=t` drops it.
                    && (previous_entry_mode.is_link() == entry_mode.is_link())
                    && is_file(previous_entry_mode) =>
                {
                    Some(Pending {
                        path: location.to_str_lossy().into_owned(),
                        old: Some(previous_id),
                        new: id,
                    })
                }
                Change::Rewrite {
                    location,
                    source_id,
                    entry_mode,
                    id,
                    copy: false,
                    ..
                } if is_file(entry_mode) && source_id != id => Some(Pending {
                    path: location.to_str_lossy().into_owned(),
                    old: Some(source_id),
                    new: id,
                }),
                _ => None,
            };
            out.extend(pending);
            Ok(std::ops::ControlFlow::Continue(()))
        },
        options,
    )
    .map_err(|e| fail("cannot diff trees", e))?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Resolved trees and blobs kept for reuse by all threads: the whole history's working set on the benchmark
/// histories (tens of MB), bounded for big repositories.
const PACK_CACHE_BYTES: usize = 512 << 20;

/// A repository's history, ready to be read: its commits (newest first), its packs indexed, and its
/// commit-graph when it has a usable one. Opening it walks the history and indexes the packs at once,
/// which a scan does while its rules load.
pub(crate) struct History {
    shared: gix::ThreadSafeRepository,
    ids: Vec<ObjectId>,
    packs: Packs,
    graph: Option<gix::commitgraph::Graph>,
}

impl History {
    pub(crate) fn open(root: &Path) -> Result<Self, HistoryError> {
        let shared = gix::discover(root)
            .map_err(|e| fail("not a git repository", e))?
            .into_sync();
        let mut repo = shared.to_thread_local();
        repo.object_cache_size_if_unset(8 << 20);
        // Indexing the packs takes about as long as walking the history: do both at once.
        let (objects_dir, object_hash) = (shared.objects_dir(), repo.object_hash());
        let (ids, packs) = std::thread::scope(|s| {
            let packs = s.spawn(|| Packs::open(objects_dir, object_hash, PACK_CACHE_BYTES));
            let ids = commits(&repo);
            (ids, packs.join())
        });
        let ids = ids?;
        let packs =
            packs.map_err(|_| fail("cannot index the packs", "the indexing thread panicked"))?;
        // A commit-graph that is present but unreadable is ignored: the commit objects say the same.
        let graph = repo.commit_graph_if_enabled().ok().flatten();
        Ok(Self {
            shared,
            ids,
            packs,
            graph,
        })
    }

    /// Calls `scan` (from `threads` threads) with each changed file's added lines, and `describe` with the
    /// details of each commit where `scan` found something. Returns the number of commits.
    pub(crate) fn for_each_change(
        self,
        threads: usize,
        scan: &Scan<'_>,
        describe: &Describe<'_>,
    ) -> Result<usize, HistoryError> {
        let Self {
            shared,
            ids,
            packs,
            graph,
        } = self;
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<HistoryError>> = Mutex::new(None);
        const CHUNK: usize = 16;
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    let repo = shared.to_thread_local();
                    let objects = Reader::new(&packs, &repo);
                    let result = (|| -> Result<(), HistoryError> {
                        let mut cache = repo
                            .diff_resource_cache_for_tree_diff()
                            .map_err(|e| fail("cannot set up diffing", e))?;
                        let mut state = gix::diff::tree::State::default();
                        loop {
                            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                            if start >= ids.len() {
                                return Ok(());
                            }
                            for (k, id) in ids.iter().enumerate().skip(start).take(CHUNK) {
                                let commit = Commit { id: *id, index: k };
                                let mut diff = Differ {
                                    objects: &objects,
                                    graph: graph.as_ref(),
                                    cache: &mut cache,
                                    state: &mut state,
                                };
                                diff.commit(commit, scan, describe)?;
                            }
                        }
                    })();
                    if let Err(e) = result
                        && let Ok(mut slot) = first_error.lock()
                    {
                        slot.get_or_insert(e);
                        // Stop the other workers early.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                    }
                });
            }
        });
        // Freeing the cache (hundreds of thousands of buffers) takes a tenth of a scan; let it overlap with
        // sorting and printing the findings instead of delaying them.
        std::thread::spawn(move || drop(packs));
        if let Some(e) = first_error.into_inner().ok().flatten() {
            return Err(e);
        }
        Ok(ids.len())
    }
}

/// One commit of the walk: its id and its index in the walk (newest first).
#[derive(Clone, Copy)]
struct Commit {
    id: ObjectId,
    index: usize,
}

/// A commit's tree and its first parent's, and whether it is a merge (which `git log -p` shows no diff for).
struct Trees {
    tree: ObjectId,
    parent: Option<ObjectId>,
    merge: bool,
}

/// One thread's means of diffing a commit against its first parent.
struct Differ<'r, 'a> {
    objects: &'r Reader<'a>,
    graph: Option<&'r gix::commitgraph::Graph>,
    cache: &'r mut gix::diff::blob::Platform,
    state: &'r mut gix::diff::tree::State,
}

impl Differ<'_, '_> {
    fn commit(
        &mut self,
        commit: Commit,
        scan: &Scan<'_>,
        describe: &Describe<'_>,
    ) -> Result<(), HistoryError> {
        let trees = self.trees(commit.id)?;
        if trees.merge {
            return Ok(());
        }
        self.cache.clear_resource_cache_keep_allocation();
        let files = match plain_changes(self.objects, trees.parent, trees.tree)? {
            Some(files) => files,
            None => changed_files(
                self.objects,
                self.cache,
                self.state,
                trees.parent,
                trees.tree,
            )?,
        };
        let id_only = Arc::new(CommitInfo {
            sha: commit.id.to_string(),
            ..CommitInfo::default()
        });
        let mut found = false;
        for f in files {
            let hunks = file_hunks(self.objects, f.old, f.new)?;
            if !hunks.is_empty() {
                found |= scan(commit.index, &f.path, &hunks, &id_only);
            }
        }
        if found {
            let data = self.read_commit(commit.id)?;
            let parsed = gix::objs::CommitRef::from_bytes(&data, commit.id.kind())
                .map_err(|e| fail(&format!("cannot read commit {}", commit.id), e))?;
            describe(commit.index, commit_info(commit.id, &parsed));
        }
        Ok(())
    }

    /// The trees to diff, from the commit-graph when it lists the commit and its parent (nothing to
    /// inflate), else from the commit objects.
    fn trees(&self, id: ObjectId) -> Result<Trees, HistoryError> {
        if let Some(trees) = self.graph.and_then(|g| trees_from_graph(g, &id)) {
            return Ok(trees);
        }
        let data = self.read_commit(id)?;
        let commit = gix::objs::CommitRef::from_bytes(&data, id.kind())
            .map_err(|e| fail(&format!("cannot read commit {id}"), e))?;
        let parents: Vec<ObjectId> = commit.parents().collect();
        let parent = match parents.as_slice() {
            [p] => Some(
                gix::objs::CommitRefIter::from_bytes(&self.read_commit(*p)?, p.kind())
                    .tree_id()
                    .map_err(|e| fail(&format!("cannot read commit {p}"), e))?,
            ),
            _ => None,
        };
        Ok(Trees {
            tree: commit.tree(),
            parent,
            merge: parents.len() > 1,
        })
    }

    fn read_commit(&self, id: ObjectId) -> Result<Arc<[u8]>, HistoryError> {
        read(self.objects, id, Some(Kind::Commit))
    }
}

/// [`Differ::trees`] from the commit-graph; `None` when it lacks the commit (written before it) or cannot
/// be read for it.
fn trees_from_graph(graph: &gix::commitgraph::Graph, id: &gix::oid) -> Option<Trees> {
    let commit = graph.commit_by_id(id)?;
    let tree = commit.root_tree_id().to_owned();
    let parents = commit.iter_parents().collect::<Result<Vec<_>, _>>().ok()?;
    let parent = match parents.as_slice() {
        [p] => Some(graph.commit_at(*p).root_tree_id().to_owned()),
        _ => None,
    };
    Some(Trees {
        tree,
        parent,
        merge: parents.len() > 1,
    })
}

/// The added-line hunks of one file change; none for binary content (git prints "Binary files differ").
fn file_hunks(
    objects: &Reader<'_>,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Result<Vec<Hunk>, HistoryError> {
    let read = |id| read(objects, id, None);
    if old == Some(new) {
        // A pure rename or a mode change: no line changed.
        return Ok(Vec::new());
    }
    let new_data = read(new)?;
    if is_binary(&new_data) {
        return Ok(Vec::new());
    }
    match old {
        None => Ok(if new_data.is_empty() {
            Vec::new()
        } else {
            vec![Hunk {
                start: 1,
                added: new_data.to_vec(),
            }]
        }),
        Some(old) => {
            let old_data = read(old)?;
            if is_binary(&old_data) {
                return Ok(Vec::new());
            }
            Ok(added_hunks(&old_data, &new_data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunks(old: &str, new: &str) -> Vec<(usize, String)> {
        added_hunks(old.as_bytes(), new.as_bytes())
            .into_iter()
            .map(|h| (h.start, String::from_utf8_lossy(&h.added).into_owned()))
            .collect()
    }

    #[test]
    fn added_lines_come_in_u0_hunks_with_their_new_line_numbers() {
        assert_eq!(
            hunks("a\nb\nc\n", "a\nx\nb\nc\ny\nz\n"),
            vec![(2, "x\n".to_owned()), (5, "y\nz\n".to_owned())]
        );
        assert_eq!(hunks("a\nb\n", "a\nB\n"), vec![(2, "B\n".to_owned())]);
        assert!(hunks("a\nb\n", "a\n").is_empty());
    }

    /// The shortcut agrees with diffing on every input, including the ones it declines.
    fn shortcut_agrees(old: &str, new: &str) {
        let full = diffed_hunks(old.as_bytes(), new.as_bytes());
        if let Some(short) = single_change(old.as_bytes(), new.as_bytes()) {
            let show = |h: &[Hunk]| {
                h.iter()
                    .map(|h| (h.start, String::from_utf8_lossy(&h.added).into_owned()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(show(&short), show(&full), "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn the_single_change_shortcut_equals_the_diff_on_edge_cases() {
        for (old, new) in [
            ("a\nb\nc\n", "a\nB\nc\n"),
            ("a\nb\n", "a\nb\nc\n"),
            ("a\nb", "a\nb\nc"),
            ("x\nb", "y\nb"),
            ("a\na\n", "a\na\na\n"),
            ("a\nb\n", "a\nb\na\nb\n"),
            ("", "a\n"),
            ("a\n", ""),
            ("a\n", "a\n"),
            ("a\nb\nc\n", "a\nc\n"),
            ("}\n\n", "}\n\n}\n\n"),
            ("k: 1\nv: 2\n", "k: 1\nv: 3"),
        ] {
            shortcut_agrees(old, new);
            shortcut_agrees(new, old);
        }
        assert!(single_change(b"a\nb\nc\n", b"a\nB\nc\n").is_some());
    }

    proptest::proptest! {
        #[test]
        fn common_prefix_and_suffix_count_equal_bytes(
            a in proptest::collection::vec(0u8..3, 0..100),
            b in proptest::collection::vec(0u8..3, 0..100),
            shared in proptest::collection::vec(0u8..3, 0..80),
        ) {
            let naive_prefix = |x: &[u8], y: &[u8]| x.iter().zip(y).take_while(|(p, q)| p == q).count();
            let naive_suffix = |x: &[u8], y: &[u8]| {
                x.iter().rev().zip(y.iter().rev()).take_while(|(p, q)| p == q).count()
            };
            let (x, y) = ([&shared[..], &a].concat(), [&shared[..], &b].concat());
            proptest::prop_assert_eq!(common_prefix(&x, &y), naive_prefix(&x, &y));
            let (x, y) = ([&a[..], &shared].concat(), [&b[..], &shared].concat());
            proptest::prop_assert_eq!(common_suffix(&x, &y), naive_suffix(&x, &y));
        }

        #[test]
        fn the_single_change_shortcut_equals_the_diff(
            old in proptest::collection::vec("(a|b|c|  d|)\n?", 0..12),
            new in proptest::collection::vec("(a|b|c|  d|)\n?", 0..12),
        ) {
            shortcut_agrees(&old.concat(), &new.concat());
        }
    }

    /// Where the plain tree walk answers, it answers as gix's diff with rename detection does, and it
    /// declines every commit that deletes a file or changes a file's type.
    #[test]
    fn the_plain_tree_walk_equals_the_diff_with_renames_where_it_answers() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        let git =
            |args: &[&str]| String::from_utf8_lossy(&crate::testdata::git(root, args)).into_owned();
        let write = |path: &str, text: &str| {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
            std::fs::write(full, text).expect("write");
        };
        let commit = |message: &str| {
            git(&["add", "-A"]);
            git(&["commit", "-q", "--allow-empty", "-m", message]);
        };
        git(&["init", "-q"]);
        let body = |n: usize| {
            (0..20)
                .map(|i| format!("line {i} of {n}\n"))
                .collect::<String>()
        };
        write("a/b/c.txt", &body(1));
        write("a/d.txt", &body(2));
        write("e.txt", &body(3));
        write("foo", "a file named like a directory\n");
        commit("first");
        write("a/b/c.txt", &(body(1) + "changed\n"));
        commit("modify deep");
        write("a/new/f.txt", &body(4));
        write("a.txt", "sorts between a and a/\n");
        commit("add in a new directory");
        std::fs::rename(root.join("e.txt"), root.join("moved.txt")).expect("rename");
        commit("pure rename");
        std::fs::rename(root.join("a/d.txt"), root.join("a/d2.txt")).expect("rename");
        write("a/d2.txt", &(body(2) + "and edited\n"));
        commit("rename with an edit");
        std::fs::remove_file(root.join("foo")).expect("rm");
        write("foo/inside.txt", "now a directory\n");
        commit("file becomes a directory");
        std::os::unix::fs::symlink("moved.txt", root.join("link")).expect("symlink");
        commit("add a symlink");
        std::fs::remove_file(root.join("link")).expect("rm");
        write("link", "now a file\n");
        commit("symlink becomes a file");
        let mut perms = std::fs::metadata(root.join("a.txt"))
            .expect("meta")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(root.join("a.txt"), perms).expect("chmod");
        commit("mode change");
        std::fs::remove_dir_all(root.join("a/new")).expect("rm");
        commit("delete a directory");
        commit("empty");

        let repo = gix::open(root).expect("repository");
        let packs = Packs::open(&root.join(".git/objects"), gix::hash::Kind::Sha1, 1 << 20);
        let objects = Reader::new(&packs, &repo);
        let mut cache = repo
            .diff_resource_cache_for_tree_diff()
            .expect("diff cache");
        let mut state = gix::diff::tree::State::default();
        let show = |files: &[Pending]| {
            files
                .iter()
                .map(|f| format!("{} {:?} {}", f.path, f.old, f.new))
                .collect::<Vec<_>>()
        };
        let (mut answered, mut declined) = (Vec::new(), Vec::new());
        for line in git(&["log", "--format=%T %P %s", "--reverse"]).lines() {
            let mut words = line.split(' ');
            let tree = ObjectId::from_hex(words.next().expect("tree").as_bytes()).expect("id");
            let parent = words.next().filter(|p| p.len() == 40).map(|p| {
                let parent = ObjectId::from_hex(p.as_bytes()).expect("id");
                let data = objects
                    .object(&parent)
                    .expect("reads")
                    .expect("present")
                    .data;
                gix::objs::CommitRefIter::from_bytes(&data, parent.kind())
                    .tree_id()
                    .expect("a tree")
            });
            let subject = line.splitn(3, ' ').nth(2).unwrap_or_default().to_owned();
            cache.clear_resource_cache_keep_allocation();
            let full = changed_files(&objects, &mut cache, &mut state, parent, tree).expect("diff");
            match plain_changes(&objects, parent, tree).expect("walk") {
                Some(plain) => {
                    assert_eq!(show(&plain), show(&full), "{subject}");
                    answered.push(subject);
                }
                None => declined.push(subject),
            }
        }
        assert_eq!(
            declined,
            [
                "pure rename",
                "rename with an edit",
                "file becomes a directory",
                "symlink becomes a file",
                "delete a directory"
            ],
            "answered: {answered:?}"
        );
    }

    #[test]
    fn a_last_line_without_newline_is_a_change_and_keeps_no_newline() {
        assert_eq!(hunks("a\nb", "a\nb\nc"), vec![(2, "b\nc".to_owned())]);
    }

    #[test]
    fn binary_means_a_nul_in_the_first_8000_bytes() {
        assert!(is_binary(b"ab\0c"));
        let mut late = vec![b'a'; 8000];
        late.push(0);
        assert!(!is_binary(&late));
    }
}
