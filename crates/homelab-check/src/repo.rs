//! The repository as the checks see it: the files git would consider (tracked, or untracked and not
//! ignored), with YAML files parsed once, and the Flux tree (`kubernetes/`) if there is one. Inside a git
//! work tree git itself lists them; anywhere else `.gitignore` files (and `.git/info/exclude`) are read
//! the same way (`homelab_scan::tree_files`), so a checkout without git (a tarball, a fresh `init`) is checked
//! like its committed form, and the secret scan sees the same files as the other checks.

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

impl Repo {
    /// Lists the files of `root` (sorted by path) and parses its YAML files.
    pub fn open(root: &Path) -> std::io::Result<Repo> {
        // One answer to "which files count" for every checker, the secret scan included.
        let rels = homelab_scan::tree_files(root).map_err(std::io::Error::other)?;
        let files = rels
            .into_iter()
            .filter_map(|rel| {
                let abs = root.join(&rel);
                // git lists tracked files that were deleted from the work tree, and symlinks.
                let meta = std::fs::symlink_metadata(&abs).ok()?;
                meta.is_file().then(|| read(rel, abs))
            })
            .collect();
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

fn read(rel: String, abs: PathBuf) -> RepoFile {
    let yaml = if rel.ends_with(".yaml") || rel.ends_with(".yml") {
        match std::fs::read_to_string(&abs) {
            Ok(text) => Some(parse_documents(&text)),
            Err(_) => None,
        }
    } else {
        None
    };
    RepoFile { rel, abs, yaml }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_git_the_gitignore_files_are_honoured() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(".gitignore", "/.age-key.txt\n*.log\nbuild/\n!keep.log\n");
        write(".age-key.txt", "AGE-SECRET-KEY-1\n");
        write("a.log", "x");
        write("keep.log", "x");
        write("build/out.yaml", "a: 1\n");
        write("kubernetes/.gitignore", "local.yaml\n");
        write("kubernetes/local.yaml", "a: 1\n");
        write("kubernetes/app.yaml", "a: 1\n");
        write(".git-like/x", "x");
        write(".git/config", "[core]\n");
        let repo = Repo::open(root).expect("open");
        let rels: Vec<&str> = repo.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                ".git-like/x",
                ".gitignore",
                "keep.log",
                "kubernetes/.gitignore",
                "kubernetes/app.yaml"
            ]
        );
    }
}
