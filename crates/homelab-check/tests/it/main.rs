//! Integration tests of the GitOps checks: a fixture Flux repository, schema verdicts against
//! kubernetes-validate, and the Flux emulation against kubectl kustomize.

mod check_repo;
mod flux_vs_kubectl;
mod schema_agreement;

use std::path::{Path, PathBuf};

pub fn fixture_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo")
}

/// A writable copy of the fixture repository.
pub fn copy_fixture() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture_repo(), t.path());
    t
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// The schemas built into the binary, nothing else.
pub fn schema_options() -> homelab_check::SchemaOptions {
    homelab_check::SchemaOptions::default()
}
