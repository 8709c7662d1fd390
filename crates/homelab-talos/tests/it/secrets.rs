//! Secrets bundle: import of a talosctl bundle, generation with Talos' algorithms, leaf certificates.

use std::net::IpAddr;
use std::time::Duration;

use homelab_talos::pem;
use homelab_talos::pki::{self, CertAndKey};
use homelab_talos::secrets::{SecretsBundle, SecretsError};
use x509_parser::prelude::*;

use crate::{generated_bundle, talos_fixture};

const FIXTURE: &str = "generate/secrets/testdata/secrets.yaml";

fn parse_cert(pem_text: &str) -> Vec<u8> {
    pem::decode(pem_text).unwrap().der.to_vec()
}

#[test]
fn talosctl_bundle_imports_and_writes_back_byte_identical() {
    let text = talos_fixture(FIXTURE);
    let bundle = SecretsBundle::from_yaml(&text).unwrap();
    assert!(
        bundle
            .certs
            .os
            .key
            .expose()
            .starts_with("-----BEGIN ED25519 PRIVATE KEY-----")
    );
    assert!(
        bundle
            .certs
            .k8s
            .key
            .expose()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let written = bundle.to_yaml().unwrap();
    assert_eq!(written.as_str(), text);
    assert_eq!(SecretsBundle::from_yaml(&written).unwrap(), bundle);
}

#[test]
fn terraform_style_snake_case_keys_are_accepted() {
    let text = talos_fixture(FIXTURE)
        .replace("bootstraptoken:", "bootstrap_token:")
        .replace("secretboxencryptionsecret:", "secretbox_encryption_secret:")
        .replace("k8saggregator:", "k8s_aggregator:")
        .replace("k8sserviceaccount:", "k8s_serviceaccount:");
    let bundle = SecretsBundle::from_yaml(&text).unwrap();
    assert_eq!(
        bundle,
        SecretsBundle::from_yaml(&talos_fixture(FIXTURE)).unwrap()
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_rejected() {
    let good = SecretsBundle::from_yaml(&talos_fixture(FIXTURE)).unwrap();
    let mut bad = good.clone();
    bad.certs.etcd.key = good.certs.k8s.key.clone();
    let err = bad.validate().unwrap_err();
    assert!(err.to_string().contains("certs.etcd"), "{err}");
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn unknown_keys_and_bad_values_are_reported_without_secret_values() {
    let text = talos_fixture(FIXTURE);
    let err = SecretsBundle::from_yaml(&text.replace("trustdinfo:", "trustinfo:")).unwrap_err();
    assert!(matches!(err, SecretsError::Parse { .. }), "{err}");

    let err = SecretsBundle::from_yaml(
        &text.replace("2psnp2.lry8e9gycdix3bpa", "2psnp2-lry8e9gycdix3bpa"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("secrets.bootstraptoken"), "{err}");
    assert!(!err.to_string().contains("lry8e9gycdix3bpa"), "{err}");
}

#[test]
fn debug_output_of_a_bundle_contains_no_secret() {
    let bundle = SecretsBundle::from_yaml(&talos_fixture(FIXTURE)).unwrap();
    let debug = format!("{bundle:?}");
    assert!(!debug.contains("2psnp2"));
    assert!(!debug.contains("PRIVATE KEY"));
    assert!(!debug.contains(bundle.cluster.secret.expose()));
}

#[test]
fn generated_bundle_uses_talos_algorithms_and_round_trips() {
    let bundle = generated_bundle();
    bundle.validate().unwrap();
    assert!(
        bundle
            .certs
            .os
            .key
            .expose()
            .starts_with("-----BEGIN ED25519 PRIVATE KEY-----")
    );
    for pair in [
        &bundle.certs.k8s,
        &bundle.certs.etcd,
        &bundle.certs.k8saggregator,
    ] {
        assert!(
            pair.key
                .expose()
                .starts_with("-----BEGIN EC PRIVATE KEY-----")
        );
    }
    let sa = bundle.certs.k8sserviceaccount.key.expose();
    assert!(sa.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::RsaPrivateKey::from_pkcs1_der(&pem::decode(sa).unwrap().der).unwrap();
        assert_eq!(key.size() * 8, 4096);
    }
    let yaml = bundle.to_yaml().unwrap();
    for key in [
        "cluster:",
        "secrets:",
        "trustdinfo:",
        "certs:",
        "    k8sserviceaccount:",
        "        crt: ",
    ] {
        assert!(yaml.contains(key), "missing {key}");
    }
    assert_eq!(&SecretsBundle::from_yaml(&yaml).unwrap(), bundle);
}

#[test]
fn generated_cas_have_talos_subjects_and_usages() {
    let bundle = generated_bundle();
    let cases: [(&CertAndKey, &str, &str); 4] = [
        (&bundle.certs.os, "O=talos", "1.3.101.112"),
        (&bundle.certs.k8s, "O=kubernetes", "1.2.840.10045.2.1"),
        (&bundle.certs.etcd, "O=etcd", "1.2.840.10045.2.1"),
        (
            &bundle.certs.k8saggregator,
            "CN=front-proxy",
            "1.2.840.10045.2.1",
        ),
    ];
    for (pair, subject, alg) in cases {
        let der = parse_cert(&pair.crt);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().to_string(), subject);
        assert_eq!(cert.issuer().to_string(), subject);
        assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), alg);
        assert!(cert.is_ca());
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.key_cert_sign() && ku.value.digital_signature());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let years = (cert.validity().not_after.to_datetime()
            - cert.validity().not_before.to_datetime())
        .whole_days()
            / 365;
        assert_eq!(years, 10);
        cert.verify_signature(None).unwrap();
    }
}

#[test]
fn admin_client_cert_is_os_admin_client_auth_signed_by_the_os_ca() {
    for bundle in [
        generated_bundle().clone(),
        SecretsBundle::from_yaml(&talos_fixture(FIXTURE)).unwrap(),
    ] {
        let leaf =
            pki::talos_client_cert(&bundle.certs.os, &["os:admin"], pki::CLIENT_CERT_VALIDITY)
                .unwrap();
        assert!(
            leaf.key
                .expose()
                .starts_with("-----BEGIN ED25519 PRIVATE KEY-----")
        );
        pki::check_pair(&leaf, "leaf").unwrap();
        let der = parse_cert(&leaf.crt);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().to_string(), "O=os:admin");
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let ca_der = parse_cert(&bundle.certs.os.crt);
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        cert.verify_signature(Some(ca.public_key())).unwrap();
        let info = pki::cert_info(&leaf.crt).unwrap();
        assert_eq!(info.organizations, vec!["os:admin".to_string()]);
        let days = (info.not_after - ::time::OffsetDateTime::now_utc()).whole_days();
        assert!((364..=365).contains(&days), "{days}");
    }
}

