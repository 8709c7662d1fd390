//! Image Factory schematics: strict decoding of the request body and the canonical YAML the real
//! factory re-marshals (Go yaml.v3: 4-space indent, struct field order, empty fields omitted),
//! whose SHA-256 is the schematic id.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A decoded schematic in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schematic {
    canonical: String,
}

impl Schematic {
    /// Decodes a YAML (or JSON) schematic, rejecting unknown fields like the factory does.
    pub fn parse(body: &str) -> Result<Self, String> {
        let value: Value = if body.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            // The factory reads schematics with go-yaml, whose alias limit refuses a "billion laughs".
            homelab_goyaml::alias::check(body).map_err(|e| format!("invalid schematic: {e}"))?;
            serde_saphyr::from_str(body).map_err(|e| format!("invalid schematic: {e}"))?
        };
        let root = object(&value, "schematic.Schematic")?;
        check_keys(root, &["overlay", "customization"], "schematic.Schematic")?;
        let mut out = String::new();
        if let Some(overlay) = root.get("overlay").filter(|v| !v.is_null()) {
            let o = object(overlay, "schematic.Overlay")?;
            check_keys(o, &["image", "name", "options"], "schematic.Overlay")?;
            let image = string(o.get("image"), "overlay.image")?;
            let name = string(o.get("name"), "overlay.name")?;
            let options = o.get("options").filter(|v| !is_empty(v));
            if !image.is_empty() || !name.is_empty() || options.is_some() {
                out.push_str("overlay:\n");
                out.push_str(&format!("    image: {}\n", scalar(&image)));
                out.push_str(&format!("    name: {}\n", scalar(&name)));
                if let Some(options) = options {
                    out.push_str("    options:");
                    emit(&mut out, options, 2);
                }
            }
        }
        let mut body = String::new();
        if let Some(c) = root.get("customization").filter(|v| !v.is_null()) {
            let c = object(c, "schematic.Customization")?;
            check_keys(
                c,
                &["extraKernelArgs", "meta", "systemExtensions", "secureboot"],
                "schematic.Customization",
            )?;
            let args = strings(c.get("extraKernelArgs"), "extraKernelArgs")?;
            if !args.is_empty() {
                body.push_str("    extraKernelArgs:\n");
                for a in &args {
                    body.push_str(&format!("        - {}\n", scalar(a)));
                }
            }
            if let Some(meta) = c
                .get("meta")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
            {
                body.push_str("    meta:\n");
                for m in meta {
                    let m = object(m, "schematic.MetaValue")?;
                    check_keys(m, &["key", "value"], "schematic.MetaValue")?;
                    let key = m.get("key").and_then(Value::as_u64).filter(|k| *k <= 255);
                    let key = key.ok_or("meta key must be an integer 0-255 (uint8)")?;
                    let value = string(m.get("value"), "meta.value")?;
                    body.push_str(&format!(
                        "        - key: {key}\n          value: {}\n",
                        scalar(&value)
                    ));
                }
            }
            if let Some(ext) = c.get("systemExtensions").filter(|v| !v.is_null()) {
                let ext = object(ext, "schematic.SystemExtensions")?;
                check_keys(ext, &["officialExtensions"], "schematic.SystemExtensions")?;
                let names = strings(ext.get("officialExtensions"), "officialExtensions")?;
                if !names.is_empty() {
                    body.push_str("    systemExtensions:\n        officialExtensions:\n");
                    for n in &names {
                        body.push_str(&format!("            - {}\n", scalar(n)));
                    }
                }
            }
            if let Some(sb) = c.get("secureboot").filter(|v| !v.is_null()) {
                let sb = object(sb, "schematic.SecureBootCustomization")?;
                check_keys(
                    sb,
                    &["includeWellKnownCertificates"],
                    "schematic.SecureBootCustomization",
                )?;
                match sb.get("includeWellKnownCertificates") {
                    Some(Value::Bool(true)) => body
                        .push_str("    secureboot:\n        includeWellKnownCertificates: true\n"),
                    None | Some(Value::Bool(false) | Value::Null) => {}
                    Some(_) => {
                        return Err(
                            "secureboot.includeWellKnownCertificates must be a boolean".into()
                        );
                    }
                }
            }
        }
        if body.is_empty() {
            out.push_str("customization: {}\n");
        } else {
            out.push_str("customization:\n");
            out.push_str(&body);
        }
        Ok(Self { canonical: out })
    }

    /// The canonical YAML.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The schematic id: lowercase hex SHA-256 of the canonical YAML.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.canonical.as_bytes()))
    }
}

