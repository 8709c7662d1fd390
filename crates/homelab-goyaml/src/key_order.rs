//! The order go-yaml gives the string keys of a map it marshals (`keyList.Less` in its sorter.go): digit
//! runs compare as numbers and a non-letter sorts before a letter. v3 (what Talos' configpatcher encodes
//! with) adds one rule v2 (sigs.k8s.io/yaml's output, which kustomize prints) lacks: right after a run of
//! equal digits, a letter sorts first.

use std::cmp::Ordering;

/// go-yaml v3's key order.
pub fn v3(a: &str, b: &str) -> Ordering {
    less(a, b, true)
}

/// go-yaml v2's key order.
pub fn v2(a: &str, b: &str) -> Ordering {
    less(a, b, false)
}

fn less(a: &str, b: &str, letter_after_digits_first: bool) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            let a_first = if digits && letter_after_digits_first {
                al
            } else {
                bl
            };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_go_yaml_v3() {
        let mut keys = vec!["b", "a10", "a2", "A", "_x", "a"];
        keys.sort_by(|a, b| v3(a, b));
        assert_eq!(keys, ["_x", "A", "a", "a2", "a10", "b"]);
    }

    #[test]
    fn keys_sort_naturally_with_non_letters_first() {
        let mut keys = vec!["a10", "a9", "Zed", "_x", "N", "amp"];
        keys.sort_by(|a, b| v2(a, b));
        assert_eq!(keys, vec!["_x", "N", "Zed", "a9", "a10", "amp"]);
    }

    #[test]
    fn only_v3_puts_a_letter_first_right_after_equal_digits() {
        assert_eq!(v3("a1b", "a1_"), Ordering::Less);
        assert_eq!(v2("a1b", "a1_"), Ordering::Greater);
        assert_eq!(v3("ab", "a_"), Ordering::Greater);
        assert_eq!(v2("ab", "a_"), Ordering::Greater);
    }
}
