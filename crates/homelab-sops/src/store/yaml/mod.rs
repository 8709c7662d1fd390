//! The YAML store: go-yaml v3 compatible reading (typing, comments, multi-document) and writing (sops's
//! indentation and scalar styles).
//!
//! Why our own layer: no Rust YAML crate keeps comments, and sops's output format is go-yaml's. So the structure
//! comes from saphyr-parser's spanned events (a full YAML 1.2 parser we do not want to rewrite), comments are
//! recovered from the source text between those spans, and the writer is purpose-built to emit exactly what
//! go-yaml v3 emits for the trees sops produces (block style only, never wrapped lines).

mod fast;
mod read;
mod resolve;
mod write;

pub use read::read_documents;
pub use write::{write_documents, write_documents_with_metadata};
