//! File formats ("stores" in sops): choosing one from a file name, reading plaintext and encrypted files into
//! documents plus metadata, and writing them back in each format's sops layout.

pub mod dotenv;
pub mod json;
pub mod yaml;

use std::path::Path;

use crate::error::SopsError;
use crate::value::{Map, Value};

/// A SOPS file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`), multi-document, with comments.
    Yaml,
    /// JSON (`.json`).
    Json,
    /// dotenv (`.env`).
    Dotenv,
    /// Anything else: the whole file is one value.
    Binary,
}

impl Format {
    /// sops's choice by extension: `.yaml`/`.yml`, `.json`, `.env`, else binary.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    /// Parses `yaml`, `json`, `dotenv`, `binary` (the `--input-type` values).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "binary" => Format::Binary,
            _ => return None,
        })
    }
}

/// Output layout settings (`stores:` in `.sops.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// YAML indent (sops default 4).
    pub yaml_indent: usize,
    /// JSON indent in spaces, `None` for tabs (sops default).
    pub json_indent: Option<usize>,
    /// JSON indent of the binary store's encrypted file.
    pub binary_indent: Option<usize>,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            yaml_indent: 4,
            json_indent: None,
            binary_indent: None,
        }
    }
}

fn text<'a>(bytes: &'a [u8], file: &str, format: &'static str) -> Result<&'a str, SopsError> {
    std::str::from_utf8(bytes).map_err(|e| SopsError::Parse {
        file: file.to_string(),
        format,
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1,
        column: 1,
        message: "the file is not valid UTF-8".into(),
    })
}

/// Reads a plaintext tree file into documents.
pub fn read_plain(format: Format, bytes: &[u8], file: &str) -> Result<Vec<Map>, SopsError> {
    match format {
        Format::Yaml => {
            let t = text(bytes, file, "YAML")?;
            if t.trim().is_empty() {
                return Err(SopsError::unsupported(
                    file,
                    "the file is empty; sops cannot encrypt an empty YAML file",
                ));
            }
            let docs = yaml::read_documents(t, file)?;
            if docs.is_empty() {
                return Err(SopsError::unsupported(
                    file,
                    "the file holds no YAML document",
                ));
            }
            Ok(docs)
        }
        Format::Json => Ok(vec![json::read(text(bytes, file, "JSON")?, file)?]),
        Format::Dotenv => Ok(vec![dotenv::read(text(bytes, file, "dotenv")?, file)?]),
        Format::Binary => Err(SopsError::unsupported(file, "binary files have no tree")),
    }
}

/// Writes documents as plaintext in `format`.
pub fn write_plain(format: Format, docs: &[Map], style: &Style) -> String {
    match format {
        Format::Yaml => yaml::write_documents(docs, style.yaml_indent),
        Format::Json => docs
            .first()
            .map(|d| json::write(d, style.json_indent))
            .unwrap_or_else(|| "{}\n".into()),
        Format::Dotenv => docs.first().map(dotenv::write).unwrap_or_default(),
        Format::Binary => String::new(),
    }
}

/// Reads an encrypted file: its documents (metadata removed) and the metadata map.
pub fn read_encrypted(
    format: Format,
    bytes: &[u8],
    file: &str,
) -> Result<(Vec<Map>, Map), SopsError> {
    match format {
        Format::Dotenv => {
            let mut doc = dotenv::read(text(bytes, file, "dotenv")?, file)?;
            let meta = dotenv::take_metadata(&mut doc)
                .ok_or_else(|| SopsError::NotSops { file: file.into() })?;
            Ok((vec![doc], meta))
        }
        Format::Binary | Format::Json => {
            let mut doc = json::read(text(bytes, file, "JSON")?, file).map_err(|e| {
                if format == Format::Binary {
                    SopsError::NotSops { file: file.into() }
                } else {
                    e
                }
            })?;
            let meta = take_sops(&mut doc, file)?;
            Ok((vec![doc], meta))
        }
        Format::Yaml => {
            let t = text(bytes, file, "YAML")?;
            let mut docs = yaml::read_documents(t, file)?;
            let Some(first) = docs.first_mut() else {
                return Err(SopsError::NotSops { file: file.into() });
            };
            let meta = take_sops(first, file)?;
            for d in docs.iter_mut().skip(1) {
                d.remove("sops");
            }
            Ok((docs, meta))
        }
    }
}

fn take_sops(doc: &mut Map, file: &str) -> Result<Map, SopsError> {
    match doc.remove("sops") {
        Some(Value::Map(m)) => Ok(m),
        Some(_) => Err(SopsError::metadata(file, "`sops` is not a mapping")),
        None => Err(SopsError::NotSops { file: file.into() }),
    }
}

/// Writes encrypted documents with the metadata appended the way each store does it.
pub fn write_encrypted(format: Format, docs: &[Map], meta: &Map, style: &Style) -> String {
    match format {
        Format::Yaml => yaml::write_documents_with_metadata(docs, meta, style.yaml_indent),
        Format::Json | Format::Binary => {
            let mut d = docs.first().cloned().unwrap_or_default();
            d.push("sops", Value::Map(meta.clone()));
            let indent = if format == Format::Binary {
                style.binary_indent
            } else {
                style.json_indent
            };
            json::write(&d, indent)
        }
        Format::Dotenv => {
            let mut d = docs.first().cloned().unwrap_or_default();
            for (k, v) in dotenv::flatten_metadata(meta) {
                d.push(k, Value::Str(v));
            }
            dotenv::write(&d)
        }
    }
}
