//! A temporary homelab repository with its own age identity and `.sops.yaml`, and helpers to run the peers.

use std::path::{Path, PathBuf};
use std::process::Command;

use age::secrecy::ExposeSecret as _;
use homelab_repo::Repo;
use homelab_sops::Identities;

pub const HOMELAB_YAML: &str = "proxmox: {endpoint: 'https://127.0.0.1:8006', token_id: 'homelabctl@pve!provision'}\n\
nodes:\n  - {name: talos-cp-01, vm_id: 100, network: {mac: 'BC:24:11:CA:FE:01', address: 127.0.20.100/24, gateway: 127.0.20.1}}\n";

pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub recipient: String,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = age::x25519::Identity::generate();
        let recipient = id.to_public().to_string();
        let key_file = dir.path().join(".age-key.txt");
        std::fs::write(
            &key_file,
            format!(
                "# public key: {recipient}\n{}\n",
                id.to_string().expose_secret()
            ),
        )
        .expect("write key");
        std::fs::write(
            dir.path().join(".sops.yaml"),
            homelab_config::template::sops_yaml(std::slice::from_ref(&recipient)),
        )
        .expect("write .sops.yaml");
        std::fs::write(dir.path().join("homelab.yaml"), HOMELAB_YAML).expect("write homelab.yaml");
        TestRepo {
            dir,
            key_file,
            recipient,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The repository with exactly its own identity (nothing from the environment).
    pub fn repo(&self) -> Repo {
        let text = std::fs::read_to_string(&self.key_file).expect("read key");
        let ids = Identities::from_text(&text).expect("identity");
        Repo::with_identities(self.root(), ids)
    }

    pub fn config(&self) -> homelab_config::Config {
        homelab_config::load(&self.root().join("homelab.yaml"))
            .expect("valid homelab.yaml")
            .config
    }

    /// Runs the real sops with this repository's identity only.
    pub fn sops(&self, args: &[&str]) -> std::process::Output {
        Command::new("sops")
            .args(args)
            .current_dir(self.root())
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .env("HOME", self.root())
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run sops (installed by .ci/install-peers)")
    }
}

/// The repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Upstream Talos's test bundle (`talosctl gen secrets` layout); importing it is much faster than generating.
pub fn fixture_bundle_yaml() -> String {
    std::fs::read_to_string(testdata().join("talos-v1.12.4/generate/secrets/testdata/secrets.yaml"))
        .expect("the Talos test bundle")
}

impl TestRepo {
    /// The repository with the fixture bundle imported into `talos-secrets.enc.yaml`.
    pub fn with_bundle() -> (TestRepo, Repo, homelab_talos::secrets::SecretsBundle) {
        let t = TestRepo::new();
        let repo = t.repo();
        let bundle = repo
            .import_talos_bundle(&fixture_bundle_yaml(), false)
            .expect("import");
        (t, repo, bundle)
    }
}