#[test]
fn node_server_cert_carries_ip_sans_and_server_auth() {
    let bundle = generated_bundle();
    let ips: Vec<IpAddr> = vec!["127.0.20.100".parse().unwrap(), "::1".parse().unwrap()];
    let leaf = pki::talos_server_cert(
        &bundle.certs.os,
        "talos-cp-1",
        &ips,
        Duration::from_secs(86_400),
    )
    .unwrap();
    let der = parse_cert(&leaf.crt);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert!(
        san.general_names
            .contains(&GeneralName::IPAddress(&[127, 0, 20, 100]))
    );
    assert!(
        san.general_names
            .contains(&GeneralName::DNSName("talos-cp-1"))
    );
    assert_eq!(cert.subject().to_string(), "CN=talos-cp-1");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    let ca_der = parse_cert(&bundle.certs.os.crt);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
}

#[test]
fn talos_key_pem_converts_to_pkcs8_for_rustls() {
    let bundle = SecretsBundle::from_yaml(&talos_fixture(FIXTURE)).unwrap();
    for key in [&bundle.certs.os.key, &bundle.certs.k8s.key] {
        let pkcs8 = pem::to_pkcs8_pem(key.expose()).unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let der = pem::decode(&pkcs8).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(der.der.to_vec().into());
        rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    }
}
