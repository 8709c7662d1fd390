//! Validation must survive any input: arbitrary text, and mutations of a valid file.

use proptest::prelude::*;

use super::fixture;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn validate_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = homelab_config::diagnostics(&text, None);
    }

    #[test]
    fn validate_never_panics_on_yamlish_text(text in "([a-z_]{1,8}: ?(\\[|\\{|-|[0-9a-f:./]{0,20}|\"x\"|&a|\\*a)?\n {0,6}){0,30}") {
        let _ = homelab_config::diagnostics(&text, None);
    }

    #[test]
    fn validate_never_panics_on_mutated_example(cut in 0usize..2000, insert in "[ :\\-\\[\\]{}#&*!|>'\"%@`a-z0-9\n]{0,6}") {
        let example = fixture("examples/m710q/homelab.yaml");
        let mut cut = cut.min(example.len());
        while !example.is_char_boundary(cut) { cut -= 1; }
        let mutated = format!("{}{}{}", &example[..cut], insert, &example[cut..]);
        let _ = homelab_config::diagnostics(&mutated, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn fmt_never_panics_and_is_idempotent(cut in 0usize..2000, insert in "[ :\\-\\[\\]{}#a-z0-9\n]{0,6}") {
        let example = fixture("examples/m710q/homelab.yaml");
        let mut cut = cut.min(example.len());
        while !example.is_char_boundary(cut) { cut -= 1; }
        let mutated = format!("{}{}{}", &example[..cut], insert, &example[cut..]);
        if let Ok(once) = homelab_config::format::format(&mutated) {
            prop_assert_eq!(homelab_config::format::format(&once), Ok(once.clone()));
        }
    }
}
