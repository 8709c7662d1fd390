//! Shannon entropy of a candidate secret, computed the way gitleaks does.
//!
//! Quirk kept for compatibility: characters are counted as Unicode scalar values but the frequencies are
//! divided by the length in bytes, so non-ASCII text scores lower than its true entropy.

/// Bits per character of `data` (0 for empty input).
pub fn shannon(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    let mut other: Vec<(char, u32)> = Vec::new();
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                counts[c as usize] += 1;
            } else {
                bump(&mut other, c);
            }
        }
        // Go decodes each invalid byte as U+FFFD.
        for _ in chunk.invalid() {
            bump(&mut other, char::REPLACEMENT_CHARACTER);
        }
    }
    let inv_len = 1.0 / data.len() as f64;
    counts
        .iter()
        .copied()
        .chain(other.iter().map(|(_, n)| *n))
        .filter(|&n| n > 0)
        .map(|n| {
            let freq = f64::from(n) * inv_len;
            -freq * freq.log2()
        })
        .sum()
}

fn bump(other: &mut Vec<(char, u32)>, c: char) {
    match other.iter_mut().find(|(k, _)| *k == c) {
        Some((_, n)) => *n += 1,
        None => other.push((c, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::shannon;

    #[test]
    fn uniform_alphabet_has_log2_entropy() {
        assert!((shannon(b"abcd") - 2.0).abs() < 1e-9);
        assert_eq!(shannon(b"aaaa"), 0.0);
        assert_eq!(shannon(b""), 0.0);
    }

    #[test]
    fn matches_gitleaks_figure_for_an_aws_key() {
        // gitleaks 8.30.1 reports Entropy 4.0219283 for this value.
        let value = concat!("AKIA", "Z7QWERTYUIOPLKJH");
        assert!((shannon(value.as_bytes()) - 4.0219283).abs() < 1e-6);
    }

    #[test]
    fn divides_by_bytes_not_characters() {
        // Two distinct 2-byte characters: each frequency is 1/4, so 2 * (-(1/4) log2(1/4)) = 1.
        assert!((shannon("éü".as_bytes()) - 1.0).abs() < 1e-9);
    }
}
