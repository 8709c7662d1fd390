//! `validate`, `init` and `schema` as a user runs them.

use predicates::prelude::*;

use super::{homelabctl, workspace_root};

#[test]
fn validate_accepts_the_examples_with_exit_zero_and_only_the_ha_placement_warning() {
    homelabctl()
        .args(["validate", "--config"])
        .arg(workspace_root().join("examples/m710q/homelab.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("is valid (0 warning(s))"));
    // The HA example keeps its three control planes on one Proxmox host, and validate says what that costs.
    homelabctl()
        .args(["validate", "--config"])
        .arg(workspace_root().join("examples/ha/homelab.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("is valid (1 warning(s))"))
        .stderr(predicate::str::contains(
            "share the Proxmox host `pve`: losing that host loses etcd quorum",
        ));
}

#[test]
fn validate_reports_all_errors_with_file_line_column_and_exit_one() {
    let fixture = workspace_root()
        .join("crates/homelab-config/tests/fixtures/invalid/gateway-outside-subnet.yaml");
    homelabctl()
        .args(["validate", "--config"])
        .arg(&fixture)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "gateway-outside-subnet.yaml:23:16",
        ))
        .stderr(predicate::str::contains(
            "help: the gateway must be reachable",
        ))
        .stderr(predicate::str::contains("      gateway: 192.168.30.1"));
}

#[test]
fn validate_json_output_lists_diagnostics() {
    let fixture =
        workspace_root().join("crates/homelab-config/tests/fixtures/invalid/unknown-key-typo.yaml");
    let out = homelabctl()
        .args(["validate", "--output", "json", "--config"])
        .arg(&fixture)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["span"]["line"], 3);
    assert_eq!(v["diagnostics"][0]["hint"], "did you mean `node`?");
}

#[test]
fn warnings_pass_unless_strict() {
    let fixture = workspace_root()
        .join("crates/homelab-config/tests/fixtures/invalid/tls-insecure-warning.yaml");
    homelabctl()
        .args(["validate", "--config"])
        .arg(&fixture)
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: TLS verification"));
    homelabctl()
        .args(["validate", "--strict", "--config"])
        .arg(&fixture)
        .assert()
        .code(1);
}

#[test]
fn bad_input_never_panics_or_prints_a_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("garbage.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x9f, b':', b'\n']).expect("write");
    let cases = [
        binary,
        dir.path().to_path_buf(),
        dir.path().join("missing.yaml"),
    ];
    for case in cases {
        homelabctl()
            .env("RUST_BACKTRACE", "1")
            .args(["validate", "--config"])
            .arg(&case)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("panicked").not())
            .stderr(predicate::str::contains("stack backtrace").not());
    }
}

#[test]
fn init_writes_a_repository_that_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    for file in [
        "homelab.yaml",
        ".sops.yaml",
        ".gitignore",
        ".age-key.txt",
        "homelab.schema.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let workflow =
        std::fs::read_to_string(dir.path().join(".github/workflows/check.yml")).expect("workflow");
    assert!(
        workflow.contains("homelabctl check"),
        "the CI workflow runs the checks"
    );
    let homelab = std::fs::read_to_string(dir.path().join("homelab.yaml")).expect("read");
    assert!(homelab.starts_with("# yaml-language-server: $schema=./homelab.schema.json"));
    homelabctl()
        .args(["validate", "--strict", "--config"])
        .arg(dir.path().join("homelab.yaml"))
        .assert()
        .success();
    let key = std::fs::read_to_string(dir.path().join(".age-key.txt")).expect("key");
    let public = key
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line");
    let sops = std::fs::read_to_string(dir.path().join(".sops.yaml")).expect("sops");
    assert!(sops.contains(public) && sops.contains(r"\.enc\.(json|yaml)$"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".age-key.txt"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(dir.path().join(".gitignore"))
            .expect("gitignore")
            .contains(".age-key.txt")
    );
}

#[test]
fn init_into_a_non_empty_directory_leaves_existing_files_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("homelab.yaml"), "mine: true\n").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "keep me\n").expect("write");
    homelabctl()
        .arg("init")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("refusing to overwrite"))
        .stderr(predicate::str::contains("nothing was written"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("homelab.yaml")).expect("read"),
        "mine: true\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).expect("read"),
        "keep me\n"
    );
    assert!(
        !dir.path().join(".sops.yaml").exists(),
        "no partial scaffold"
    );

    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(other.path().join("notes.txt"), "keep me\n").expect("write");
    homelabctl()
        .arg("init")
        .arg(other.path())
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(other.path().join("notes.txt")).expect("read"),
        "keep me\n"
    );
}

