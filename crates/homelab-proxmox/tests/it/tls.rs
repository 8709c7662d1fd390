//! TLS trust modes against the simulator's self-signed cluster CA and node certificate.

use homelab_proxmox::{Error, Fingerprint, INSECURE_WARNING, TlsTrust};
use homelab_sim::proxmox::SimOptions;

use crate::support::{client_for, recorder, start};

#[tokio::test]
async fn the_cluster_ca_file_is_trusted() {
    let (sim, _) = start(SimOptions::fast()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("pve-root-ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("write ca");
    let client = client_for(&sim, TlsTrust::CaFile(ca));
    assert_eq!(
        client.version().await.expect("verified by CA").release,
        "9.1"
    );
}

#[tokio::test]
async fn a_wrong_fingerprint_is_refused_and_says_so() {
    let (sim, _) = start(SimOptions::fast()).await;
    let wrong = Fingerprint::parse(&["AB"; 32].join(":")).expect("fp");
    let client = client_for(&sim, TlsTrust::Fingerprint(wrong));
    let err = client.version().await.expect_err("mismatch");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("fingerprint mismatch"), "{err}");
}

#[tokio::test]
async fn system_roots_do_not_trust_a_self_signed_node() {
    let (sim, _) = start(SimOptions::fast()).await;
    let client = client_for(&sim, TlsTrust::SystemRoots);
    let err = client.version().await.expect_err("untrusted");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn insecure_works_only_with_a_warning() {
    let (sim, _) = start(SimOptions::fast()).await;
    let client = client_for(&sim, TlsTrust::Insecure);
    assert_eq!(client.tls_warning(), Some(INSECURE_WARNING));
    let (client, events) = recorder(client);
    client.version().await.expect("insecure connects");
    let events = events.lock().expect("lock").clone();
    assert!(
        matches!(&events[0], homelab_proxmox::ClientEvent::Warning { message } if message == INSECURE_WARNING)
    );
}
