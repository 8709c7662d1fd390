//! Masking of every secret in a rendered config, for plan diffs and `homelabctl talos config`.

use serde_json::Value;

/// What a masked value shows.
pub const MASK: &str = "******";

/// Keys whose string values are secrets wherever they appear (CA/SA keys, tokens, passphrases,
/// WireGuard and registry credentials).
const SECRET_KEYS: &[&str] = &[
    "key",
    "token",
    "secret",
    "secretboxEncryptionSecret",
    "aescbcEncryptionSecret",
    "passphrase",
    "privateKey",
    "presharedKey",
    "password",
    "auth",
    "identityToken",
    "bootstraptoken",
];

/// Mask every secret in a multi-document YAML config.
pub fn redact(yaml: &str) -> Result<String, super::ConfigError> {
    let config = super::RenderedConfig::from_yaml(yaml)?;
    config.redacted().to_yaml().map(|s| s.to_string())
}

/// Mask the secrets of one document.
pub fn redact_document(doc: &Value) -> Value {
    let mut out = doc.clone();
    mask(&mut out, "");
    out
}

fn mask(v: &mut Value, path: &str) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let child_path = format!("{path}/{k}");
                if child_path == "/cluster/inlineManifests" {
                    if let Value::Array(items) = child {
                        for item in items {
                            if let Some(c) = item.get_mut("contents") {
                                mask_manifest(c);
                            }
                        }
                    }
                } else if (SECRET_KEYS.contains(&k.as_str()) || child_path == "/cluster/id")
                    && !child.is_object()
                    && !child.is_array()
                    && !child.is_null()
                {
                    *child = Value::String(MASK.into());
                } else {
                    mask(child, &child_path);
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                mask(item, path);
            }
        }
        _ => {}
    }
}

/// Inline manifests may embed Kubernetes Secrets: mask the whole manifest text when it does.
fn mask_manifest(contents: &mut Value) {
    if let Value::String(s) = contents
        && s.contains("kind: Secret")
    {
        *contents = Value::String(MASK.into());
    }
}
