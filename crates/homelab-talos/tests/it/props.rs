//! Property tests: the parsers of outside input never panic, and PEM encoding round-trips.

use homelab_talos::configpatcher::{Config, JsonTarget};
use homelab_talos::machine_config::{Patch, RenderedConfig};
use homelab_talos::pem;
use homelab_talos::secrets::SecretsBundle;
use proptest::prelude::*;

proptest! {
    #[test]
    fn bundle_parser_never_panics(text in ".{0,400}") {
        let _ = SecretsBundle::from_yaml(&text);
    }

    #[test]
    fn pem_and_key_readers_never_panic(text in ".{0,300}", der in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = pem::decode(&text);
        let _ = pem::private_key_to_pkcs8(&text);
        for label in [pem::EC_PRIVATE_KEY, pem::ED25519_PRIVATE_KEY, pem::PRIVATE_KEY] {
            let _ = pem::private_key_to_pkcs8(&pem::encode(label, &der));
        }
    }

    #[test]
    fn pem_round_trips(der in proptest::collection::vec(any::<u8>(), 0..500)) {
        let decoded = pem::decode(&pem::encode("CERTIFICATE", &der)).unwrap();
        prop_assert_eq!(decoded.der.to_vec(), der);
    }

    #[test]
    fn patch_and_config_parsers_never_panic(text in "[a-z:\\-\\[\\]{}$/ \n0-9]{0,200}") {
        if let Ok(p) = Patch::parse(&text, "prop.yaml") {
            let base = Config::load("version: v1alpha1\nmachine: {}\n", "base.yaml").unwrap();
            let _ = base.apply(&[p.patch], JsonTarget::Legacy);
        }
        let _ = RenderedConfig::from_yaml(&text);
    }
}