fn object<'a>(v: &'a Value, ty: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("yaml: unmarshal errors: cannot unmarshal into {ty}: not a mapping"))
}

fn check_keys(m: &Map<String, Value>, known: &[&str], ty: &str) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "yaml: unmarshal errors:\n  field {k} not found in type {ty}"
        )),
        None => Ok(()),
    }
}

fn string(v: Option<&Value>, what: &str) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(format!("{what} must be a string")),
    }
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|i| string(Some(i), what)).collect(),
        Some(_) => Err(format!("{what} must be a list of strings")),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A string scalar as yaml.v3 writes it: plain when unambiguous, double-quoted otherwise.
fn scalar(s: &str) -> String {
    const RESERVED: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y",
        "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let first = s.chars().next().unwrap_or(' ');
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s == ".inf"
        || s == ".nan";
    let needs_quotes = RESERVED.contains(&s)
        || numeric
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_whitespace()
        || s.ends_with(char::is_whitespace)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(char::is_control);
    if needs_quotes {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        s.to_owned()
    }
}

/// Emits an arbitrary value (overlay options) in yaml.v3 block style; map keys sorted.
fn emit(out: &mut String, v: &Value, depth: usize) {
    let pad = "    ".repeat(depth);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                out.push_str(&format!("{pad}{}:", scalar(k)));
                emit(out, &m[k], depth + 1);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            for item in a {
                out.push_str(&format!("{pad}-"));
                emit(out, item, depth + 1);
            }
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        Value::String(s) => out.push_str(&format!(" {}\n", scalar(s))),
        Value::Null => out.push_str(" null\n"),
        other => out.push_str(&format!(" {other}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_bomb_is_refused_like_go_yaml_refuses_it() {
        let err = Schematic::parse(&homelab_goyaml::alias::billion_laughs(40)).expect_err("bomb");
        assert!(
            err.ends_with("document contains excessive aliasing"),
            "{err}"
        );
    }

    fn id(body: &str) -> String {
        match Schematic::parse(body) {
            Ok(s) => s.id(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Vectors from the Image Factory's own schematic tests (pkg/schematic/schematic_test.go).
    #[test]
    fn ids_match_the_real_factory() {
        let vanilla = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
        assert_eq!(id("{}"), vanilla);
        assert_eq!(id("customization: {}"), vanilla);
        assert_eq!(id(r#"customization: {"extraKernelArgs": []}"#), vanilla);
        let args = "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c";
        assert_eq!(
            id(r#"{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}"#),
            args
        );
        assert_eq!(
            id(
                r#"{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}"#
            ),
            args
        );
        assert_eq!(
            id(
                r#"{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}"#
            ),
            "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"
        );
        assert_eq!(
            id(
                r#"{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}"#
            ),
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"
        );
        assert_eq!(
            id(r#"{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}"#),
            "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"
        );
    }

    #[test]
    fn extension_list_order_changes_the_id() {
        let a = id(
            "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/nfs-utils, siderolabs/qemu-guest-agent]\n",
        );
        let b = id(
            "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/qemu-guest-agent, siderolabs/nfs-utils]\n",
        );
        assert_ne!(a, b);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = Schematic::parse("customization:\n  bogus: 1\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("field bogus not found in type schematic.Customization"),
            "{err}"
        );
        assert!(Schematic::parse("- a list").is_err());
    }

    proptest::proptest! {
        /// Re-posting the canonical form gives the same canonical form (and so the same id).
        #[test]
        fn canonical_form_is_a_fixed_point(
            exts in proptest::collection::vec("[a-z]{1,8}/[a-z][a-z-]{0,12}", 0..5),
            args in proptest::collection::vec("[a-z]{1,6}(=[a-zA-Z0-9,]{1,6})?", 0..4),
        ) {
            let body = serde_json::json!({"customization": {"extraKernelArgs": args, "systemExtensions": {"officialExtensions": exts}}});
            let first = Schematic::parse(&body.to_string());
            proptest::prop_assert!(first.is_ok());
            let first = first.unwrap_or_else(|_| unreachable!());
            let again = Schematic::parse(first.canonical()).map(|s| s.id());
            proptest::prop_assert_eq!(again.ok(), Some(first.id()));
        }

        /// Arbitrary request bodies are answered with an id or an error, never a panic.
        #[test]
        fn arbitrary_bodies_do_not_panic(body in "\\PC{0,200}") {
            let _ = Schematic::parse(&body);
        }
    }
}
