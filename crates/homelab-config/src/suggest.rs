//! "Did you mean …?" suggestions for misspelt keys and values.

/// The closest candidate to `input`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    let limit = (input.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (levenshtein(&input_lower, &c.to_ascii_lowercase()), *c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(
            did_you_mean("endpiont", &["endpoint", "node"]),
            Some("endpoint")
        );
        assert_eq!(did_you_mean("vmid", &["vm_id", "name"]), Some("vm_id"));
        assert_eq!(did_you_mean("zzzzzz", &["endpoint", "node"]), None);
    }
}
