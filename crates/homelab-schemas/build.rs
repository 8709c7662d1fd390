//! Packs `data/` into `$OUT_DIR/schemas.bin` (each file deflated on its own, so a lookup inflates only the
//! file it needs) and writes `$OUT_DIR/index.rs`, the table of names, offsets and sizes that `src/lib.rs`
//! includes.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let data = manifest.join("data");
    println!("cargo:rerun-if-changed=data");
    let mut files = Vec::new();
    collect(&data, &data, &mut files);
    // Sorted so that the index is binary-searchable and the blob is reproducible.
    files.sort();
    let mut blob = Vec::new();
    let mut index = String::from("static INDEX: &[Entry] = &[\n");
    for rel in &files {
        let path = data.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        let raw =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&raw).expect("deflating into memory");
        let packed = enc.finish().expect("deflating into memory");
        index.push_str(&format!(
            "    Entry {{ name: {rel:?}, offset: {}, packed: {}, len: {} }},\n",
            blob.len(),
            packed.len(),
            raw.len()
        ));
        blob.extend_from_slice(&packed);
    }
    index.push_str("];\n");
    std::fs::write(out.join("schemas.bin"), &blob).expect("writing schemas.bin");
    std::fs::write(out.join("index.rs"), index).expect("writing index.rs");
}

/// Every `.json` file below `dir`, as a `/`-separated path relative to `base`.
fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for e in entries {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            collect(base, &p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            let rel = p.strip_prefix(base).expect("below data/");
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}
