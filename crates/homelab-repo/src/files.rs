//! File plumbing shared by the secrets and outputs: encrypting through `.sops.yaml`,
//! the canonical (sops-rendered) YAML form, and `.gitignore` entries.

use homelab_fs::Mode;
use std::path::Path;

use homelab_sops::{
    Format, SopsConfig, SopsError, Style, encrypt_with_style, parse_plaintext, render_plaintext,
};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::RepoError;

/// Encrypts `plaintext` for `path` with the creation rule the repository's `.sops.yaml` gives for it.
pub(crate) fn encrypt_for(
    root: &Path,
    path: &Path,
    plaintext: &[u8],
) -> Result<Vec<u8>, RepoError> {
    let name = path.display().to_string();
    let config = SopsConfig::find(root)?.filter(SopsConfig::has_rules);
    let Some(config) = config else {
        return Err(SopsError::NoRecipients { file: name }.into());
    };
    let rule = config.rule_for(path)?;
    Ok(encrypt_with_style(
        plaintext,
        Format::from_path(path),
        &rule,
        &config.style,
        &name,
    )?)
}

/// `text` (YAML) as sops renders it after a round trip (`sops -d` of the encrypted file prints exactly this).
pub(crate) fn canonical_yaml(
    text: &str,
    style: &Style,
    name: &str,
) -> Result<Zeroizing<String>, RepoError> {
    let mut docs = parse_plaintext(Format::Yaml, text.as_bytes(), name)?;
    let out = Zeroizing::new(render_plaintext(Format::Yaml, &docs, style));
    docs.iter_mut().for_each(|d| d.zeroize());
    Ok(out)
}

/// Makes sure `.gitignore` at `root` ignores each of `entries` (root-anchored names like `/kubeconfig`);
/// appends the missing ones under a `# homelabctl <why>` comment. Returns the entries it added.
pub(crate) fn ensure_gitignored(
    root: &Path,
    entries: &[&str],
    why: &str,
) -> Result<Vec<String>, RepoError> {
    let path = root.join(".gitignore");
    let current = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(RepoError::io(&path, "reading", e)),
    };
    let ignored = |entry: &str| {
        let bare = entry.trim_start_matches('/');
        current
            .lines()
            .map(str::trim)
            .any(|l| l == entry || l == bare)
    };
    let missing: Vec<String> = entries
        .iter()
        .filter(|e| !ignored(e))
        .map(|e| (*e).to_string())
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = current.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("# homelabctl {why}\n"));
    for m in &missing {
        text.push_str(m);
        text.push('\n');
    }
    homelab_fs::write(&path, text.as_bytes(), Mode::KeepOr(0o644))?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_entries_are_added_once_and_bare_names_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".gitignore"), "target\nkubeconfig").expect("write");
        let added =
            ensure_gitignored(dir.path(), &["/talosconfig", "/kubeconfig"], "test").expect("ok");
        assert_eq!(added, vec!["/talosconfig".to_string()]);
        let again =
            ensure_gitignored(dir.path(), &["/talosconfig", "/kubeconfig"], "test").expect("ok");
        assert!(again.is_empty());
        let text = std::fs::read_to_string(dir.path().join(".gitignore")).expect("read");
        assert!(text.starts_with("target\nkubeconfig\n#"));
    }
}
