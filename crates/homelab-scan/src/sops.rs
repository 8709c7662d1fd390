//! Recognising SOPS-encrypted content, which is never a finding: whole SOPS files (YAML, JSON, dotenv, INI,
//! binary-as-JSON) and single `ENC[AES256_GCM,…]` values anywhere.

const ENC_PREFIX: &[u8] = b"ENC[AES256_GCM,";

/// The MAC line every SOPS file carries, in each of its formats.
const MAC_MARKERS: [&[u8]; 4] = [
    b"mac: ENC[AES256_GCM,",
    b"\"mac\": \"ENC[AES256_GCM,",
    b"sops_mac=ENC[AES256_GCM,",
    b"mac = ENC[AES256_GCM,",
];

/// True when `content` (a whole file, or the added lines of one file's diff) carries SOPS metadata.
pub fn is_sops_content(content: &[u8]) -> bool {
    MAC_MARKERS.iter().any(|m| find(content, m, 0).is_some())
}

/// True when the byte range `start..end` of `raw` lies inside an `ENC[…]` token.
pub fn inside_encrypted_value(raw: &[u8], start: usize, end: usize) -> bool {
    // Look back for the nearest `ENC[` on the same line and check its `]` closes at or after `end`.
    let line_start = raw[..start.min(raw.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let mut from = line_start;
    while let Some(pos) = find(raw, ENC_PREFIX, from) {
        if pos > start {
            return false;
        }
        let close = raw[pos..]
            .iter()
            .position(|&b| b == b']' || b == b'\n')
            .map(|p| pos + p);
        match close {
            Some(c) if raw[c] == b']' && c + 1 >= end => return true,
            Some(c) => from = c + 1,
            None => return false,
        }
    }
    false
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.len() > hay.len() - from {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_sops_files_are_recognised() {
        let dir = crate::testdata::path("sops/enc");
        let mut n = 0;
        for name in [
            "basic.yaml",
            "basic.json",
            "basic.env",
            "multidoc.yaml",
            "types.yaml",
            "blob.bin",
        ] {
            let content = std::fs::read(dir.join(name)).expect("sops vector");
            assert!(is_sops_content(&content), "{name}");
            n += 1;
        }
        assert_eq!(n, 6);
        assert!(!is_sops_content(b"apiVersion: v1\nkind: Secret\n"));
    }

    #[test]
    fn encrypted_value_span() {
        let raw = b"a: ENC[AES256_GCM,data:abcd,iv:x,tag:y,type:str]\nb: data:abcd\n";
        assert!(inside_encrypted_value(raw, 18, 27));
        assert!(!inside_encrypted_value(raw, 52, 61));
        assert!(!inside_encrypted_value(raw, 0, 2));
    }
}
