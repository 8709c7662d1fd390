//! Differential tests against the real gitleaks 8.30.1 with its default configuration: the same findings
//! (rule, file, line, commit) on a repository with planted secrets in its files and its history.

use std::collections::BTreeSet;

use homelab_scan::{Finding, ScanRequest, Source, scan};

use crate::support::{Planted, Repo, testdata};

type Key = (String, String, usize, String);

/// A repository whose history adds, edits, renames, deletes and branches secrets.
fn planted_repo() -> Repo {
    let p = Planted::new(7);
    let repo = Repo::new();
    repo.write("README.md", "# homelab\n\nNothing secret here.\n");
    repo.write(
        "config/app.env",
        &format!(
            "LOG_LEVEL=debug\nGITHUB_TOKEN={}\nAWS_ACCESS_KEY_ID={}\n",
            p.github, p.aws
        ),
    );
    repo.write(
        "keys/age.txt",
        &format!("# created: 2026-01-01\n{}\n", p.age),
    );
    repo.commit_all("feat: initial");

    repo.write(
        "config/app.env",
        &format!(
            "LOG_LEVEL=debug\nGITHUB_TOKEN={}\nSLACK_BOT_TOKEN={}\nAWS_ACCESS_KEY_ID={}\n",
            p.github, p.slack, p.aws
        ),
    );
    repo.write("talos/node.key", &p.pem);
    repo.commit_all("feat: slack and a key");

    repo.git(&["rm", "-q", "keys/age.txt"]);
    let allowed = Planted::new(8).github;
    repo.write(
        "notes.txt",
        &format!(
            "gitlab: {}\nfixture: {allowed} # gitleaks:allow\n",
            p.gitlab
        ),
    );
    repo.commit_all("chore: notes");

    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("branch.txt", &format!("db_password = \"{}\"\n", p.password));
    repo.commit_all("feat: branch secret");
    repo.git(&["checkout", "-q", "main"]);

    repo.git(&["mv", "config/app.env", "config/prod.env"]);
    let mut env = std::fs::read_to_string(repo.path().join("config/prod.env")).expect("read");
    env.push_str(&format!("LATE_TOKEN={}\n", Planted::new(9).github));
    repo.write("config/prod.env", &env);
    repo.commit_all("refactor: rename env");

    let q = Planted::new(10);
    repo.write(
        "cluster/apps/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ndata:\n  token: {}\n",
            q.b64_ed25519_key
        ),
    );
    repo.write(
        "ünïcode dir/crlf.txt",
        &format!("line one\r\napi_key = \"{}\"\r\n", q.password),
    );
    repo.write("no-newline.txt", &format!("first\n{}", q.gitlab));
    repo.write(
        "docs/keys.md",
        &format!("Proxmox: {}\n\nTalos key:\n\n{}", q.proxmox_header, q.pem),
    );
    repo.commit_all("feat: odd files");
    repo
}

