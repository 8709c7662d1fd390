//! talosconfig/kubeconfig: exported encrypted (real sops decrypts them), decrypted 0600 and gitignored,
//! stable across runs so git stays clean.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use homelab_repo::{OutputName, Written};
use homelab_talos::kubeconfig::Kubeconfig;
use homelab_talos::talosconfig::Talosconfig;

use crate::support::TestRepo;

#[test]
fn export_is_decrypted_by_real_sops_to_exactly_the_outputs() {
    let (t, repo, bundle) = TestRepo::with_bundle();
    let outputs = repo.outputs(&t.config(), &bundle).expect("outputs");
    let files = repo.export_outputs(&outputs).expect("export");
    assert!(files.iter().all(|f| f.written == Written::Created));
    for name in OutputName::ALL {
        let rel = format!("output/{}.enc.yaml", name.as_str());
        let raw = std::fs::read_to_string(t.root().join(&rel)).expect("exported");
        assert!(raw.contains("ENC[AES256_GCM"), "{rel} is encrypted");
        let out = t.sops(&["-d", &rel]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).expect("utf8"),
            outputs.get(name)
        );
    }
    let tc = Talosconfig::from_yaml(outputs.get(OutputName::Talosconfig)).expect("talosconfig");
    let ctx = tc.current().expect("context");
    assert_eq!(tc.context, "homelab");
    assert_eq!(ctx.endpoints, vec!["127.0.20.100".to_string()]);
    assert_eq!(ctx.nodes, vec!["127.0.20.100".to_string()]);
    let kc = Kubeconfig::from_yaml(outputs.get(OutputName::Kubeconfig)).expect("kubeconfig");
    assert_eq!(kc.clusters[0].cluster.server, "https://127.0.20.100:6443");
}

#[test]
fn second_export_leaves_the_files_byte_for_byte_unchanged() {
    let (t, repo, bundle) = TestRepo::with_bundle();
    let first = repo.outputs(&t.config(), &bundle).expect("outputs");
    repo.export_outputs(&first).expect("export");
    let before: Vec<Vec<u8>> = OutputName::ALL
        .iter()
        .map(|n| std::fs::read(n.exported_path(t.root())).expect("read"))
        .collect();
    let second = repo.outputs(&t.config(), &bundle).expect("outputs again");
    for name in OutputName::ALL {
        assert_eq!(first.get(name), second.get(name), "reused, not regenerated");
    }
    let files = repo.export_outputs(&second).expect("export again");
    assert!(
        files.iter().all(|f| f.written == Written::Unchanged),
        "{files:?}"
    );
    let after: Vec<Vec<u8>> = OutputName::ALL
        .iter()
        .map(|n| std::fs::read(n.exported_path(t.root())).expect("read"))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn outputs_are_regenerated_when_the_cluster_endpoint_changes() {
    let (t, repo, bundle) = TestRepo::with_bundle();
    let first = repo.outputs(&t.config(), &bundle).expect("outputs");
    repo.export_outputs(&first).expect("export");
    let mut config = t.config();
    config.cluster.endpoint = "https://127.0.20.200:6443".into();
    let second = repo.outputs(&config, &bundle).expect("outputs");
    let kc = Kubeconfig::from_yaml(second.get(OutputName::Kubeconfig)).expect("kubeconfig");
    assert_eq!(kc.clusters[0].cluster.server, "https://127.0.20.200:6443");
    let files = repo.export_outputs(&second).expect("export");
    let kube = files
        .iter()
        .find(|f| f.name == OutputName::Kubeconfig)
        .expect("kube");
    assert_eq!(kube.written, Written::Updated);
    let talos = files
        .iter()
        .find(|f| f.name == OutputName::Talosconfig)
        .expect("talos");
    assert_eq!(
        talos.written,
        Written::Unchanged,
        "talosconfig does not depend on the endpoint"
    );
}

#[test]
fn decrypt_writes_private_gitignored_files_kubectl_accepts() {
    let (t, repo, bundle) = TestRepo::with_bundle();
    std::fs::write(t.root().join(".gitignore"), "target/\n").expect("gitignore");
    let outputs = repo.outputs(&t.config(), &bundle).expect("outputs");
    let (files, added) = repo.decrypt_outputs(&outputs).expect("decrypt");
    assert_eq!(
        added,
        vec!["/talosconfig".to_string(), "/kubeconfig".to_string()]
    );
    for f in &files {
        assert_eq!(f.written, Written::Created);
        let mode = std::fs::metadata(&f.path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.path.display());
        assert_eq!(
            std::fs::read_to_string(&f.path).expect("read"),
            outputs.get(f.name)
        );
    }
    let gitignore = std::fs::read_to_string(t.root().join(".gitignore")).expect("read");
    assert!(gitignore.starts_with("target/\n"));
    assert!(gitignore.lines().any(|l| l == "/talosconfig"));
    assert!(gitignore.lines().any(|l| l == "/kubeconfig"));

    // git agrees both files are ignored.
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(t.root())
            .output()
            .expect("git")
    };
    assert!(git(&["init", "-q"]).status.success());
    let ignored = git(&["check-ignore", "talosconfig", "kubeconfig"]);
    assert_eq!(
        String::from_utf8_lossy(&ignored.stdout),
        "talosconfig\nkubeconfig\n"
    );

    let view = Command::new("kubectl")
        .args([
            "config",
            "view",
            "--kubeconfig",
            "kubeconfig",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
        .current_dir(t.root())
        .output()
        .expect("kubectl");
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&view.stdout),
        "https://127.0.20.100:6443"
    );

    // Decrypting again reuses the files: nothing changes, a loosened mode is tightened.
    std::fs::set_permissions(
        t.root().join("kubeconfig"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let again = repo.outputs(&t.config(), &bundle).expect("outputs");
    let (files, added) = repo.decrypt_outputs(&again).expect("decrypt again");
    assert!(added.is_empty());
    assert!(files.iter().all(|f| f.written == Written::Unchanged));
    let mode = std::fs::metadata(t.root().join("kubeconfig"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn outputs_from_a_different_bundle_are_not_reused() {
    let (t, repo, bundle) = TestRepo::with_bundle();
    let outputs = repo.outputs(&t.config(), &bundle).expect("outputs");
    repo.export_outputs(&outputs).expect("export");
    let other = repo.talos_bundle_or_create(false).map(|_| ()).err();
    assert!(other.is_none(), "the imported bundle is reused");
    let other = homelab_talos::secrets::SecretsBundle::generate().expect("generate");
    let fresh = repo.outputs(&t.config(), &other).expect("outputs");
    for name in OutputName::ALL {
        assert_ne!(outputs.get(name), fresh.get(name));
    }
}
