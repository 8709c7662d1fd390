//! The YAML reader and writer never panic, and what the writer prints reads back to the same value.

use homelab_kustomize::yaml::{Value, parse_documents, parse_value, to_yaml};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn reader_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_documents(&s);
    }

    #[test]
    fn reader_never_panics_on_yamlish_text(s in "[-:{}\\[\\],'\"|>!&*#?%@` \\n a-z0-9]{0,120}") {
        let _ = parse_documents(&s);
    }

    // U+2028/U+2029/U+0085 are left out on purpose: go-yaml (and so kubectl kustomize) writes them raw as
    // YAML 1.1 line breaks, with indentation after them, so they cannot read back unchanged under YAML 1.2.
    // We match kubectl byte for byte for U+2028/U+2029 (fixture `unicode-line-breaks`); U+0085 differs
    // (kustomize folds it to a space through a YAML 1.1 re-read, we keep it and write "\N").
    #[test]
    fn written_strings_read_back_unchanged(s in "[^\\p{C}\u{2028}\u{2029}\u{85}]{0,120}", k in "[a-zA-Z0-9_.-]{1,20}") {
        let mut m = homelab_kustomize::yaml::Map::new();
        m.insert(k.clone(), Value::Str(s.clone()));
        let text = to_yaml(&Value::Map(m.clone())).expect("strings are always printable");
        let back = parse_value(&text).expect("printed YAML parses");
        prop_assert_eq!(back, Value::Map(m), "text was:\n{}", text);
    }
}

proptest! {
    /// Ordinary anchor reuse (a base mapping merged or aliased into a few places, as Helm values and CI
    /// files do) stays under go-yaml's alias limit and expands to full copies.
    #[test]
    fn a_few_anchors_reused_a_few_times_expand(
        anchors in 1usize..5,
        width in 1usize..15,
        uses in 1usize..15,
    ) {
        let mut s = String::new();
        for a in 0..anchors {
            let body: Vec<String> = (0..width).map(|i| format!("k{i}: v{i}")).collect();
            s.push_str(&format!("base{a}: &b{a} {{{}}}\n", body.join(", ")));
        }
        for u in 0..uses {
            for a in 0..anchors {
                s.push_str(&format!("use{u}_{a}: {{<<: *b{a}, own: {u}}}\nplain{u}_{a}: *b{a}\n"));
            }
        }
        let v = parse_value(&s).expect("legitimate aliasing parses");
        let last = format!("k{}", width - 1);
        for u in 0..uses {
            for a in 0..anchors {
                let merged = format!("use{u}_{a}");
                let plain = format!("plain{u}_{a}");
                prop_assert_eq!(v.get_path(&[merged.as_str(), last.as_str()]), Some(&Value::Str(format!("v{}", width - 1))));
                prop_assert_eq!(v.get_path(&[plain.as_str(), "k0"]), Some(&Value::Str("v0".into())));
            }
        }
    }
}