#[test]
fn init_force_overwrites_but_never_replaces_the_age_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    homelabctl().arg("init").arg(dir.path()).assert().success();
    let key_before = std::fs::read(dir.path().join(".age-key.txt")).expect("key");
    std::fs::write(dir.path().join("homelab.yaml"), "broken: [\n").expect("write");
    homelabctl()
        .args(["init", "--force"])
        .arg(dir.path())
        .assert()
        .success();
    assert_eq!(
        std::fs::read(dir.path().join(".age-key.txt")).expect("key"),
        key_before
    );
    homelabctl()
        .args(["validate", "--config"])
        .arg(dir.path().join("homelab.yaml"))
        .assert()
        .success();
}

#[test]
fn init_uses_given_age_recipients_and_rejects_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    homelabctl()
        .args(["init", "--age-recipient", recipient])
        .arg(dir.path())
        .assert()
        .success();
    assert!(!dir.path().join(".age-key.txt").exists());
    assert!(
        std::fs::read_to_string(dir.path().join(".sops.yaml"))
            .expect("read")
            .contains(recipient)
    );
    let other = tempfile::tempdir().expect("tempdir");
    homelabctl()
        .args(["init", "--age-recipient", "age1nope"])
        .arg(other.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid --age-recipient"));
}

#[test]
fn schema_prints_a_json_schema_naming_every_section() {
    let out = homelabctl()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    for section in ["proxmox", "image", "cluster", "nodes", "gitops"] {
        assert!(v["properties"][section].is_object(), "{section}");
    }
}

#[test]
fn every_command_has_useful_help() {
    for command in ["validate", "init", "schema"] {
        homelabctl()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: homelabctl"));
    }
}

#[test]
fn fmt_check_reports_and_fmt_rewrites_keeping_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("homelab.yaml");
    let example = std::fs::read_to_string(workspace_root().join("examples/m710q/homelab.yaml"))
        .expect("read");
    let messy = example
        .replace("\n  node: pve\n", "\n  node: pve   \n")
        .replace("\n    - siderolabs/", "\n        - siderolabs/");
    std::fs::write(&file, &messy).expect("write");
    homelabctl()
        .args(["fmt", "--check"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not formatted"));
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        messy,
        "--check writes nothing"
    );
    homelabctl().arg("fmt").arg(&file).assert().success();
    assert_eq!(std::fs::read_to_string(&file).expect("read"), example);
    homelabctl()
        .args(["fmt", "--check"])
        .arg(&file)
        .assert()
        .success();
}

#[test]
fn demo_provisions_a_node_against_the_simulators_and_reports_it_healthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("homelab");
    let out = homelabctl()
        .args(["demo", "--keep"])
        .arg(&repo)
        .timeout(std::time::Duration::from_secs(240))
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("kubernetes  talos-cp-01  ok      Ready"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(
            "config applied in maintenance mode at 127.0.20.200:50000 (from the guest agent)"
        ),
        "{stderr}"
    );
    for file in [
        "homelab.yaml",
        ".sops.yaml",
        "secrets.enc.yaml",
        "talos-secrets.enc.yaml",
    ] {
        assert!(repo.join(file).is_file(), "{file}");
    }
    let secrets = std::fs::read_to_string(repo.join("talos-secrets.enc.yaml")).expect("read");
    assert!(
        secrets.contains("ENC[AES256_GCM,") && !secrets.contains("PRIVATE KEY"),
        "the bundle is stored encrypted"
    );
    assert!(
        !stderr.contains("PRIVATE KEY") && !stdout.contains("PRIVATE KEY"),
        "no key material in the output"
    );
}
