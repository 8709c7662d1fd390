//! Property tests: any tree we render parses back to itself, and encrypt→decrypt gives the plaintext back.

use homelab_sops::{
    CreationRule, Format, Map, Style, Value, decrypt, encrypt, parse_plaintext, render_plaintext,
};
use proptest::prelude::*;

use crate::common::{RECIPIENT, identities};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,8}",
        "[A-Za-z0-9 :#'\"é✓-]{1,12}",
        Just("yes".to_string()),
        Just("1".to_string()),
    ]
}

fn leaf(json: bool) -> BoxedStrategy<Value> {
    let mut options: Vec<BoxedStrategy<Value>> = vec![
        "\\PC{0,20}".prop_map(Value::Str).boxed(),
        "[a-z \\n\\t:#'\"-]{0,20}".prop_map(Value::Str).boxed(),
        any::<bool>().prop_map(Value::Bool).boxed(),
        Just(Value::Null).boxed(),
        // An integral float is written as `1` and reads back as an int, in go-yaml as here: keep a fraction.
        (-1e15f64..1e15)
            .prop_filter("fraction", |f| f.fract() != 0.0)
            .prop_map(Value::Float)
            .boxed(),
    ];
    if !json {
        options.push(any::<i64>().prop_map(Value::Int).boxed());
        options.push(
            any::<f64>()
                .prop_filter("finite, fraction", |f| f.is_finite() && f.fract() != 0.0)
                .prop_map(Value::Float)
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

fn map_of(inner: BoxedStrategy<Value>) -> impl Strategy<Value = Map> {
    proptest::collection::vec((key(), inner), 0..5).prop_map(|items| {
        let mut m = Map::default();
        for (k, v) in items {
            if m.get(&k).is_none() {
                m.push(k, v);
            }
        }
        m
    })
}

fn tree(json: bool) -> impl Strategy<Value = Map> {
    let value = leaf(json).prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            map_of(inner.clone()).prop_map(Value::Map),
            proptest::collection::vec(inner, 0..4).prop_map(Value::Seq),
        ]
        .boxed()
    });
    map_of(value.boxed()).prop_filter("non-empty", |m| !m.entries.is_empty())
}

fn check(format: Format, doc: Map) -> Result<(), TestCaseError> {
    let style = Style::default();
    let text = render_plaintext(format, std::slice::from_ref(&doc), &style);
    let parsed = parse_plaintext(format, text.as_bytes(), "p")
        .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    prop_assert_eq!(&parsed, &vec![doc], "{}", text);
    let rule = CreationRule::for_recipients(&[RECIPIENT]);
    let enc = encrypt(text.as_bytes(), format, &rule, "p")
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let dec = decrypt(&enc, format, &identities(), "p")
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&dec.plaintext(&style)).to_string(),
        text
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn yaml_trees_render_parse_and_encrypt_round_trip(doc in tree(false)) {
        check(Format::Yaml, doc)?;
    }

    #[test]
    fn json_trees_render_parse_and_encrypt_round_trip(doc in tree(true)) {
        check(Format::Json, doc)?;
    }

    #[test]
    fn binary_bytes_encrypt_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let rule = CreationRule::for_recipients(&[RECIPIENT]);
        let enc = encrypt(&bytes, Format::Binary, &rule, "b").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dec = decrypt(&enc, Format::Binary, &identities(), "b").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&dec.plaintext(&Style::default())[..], &bytes[..]);
    }
}
