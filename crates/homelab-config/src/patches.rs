//! `patches:` in homelab.yaml: the user's own Talos machine-config patches at cluster level
//! (`cluster.patches`), per role (`cluster.role_patches.controlplane` / `.worker`) and per node
//! (`nodes[].patches`), applied in that order after rendering. Each entry is a file path (relative to
//! homelab.yaml) or the patch itself inline: a mapping is a strategic merge patch, a list of `{op, path, …}`
//! a JSON6902 patch. Inline patches keep their homelab.yaml lines so errors can point at them.

use std::path::PathBuf;

use serde::Serialize;

use crate::yaml::{Node, Value};

/// One patch entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PatchSource {
    /// A patch file, relative to homelab.yaml.
    File(PathBuf),
    /// A patch written in homelab.yaml itself.
    Inline(PatchTree),
}

/// Per-role patches.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RolePatches {
    pub controlplane: Vec<PatchSource>,
    pub worker: Vec<PatchSource>,
}

/// An inline patch as written, with the homelab.yaml line of every node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchTree {
    pub line: usize,
    pub value: PatchValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PatchValue {
    Null,
    /// A scalar and whether it was quoted (a quoted scalar is always a string).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<PatchTree>),
    Map(Vec<(String, PatchTree)>),
}

pub const ROLE_PATCH_KEYS: &[&str] = &["controlplane", "worker"];

/// Read one entry: a string is a file path, a mapping or list an inline patch.
pub(crate) fn entry(node: &Node) -> Result<PatchSource, &'static str> {
    match &node.value {
        Value::Scalar { text, .. } if !text.is_empty() => {
            Ok(PatchSource::File(PathBuf::from(text)))
        }
        Value::Mapping(_) | Value::Sequence(_) => Ok(PatchSource::Inline(tree(node))),
        _ => Err(
            "write a patch file path, or the patch itself as a mapping (strategic merge) or a list of operations (JSON6902)",
        ),
    }
}

fn tree(node: &Node) -> PatchTree {
    let value = match &node.value {
        Value::Null => PatchValue::Null,
        Value::Scalar { text, quoted } => PatchValue::Scalar {
            text: text.clone(),
            quoted: *quoted,
        },
        Value::Sequence(items) => PatchValue::Seq(items.iter().map(tree).collect()),
        Value::Mapping(entries) => PatchValue::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    let mut t = tree(v);
                    // A nested mapping or list is "written" where its key is.
                    if matches!(t.value, PatchValue::Map(_) | PatchValue::Seq(_)) {
                        t.line = k.span.line;
                    }
                    (k.as_scalar().unwrap_or_default().to_string(), t)
                })
                .collect(),
        ),
    };
    PatchTree {
        line: node.span.line,
        value,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_a_file_and_a_mapping_or_list_is_inline() {
        let root = crate::yaml::parse("- talos/p.yaml\n- machine:\n    network:\n      hostname: x\n- [{op: remove, path: /a}]\n").unwrap();
        let Value::Sequence(items) = &root.value else {
            panic!()
        };
        assert_eq!(
            entry(&items[0]).unwrap(),
            PatchSource::File("talos/p.yaml".into())
        );
        let PatchSource::Inline(t) = entry(&items[1]).unwrap() else {
            panic!()
        };
        let PatchValue::Map(m) = &t.value else {
            panic!()
        };
        assert_eq!(m[0].0, "machine");
        assert_eq!(m[0].1.line, 2);
        assert!(matches!(
            entry(&items[2]).unwrap(),
            PatchSource::Inline(PatchTree {
                value: PatchValue::Seq(_),
                ..
            })
        ));
    }
}
