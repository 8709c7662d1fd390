//! The built-in rules: every planted secret of this domain is found (in the tree and in the history),
//! SOPS-encrypted files from the real sops and a typical Flux tree stay quiet.

use std::collections::BTreeSet;
use std::path::Path;

use homelab_scan::{ScanRequest, Source, scan};

use crate::support::{B64, Gen, Planted, Repo, testdata};

fn findings(root: &Path, source: Source) -> BTreeSet<(String, String)> {
    let mut req = ScanRequest::tree(root);
    req.source = source;
    scan(&req)
        .expect("scan")
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.file.clone()))
        .collect()
}

/// Each planted file and the rule that must report it.
fn plant(repo: &Repo) -> Vec<(&'static str, &'static str)> {
    let p = Planted::new(21);
    let mut g = Gen::new(5);
    let cert = format!(
        "{}{}",
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
        g.text(B64, 200)
    );
    let ec_key = format!("{}{}", "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtF", g.text(B64, 160));
    let uuid2 = {
        let u = &p.proxmox_secret;
        format!("{}{}", &u[..30], "0a1b2c")
    };
    repo.write(
        ".age-key.txt",
        &format!(
            "# created: 2026-11-25T10:00:00Z\n# public key: age1qqqq\n{}\n",
            p.age
        ),
    );
    repo.write(
        "output/talosconfig",
        &format!(
            "context: homelab\ncontexts:\n    homelab:\n        endpoints:\n            - 192.168.20.100\n        ca: {cert}\n        crt: {cert}\n        key: {}\n",
            p.b64_ed25519_key
        ),
    );
    repo.write(
        "output/kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: admin@homelab\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {ec_key}\n"
        ),
    );
    repo.write(
        "talos/secrets.yaml",
        &format!(
            "cluster:\n    id: abc\nsecrets:\n    bootstraptoken: {}\n    secretboxencryptionsecret: {}\n",
            p.bootstrap,
            g.text(B64, 43) + "="
        ),
    );
    repo.write("terraform.tfvars", &format!("proxmox_endpoint = \"https://pve:8006\"\nproxmox_api_token = \"root@pam!terraform={uuid2}\"\n"));
    repo.write(
        "scripts/pve.sh",
        &format!(
            "curl -H \"Authorization: {}\" https://pve:8006/api2/json/version\n",
            p.proxmox_header
        ),
    );
    repo.write(
        ".env.local",
        &format!("PROXMOX_TOKEN_SECRET={}\n", p.proxmox_secret),
    );
    repo.write("talos/node.key", &p.pem);
    repo.write("ci/github.env", &format!("GH_TOKEN={}\n", p.github));
    repo.write("ci/gitlab.env", &format!("CI_TOKEN={}\n", p.gitlab));
    repo.write(
        "alerts/slack.yaml",
        &format!("slack:\n  token: {}\n", p.slack),
    );
    repo.write("backup/aws.env", &format!("AWS_ACCESS_KEY_ID={}\n", p.aws));
    repo.write(
        "apps/db.yaml",
        &format!("database:\n  db_password: \"{}\"\n", p.password),
    );
    vec![
        ("age-secret-key", ".age-key.txt"),
        ("talos-private-key", "output/talosconfig"),
        ("kubeconfig-client-key-data", "output/kubeconfig"),
        ("kubernetes-bootstrap-token", "talos/secrets.yaml"),
        ("talos-encryption-secret", "talos/secrets.yaml"),
        ("proxmox-api-token", "terraform.tfvars"),
        ("proxmox-api-token", "scripts/pve.sh"),
        ("proxmox-token-secret", ".env.local"),
        ("private-key", "talos/node.key"),
        ("github-pat", "ci/github.env"),
        ("gitlab-pat", "ci/gitlab.env"),
        ("slack-bot-token", "alerts/slack.yaml"),
        ("aws-access-token", "backup/aws.env"),
        ("generic-secret-assignment", "apps/db.yaml"),
    ]
}

