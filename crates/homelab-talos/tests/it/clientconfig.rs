//! talosconfig and kubeconfig generated from the bundle: layouts, certificates, kubectl acceptance.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use homelab_talos::kubeconfig::{ADMIN_CERT_VALIDITY, Kubeconfig};
use homelab_talos::pki;
use homelab_talos::talosconfig::{Talosconfig, TalosconfigInput};
use serde_json::Value;
use x509_parser::prelude::*;

use crate::generated_bundle;

fn unb64(s: &str) -> String {
    String::from_utf8(STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn talosconfig_has_the_talosctl_layout_and_an_os_admin_client_cert() {
    let bundle = generated_bundle();
    let input = TalosconfigInput::admin(
        "homelab",
        vec!["192.168.20.100".into()],
        vec!["192.168.20.100".into()],
    );
    let config = Talosconfig::generate(bundle, &input).unwrap();
    let yaml = config.to_yaml().unwrap();
    let value: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(value["context"], "homelab");
    let ctx = &value["contexts"]["homelab"];
    assert_eq!(ctx["endpoints"], serde_json::json!(["192.168.20.100"]));
    assert_eq!(ctx["nodes"], serde_json::json!(["192.168.20.100"]));
    let keys: Vec<&String> = ctx.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["endpoints", "nodes", "ca", "crt", "key"]);
    assert_eq!(unb64(ctx["ca"].as_str().unwrap()), bundle.certs.os.crt);
    assert!(unb64(ctx["key"].as_str().unwrap()).starts_with("-----BEGIN ED25519 PRIVATE KEY-----"));

    let crt = unb64(ctx["crt"].as_str().unwrap());
    let der = homelab_talos::pem::decode(&crt).unwrap().der.to_vec();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.subject().to_string(), "O=os:admin");
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.3.101.112"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let ca_der = homelab_talos::pem::decode(&bundle.certs.os.crt)
        .unwrap()
        .der
        .to_vec();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();

    let reread = Talosconfig::from_yaml(&yaml).unwrap();
    assert_eq!(reread, config);
    let expiry = reread.client_cert_expiry().unwrap();
    assert_eq!(
        (expiry - ::time::OffsetDateTime::now_utc()).whole_days(),
        364
    );
    assert!(!format!("{config:?}").contains("PRIVATE"));
}

fn write_kubeconfig(dir: &std::path::Path, server: &str) -> (Kubeconfig, std::path::PathBuf) {
    let config =
        Kubeconfig::generate_admin(generated_bundle(), "homelab", server, ADMIN_CERT_VALIDITY)
            .unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_yaml().unwrap().as_bytes()).unwrap();
    (config, path)
}

#[test]
fn kubectl_config_view_accepts_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let (config, path) = write_kubeconfig(dir.path(), "https://192.168.20.100:6443");
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&path)
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["current-context"], "admin@homelab");
    assert_eq!(
        view["clusters"][0]["cluster"]["server"],
        "https://192.168.20.100:6443"
    );
    assert_eq!(view["contexts"][0]["context"]["user"], "admin@homelab");
    assert_eq!(
        view["users"][0]["user"]["client-certificate-data"],
        config.users[0].user.client_certificate_data
    );

    let crt = unb64(&config.users[0].user.client_certificate_data);
    let info = pki::cert_info(&crt).unwrap();
    assert_eq!(info.subject, "O=system:masters, CN=admin");
    assert_eq!(info.organizations, ["system:masters"]);
    assert_eq!(config.client_cert_expiry().unwrap(), info.not_after);
    let der = homelab_talos::pem::decode(&crt).unwrap().der.to_vec();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let ca_der = homelab_talos::pem::decode(&generated_bundle().certs.k8s.crt)
        .unwrap()
        .der
        .to_vec();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .client_auth
    );
    assert_eq!(
        Kubeconfig::from_yaml(&config.to_yaml().unwrap()).unwrap(),
        config
    );
}

#[test]
fn kubectl_loads_the_client_certificate_and_key() {
    // A closed loopback port: kubectl must get as far as dialling, which it only does after loading the
    // client certificate and key (a bad key fails earlier with a TLS/PEM error).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = write_kubeconfig(dir.path(), &format!("https://127.0.0.1:{port}"));
    let out = Command::new("kubectl")
        .args(["get", "namespaces", "--request-timeout=5s", "--kubeconfig"])
        .arg(&path)
        .output()
        .expect("kubectl is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("connection refused"), "{stderr}");
}
