//! A light, self-contained SOPS policy check: which files `.sops.yaml` creation rules cover, and whether a
//! file carries SOPS metadata with a MAC (it does not decrypt or verify anything).

use regex::Regex;

use homelab_kustomize::yaml::{Value, parse_value};

/// The `path_regex` of every creation rule that has one.
pub fn creation_rule_regexes(sops_yaml: &str) -> Result<Vec<Regex>, String> {
    let v = parse_value(sops_yaml).map_err(|e| format!("invalid YAML: {e}"))?;
    let rules = v
        .get_path(&["creation_rules"])
        .and_then(Value::as_seq)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for r in rules {
        if let Some(p) = r
            .as_map()
            .and_then(|m| m.get("path_regex"))
            .and_then(Value::as_str)
        {
            out.push(
                Regex::new(p).map_err(|e| format!("path_regex {p:?} is not a valid regex: {e}"))?,
            );
        }
    }
    Ok(out)
}

/// Whether `content` looks SOPS-encrypted: YAML/JSON with a `sops` mapping holding a `mac`, or a dotenv/INI
/// file with `sops_mac`.
pub fn is_encrypted(content: &str) -> bool {
    if let Ok(docs) = homelab_kustomize::yaml::parse_documents(content)
        && docs.iter().any(|d| has_sops_mac(&d.value))
    {
        return true;
    }
    content
        .lines()
        .any(|l| l.trim_start().starts_with("sops_mac=") || l.trim_start().starts_with("mac ="))
}

/// A parsed object with a `sops` block carrying a `mac`.
pub fn has_sops_mac(v: &Value) -> bool {
    v.as_map()
        .and_then(|m| m.get("sops"))
        .and_then(Value::as_map)
        .is_some_and(|s| {
            s.get("mac")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_files_are_recognised_by_their_mac() {
        assert!(is_encrypted(
            "data: ENC[AES256_GCM,data:x]\nsops:\n  mac: ENC[AES256_GCM,data:y]\n"
        ));
        assert!(!is_encrypted("data: plain\nsops:\n  version: 3.11.0\n"));
        assert!(is_encrypted("A=ENC[x]\nsops_mac=ENC[y]\n"));
        assert!(!is_encrypted("password: hunter2\n"));
    }

    #[test]
    fn rules_without_path_regex_are_ignored() {
        let r =
            creation_rule_regexes("creation_rules:\n  - path_regex: \\.enc\\.yaml$\n  - age: x\n")
                .unwrap_or_default();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_match("secrets.enc.yaml"));
    }
}
