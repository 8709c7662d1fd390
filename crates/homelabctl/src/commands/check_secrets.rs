//! The secret scan as one of `homelabctl check`'s checkers: homelab-scan over the files `check` lists, its findings
//! reported in check's terms (file, line, rule) with the secret never shown.

use homelab_check::{Checker, Context, Finding, Report};

/// `check`'s `secret-scan` checker (full runs only: the pre-commit hook scans the staged content itself).
pub struct SecretScan;

impl Checker for SecretScan {
    fn id(&self) -> &'static str {
        "secret-scan"
    }

    fn fast(&self) -> bool {
        false
    }

    fn run(&self, cx: &Context<'_>, report: &mut Report) {
        // Exactly the files the other checks saw (git's list, or `.gitignore` honoured outside git).
        let files: Vec<String> = cx.repo.files.iter().map(|f| f.rel.clone()).collect();
        match homelab_scan::scan_listed_files(&cx.repo.root, &files) {
            Ok(findings) => {
                for f in findings {
                    report.findings.push(
                        Finding::error(self.id(), f.file.clone(), f.start_line, format!("{}: {}", f.rule_id, f.description))
                            .with_hint(format!(
                                "remove and rotate the secret (encrypt it with `homelabctl sops`), or accept it with a \
                                 `homelabctl:allow` comment on the line or `{}` in .gitleaksignore",
                                f.fingerprint()
                            )),
                    );
                }
            }
            Err(e) => report
                .findings
                .push(Finding::error(self.id(), "", 0, e.to_string()).with_hint(e.hint())),
        }
    }
}