#[test]
fn built_in_rules_find_every_planted_domain_secret_in_tree_and_history() {
    let repo = Repo::new();
    let expected: BTreeSet<(String, String)> = plant(&repo)
        .into_iter()
        .map(|(r, f)| (r.to_owned(), f.to_owned()))
        .collect();
    let tree = findings(repo.path(), Source::Tree);
    assert_eq!(tree, expected, "working tree");
    repo.commit_all("feat: oops");
    // Remove every file again: the history still holds them.
    for (_, f) in &expected {
        let _ = std::fs::remove_file(repo.path().join(f));
    }
    repo.commit_all("fix: remove secrets");
    assert!(findings(repo.path(), Source::Tree).is_empty());
    assert_eq!(findings(repo.path(), Source::History), expected, "history");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn sops_encrypted_files_are_never_findings() {
    let repo = Repo::new();
    copy_dir(&testdata("sops/enc"), &repo.path().join("secrets"));
    assert!(findings(repo.path(), Source::Tree).is_empty());
    repo.commit_all("feat: encrypted secrets");
    // An edit re-encrypts values and the MAC: the diff is SOPS content too.
    let basic = repo.path().join("secrets/basic.yaml");
    let text = std::fs::read_to_string(&basic).expect("read");
    std::fs::write(&basic, text.replace("type:str]", "type:str] ")).expect("write");
    repo.commit_all("chore: touch");
    assert!(findings(repo.path(), Source::History).is_empty());
}

#[test]
fn a_typical_flux_tree_is_quiet() {
    let repo = Repo::new();
    repo.write(
        ".sops.yaml",
        "creation_rules:\n  - path_regex: \\.enc\\.(json|yaml)$\n    age: age1hdh62dma0qs6quhew4amjj4g7vslgg56w8npv4sglxfnszqvcp6s7lc8uy\n",
    );
    repo.write(".gitignore", ".age-key.txt\n");
    repo.write("kubernetes/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - flux-system\n  - infrastructure\n  - apps\n");
    repo.write(
        "kubernetes/flux-system/gotk-sync.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m0s\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n  url: ssh://git@github.com/me/homelab\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  path: ./kubernetes\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: cluster-secrets\n",
    );
    repo.write(
        "kubernetes/infrastructure/cert-manager/issuer.yaml",
        "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: letsencrypt\nspec:\n  acme:\n    email: me@example.invalid\n    server: https://acme-v02.api.letsencrypt.org/directory\n    privateKeySecretRef:\n      name: letsencrypt-account-key\n    solvers:\n      - dns01:\n          cloudflare:\n            apiTokenSecretRef:\n              name: cloudflare-api-token\n              key: api-token\n",
    );
    repo.write(
        "kubernetes/apps/app/helmrelease.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app\nspec:\n  interval: 30m\n  chart:\n    spec:\n      chart: app\n      version: 1.2.3\n      sourceRef:\n        kind: HelmRepository\n        name: app\n  values:\n    auth:\n      existingSecret: app-credentials\n      passwordKey: admin-password\n    image:\n      digest: sha256:4d0b4f8d1c8f2e8f1b3f6c2f9a8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c\n    token: ${APP_TOKEN}\n",
    );
    repo.write(
        "homelab.yaml",
        "proxmox:\n  endpoint: https://192.168.20.10:8006\n  token_id: root@pam!homelabctl\n  node: pve\ncluster:\n  name: homelab\n  talos_version: v1.12.4\n",
    );
    copy_dir(
        &testdata("sops/enc/multi"),
        &repo.path().join("kubernetes/apps/app/secrets"),
    );
    assert_eq!(findings(repo.path(), Source::Tree), BTreeSet::new());
    repo.commit_all("feat: flux tree");
    assert_eq!(findings(repo.path(), Source::History), BTreeSet::new());
}

#[test]
fn a_repository_gitleaks_toml_extends_the_built_in_rules() {
    let repo = Repo::new();
    repo.write(
        ".gitleaks.toml",
        "[extend]\nuseDefault = true\ndisabledRules = [\"aws-access-token\"]\n\n[[rules]]\nid = \"lab-token\"\nregex = '''lab_[a-z0-9]{16}'''\nkeywords = [\"lab_\"]\n",
    );
    let p = Planted::new(3);
    repo.write(
        "a.env",
        &format!("X=lab_0123456789abcdef\nAWS={}\nAGE={}\n", p.aws, p.age),
    );
    let got = findings(repo.path(), Source::Tree);
    let want: BTreeSet<(String, String)> = [("lab-token", "a.env"), ("age-secret-key", "a.env")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn gitignored_files_are_not_scanned_but_no_git_scans_them() {
    let repo = Repo::new();
    repo.write(".gitignore", ".age-key.txt\n");
    repo.write(".age-key.txt", &format!("{}\n", Planted::new(4).age));
    assert!(findings(repo.path(), Source::Tree).is_empty());
    assert_eq!(findings(repo.path(), Source::Directory).len(), 1);
}

#[test]
fn baseline_accepts_known_findings() {
    let repo = Repo::new();
    repo.write("a.env", &format!("T={}\n", Planted::new(4).github));
    let baseline = repo.path().join("baseline.txt");
    std::fs::write(&baseline, "# accepted\na.env:github-pat:1\n").expect("write");
    let mut req = ScanRequest::tree(repo.path());
    req.baseline = Some(baseline);
    let outcome = scan(&req).expect("scan");
    assert!(outcome.findings.is_empty());
    assert_eq!(outcome.accepted, 1);
}

#[test]
fn every_secret_of_a_real_talosctl_bundle_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        testdata("talos-v1.12.4/generate/secrets/testdata/secrets.yaml"),
        dir.path().join("secrets.yaml"),
    )
    .expect("copy");
    let mut req = ScanRequest::tree(dir.path());
    req.source = Source::Directory;
    let lines: Vec<(String, usize)> = scan(&req)
        .expect("scan")
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.start_line))
        .collect();
    let want: Vec<(String, usize)> = [
        ("generic-secret-assignment", 3),
        ("kubernetes-bootstrap-token", 5),
        ("talos-encryption-secret", 6),
        ("kubernetes-bootstrap-token", 8),
        ("talos-private-key", 12),
        ("talos-private-key", 15),
        ("talos-private-key", 18),
        ("talos-private-key", 20),
        ("talos-private-key", 23),
    ]
    .iter()
    .map(|(r, l)| (r.to_string(), *l))
    .collect();
    assert_eq!(lines, want);
}
