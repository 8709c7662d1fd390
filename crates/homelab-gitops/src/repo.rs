//! The repository as the checks see it: every file (minus `.git` and build output), with YAML files parsed
//! once, and the Flux tree (`kubernetes/`) if there is one.

use std::path::{Path, PathBuf};

use homelab_kustomize::yaml::{Document, ParseError, parse_documents};

/// One file of the repository.
pub struct RepoFile {
    /// `/`-separated path relative to the repository root.
    pub rel: String,
    pub abs: PathBuf,
    /// Parsed documents for `.yaml`/`.yml` files.
    pub yaml: Option<Result<Vec<Document>, ParseError>>,
}

/// A repository checkout.
pub struct Repo {
    pub root: PathBuf,
    /// `kubernetes/` when present.
    pub flux_tree: Option<PathBuf>,
    pub files: Vec<RepoFile>,
}

const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules", ".homelab"];

impl Repo {
    /// Walks `root` (sorted, like Go's filepath.Walk).
    pub fn open(root: &Path) -> std::io::Result<Repo> {
        let mut files = Vec::new();
        walk(root, root, &mut files)?;
        let tree = root.join("kubernetes");
        Ok(Repo {
            root: root.to_path_buf(),
            flux_tree: tree.is_dir().then_some(tree),
            files,
        })
    }

    /// Repository-relative display form of `p`.
    pub fn rel(&self, p: &Path) -> String {
        let canon_root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon
            .strip_prefix(&canon_root)
            .or_else(|_| p.strip_prefix(&self.root))
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| p.display().to_string())
    }

    /// Files under the Flux tree.
    pub fn tree_files(&self) -> impl Iterator<Item = &RepoFile> {
        self.files
            .iter()
            .filter(|f| f.rel.starts_with("kubernetes/"))
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<RepoFile>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        let ft = e.file_type()?;
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                walk(root, &p, out)?;
            }
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .replace('\\', "/");
        let yaml = if name.ends_with(".yaml") || name.ends_with(".yml") {
            match std::fs::read_to_string(&p) {
                Ok(text) => Some(parse_documents(&text)),
                Err(_) => None,
            }
        } else {
            None
        };
        out.push(RepoFile { rel, abs: p, yaml });
    }
    Ok(())
}