fn gitleaks(repo: &Repo, mode: &str) -> BTreeSet<Key> {
    let config = testdata("gitleaks/gitleaks-default.toml");
    let findings =
        crate::support::gitleaks_report(repo.path(), mode, &config, Some(repo.home.path()));
    findings
        .iter()
        .map(|f| {
            (
                f["RuleID"].as_str().unwrap_or_default().to_owned(),
                f["File"].as_str().unwrap_or_default().to_owned(),
                f["StartLine"].as_u64().unwrap_or_default() as usize,
                f["Commit"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Our findings with gitleaks' default configuration (`threads` 0: one per CPU).
fn our_findings(repo: &Repo, source: Source, threads: usize) -> Vec<Finding> {
    let mut req = ScanRequest::tree(repo.path());
    req.source = source;
    req.config = Some(testdata("gitleaks/gitleaks-default.toml"));
    req.options.threads = threads;
    scan(&req).expect("scan").findings
}

fn keys(findings: &[Finding]) -> BTreeSet<Key> {
    findings
        .iter()
        .map(|f| {
            (
                f.rule_id.clone(),
                f.file.clone(),
                f.start_line,
                f.commit_sha().to_owned(),
            )
        })
        .collect()
}

fn ours(repo: &Repo, source: Source) -> BTreeSet<Key> {
    keys(&our_findings(repo, source, 0))
}

#[test]
fn history_findings_equal_gitleaks_git() {
    let repo = planted_repo();
    let theirs = gitleaks(&repo, "git");
    let mine = ours(&repo, Source::History);
    assert!(
        theirs.len() >= 8,
        "the planted repository should produce findings: {theirs:#?}"
    );
    assert_eq!(mine, theirs);
}

#[test]
fn directory_findings_equal_gitleaks_dir() {
    let repo = planted_repo();
    let theirs = gitleaks(&repo, "dir");
    let mine = ours(&repo, Source::Directory);
    assert!(theirs.len() >= 5, "{theirs:#?}");
    assert_eq!(mine, theirs);
}

/// A history long enough to be shared out between several threads, with a side branch and a merge.
fn long_history(commits: usize) -> Repo {
    use std::io::Write;
    let repo = Repo::new();
    let mut stream = Vec::new();
    let mut files: Vec<Vec<String>> = vec![Vec::new(); 12];
    let mut g = crate::support::Gen::new(99);
    for c in 0..commits {
        let branch = if c % 50 == 25 { "side" } else { "main" };
        let f = c % files.len();
        let line = match c % 37 {
            0 => format!(
                "token = \"{}_{}\"",
                "ghp",
                g.text(crate::support::ALNUM, 36)
            ),
            11 => format!("aws_key: {}{}", "AKIA", g.text(crate::support::UPPER32, 16)),
            _ => format!("setting_{c}: value-{}", g.text("abcdefghij", 6)),
        };
        let at = (c * 7) % (files[f].len() + 1);
        files[f].insert(at, line);
        let body = files[f].join("\n") + "\n";
        write!(stream, "commit refs/heads/{branch}\ncommitter T <t@example.invalid> {} +0000\ndata 12\nchore: step\n", 1_700_000_000 + c).expect("write");
        if branch == "side" && c == 25 {
            writeln!(stream, "from refs/heads/main").expect("write");
        } else if branch == "main" && c % 50 == 30 {
            writeln!(stream, "merge refs/heads/side").expect("write");
        }
        write!(
            stream,
            "M 644 inline dir{}/file{f}.yaml\ndata {}\n{body}\n",
            f % 3,
            body.len()
        )
        .expect("write");
    }
    let mut child = std::process::Command::new("git")
        .current_dir(repo.path())
        .env("HOME", repo.home.path())
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("stream");
    assert!(child.wait().expect("wait").success());
    repo.git(&["checkout", "-q", "main"]);
    repo
}

/// The history scan resolves pack deltas itself: a history repacked from scratch (git picks new delta bases,
/// chains up to depth 50 in both directions) with loose commits on top must still read exactly as gitleaks
/// (through git) reads it.
#[test]
fn a_repacked_history_with_loose_commits_on_top_equals_gitleaks() {
    let repo = long_history(400);
    repo.git(&[
        "repack",
        "-a",
        "-d",
        "-f",
        "-q",
        "--depth=50",
        "--window=50",
    ]);
    let packs = std::fs::read_dir(repo.path().join(".git/objects/pack"))
        .expect("pack dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert_eq!(packs, 1, "the premise: the history is in one pack");
    let mut body = std::fs::read_to_string(repo.path().join("dir0/file0.yaml")).expect("file0");
    body.push_str(&format!("token = \"{}_{}\"\n", "ghp", "Q".repeat(36)));
    repo.write("dir0/file0.yaml", &body);
    repo.commit_all("loose: a token on top");
    repo.write("dir1/new.yaml", "aws_key: AKIAQWERTYUIOPASDFGH\n");
    repo.commit_all("loose: a new file");
    let theirs = gitleaks(&repo, "git");
    assert!(theirs.len() > 15, "{}", theirs.len());
    assert_eq!(ours(&repo, Source::History), theirs);
}

#[test]
fn a_long_history_scanned_on_several_threads_equals_gitleaks_and_one_thread() {
    let repo = long_history(900);
    let theirs = gitleaks(&repo, "git");
    let parallel = ours(&repo, Source::History);
    let single = keys(&our_findings(&repo, Source::History, 1));
    assert!(theirs.len() > 30, "{}", theirs.len());
    assert_eq!(single, theirs);
    assert_eq!(parallel, theirs);
}

/// Every finding as rule, file, line, and its commit's id, author, email, date and message, as gitleaks
/// prints them.
fn gitleaks_commit_details(repo: &Repo) -> BTreeSet<[String; 8]> {
    let config = testdata("gitleaks/gitleaks-default.toml");
    let findings =
        crate::support::gitleaks_report(repo.path(), "git", &config, Some(repo.home.path()));
    let field = |f: &serde_json::Value, k: &str| f[k].as_str().unwrap_or_default().to_owned();
    findings
        .iter()
        .map(|f| {
            [
                field(f, "RuleID"),
                field(f, "File"),
                f["StartLine"].to_string(),
                field(f, "Commit"),
                field(f, "Author"),
                field(f, "Email"),
                field(f, "Date"),
                field(f, "Message"),
            ]
        })
        .collect()
}

fn our_commit_details(repo: &Repo) -> BTreeSet<[String; 8]> {
    our_findings(repo, Source::History, 0)
        .iter()
        .map(|f| {
            let c = f
                .commit
                .as_deref()
                .expect("a history finding has its commit");
            [
                f.rule_id.clone(),
                f.file.clone(),
                f.start_line.to_string(),
                c.sha.clone(),
                c.author.clone(),
                c.email.clone(),
                c.date.clone(),
                c.message.clone(),
            ]
        })
        .collect()
}

/// Trees and parents come from git's commit-graph when it lists a commit, and commit details are read only
/// for commits with findings: with no graph, with one, and with commits and a merge written after it, the
/// details of every finding's commit are gitleaks'.
#[test]
fn commit_details_equal_gitleaks_with_and_without_a_commit_graph() {
    let repo = planted_repo();
    assert!(
        !repo.path().join(".git/objects/info/commit-graph").exists(),
        "the premise: no commit-graph yet"
    );
    let theirs = gitleaks_commit_details(&repo);
    assert!(theirs.len() >= 3, "{theirs:#?}");
    assert!(
        theirs
            .iter()
            .all(|d| !d[4].is_empty() && !d[6].is_empty() && !d[7].is_empty())
    );
    assert_eq!(our_commit_details(&repo), theirs);

    repo.git(&["commit-graph", "write", "--reachable"]);
    assert!(repo.path().join(".git/objects/info/commit-graph").exists());
    assert_eq!(our_commit_details(&repo), theirs);

    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write(
        "side.env",
        "GITHUB_TOKEN=ghp_Zx9Kq2Lm4Np6Rs8Tv0Wy1Ab3Cd5Ef7Gh9Ij2Kl\n",
    );
    repo.commit_all("side: a token on a branch");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("main.env", "AWS_KEY=AKIAZXCVBNMASDFGHJKL\n");
    repo.commit_all("main: a key after the graph");
    repo.git(&["merge", "-q", "--no-edit", "side"]);
    let theirs = gitleaks_commit_details(&repo);
    assert!(
        theirs.iter().any(|d| d[7].starts_with("side:")),
        "{theirs:#?}"
    );
    assert!(
        theirs.iter().any(|d| d[7].starts_with("main:")),
        "{theirs:#?}"
    );
    assert_eq!(our_commit_details(&repo), theirs);
}
