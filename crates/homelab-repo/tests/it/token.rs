//! The Proxmox token secret in `secrets.enc.yaml`.

use homelab_repo::{RepoError, SECRETS_FILE};
use secrecy::ExposeSecret as _;

use crate::support::TestRepo;

#[test]
fn token_is_read_from_a_file_encrypted_by_real_sops() {
    let t = TestRepo::new();
    std::fs::write(
        t.root().join(SECRETS_FILE),
        "# Proxmox\nproxmox:\n    token_secret: 6f1c2e2a-0d4b-4a53-9a0e-0c7f2b1d9e11\nother: kept\n",
    )
    .expect("write plaintext");
    let out = t.sops(&["-e", "-i", SECRETS_FILE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = t.repo().proxmox_token_secret_from_file().expect("token");
    assert_eq!(
        secret.expose_secret(),
        "6f1c2e2a-0d4b-4a53-9a0e-0c7f2b1d9e11"
    );
}

#[test]
fn missing_secrets_file_says_how_to_create_it() {
    let t = TestRepo::new();
    let err = t
        .repo()
        .proxmox_token_secret_from_file()
        .expect_err("missing");
    assert!(matches!(err, RepoError::SecretsFileMissing { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("homelabctl secrets set-proxmox-token"),
        "{msg}"
    );
    assert!(
        msg.contains("homelabctl sops edit secrets.enc.yaml"),
        "{msg}"
    );
    assert!(msg.contains("token_secret:"), "{msg}");
}

#[test]
fn file_without_the_key_says_which_key_is_missing() {
    let t = TestRepo::new();
    homelab_sops::encrypt_file(
        &t.root().join(SECRETS_FILE),
        b"proxmox:\n    other: x\n",
        t.root(),
    )
    .expect("encrypt");
    let err = t
        .repo()
        .proxmox_token_secret_from_file()
        .expect_err("no key");
    assert!(matches!(err, RepoError::TokenMissing { .. }));
    assert!(err.to_string().contains("proxmox.token_secret"));
}

#[test]
fn set_token_creates_the_file_then_updates_it_keeping_other_keys() {
    let t = TestRepo::new();
    let repo = t.repo();
    repo.set_proxmox_token_secret("first-secret\n")
        .expect("create");
    assert_eq!(
        repo.proxmox_token_secret_from_file()
            .expect("read")
            .expose_secret(),
        "first-secret"
    );
    let out = t.sops(&["-d", SECRETS_FILE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "proxmox:\n    token_secret: first-secret\n"
    );

    // Another key and a comment added by the user survive an update.
    std::fs::write(
        t.root().join(SECRETS_FILE),
        "# mine\nnas:\n    password: p\nproxmox:\n    token_secret: old\n",
    )
    .expect("write");
    let out = t.sops(&["-e", "-i", SECRETS_FILE]);
    assert!(out.status.success());
    repo.set_proxmox_token_secret("second-secret")
        .expect("update");
    let out = t.sops(&["-d", SECRETS_FILE]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# mine\nnas:\n    password: p\nproxmox:\n    token_secret: second-secret\n"
    );
    let raw = std::fs::read_to_string(t.root().join(SECRETS_FILE)).expect("read");
    assert!(!raw.contains("second-secret"));
}

#[test]
fn set_token_refuses_empty_and_multi_line_values() {
    let t = TestRepo::new();
    let repo = t.repo();
    assert!(matches!(
        repo.set_proxmox_token_secret("  \n"),
        Err(RepoError::TokenInvalid(_))
    ));
    assert!(matches!(
        repo.set_proxmox_token_secret("a\nb"),
        Err(RepoError::TokenInvalid(_))
    ));
    assert!(!t.root().join(SECRETS_FILE).exists());
}
