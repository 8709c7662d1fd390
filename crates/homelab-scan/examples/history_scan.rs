//! A history scan without the CLI around it, for profiling (`perf record`) the scan crate alone:
//! `history_scan REPO [GITLEAKS_TOML]` prints the findings as gitleaks-compatible JSON.

use homelab_scan::report::{Format, render};
use homelab_scan::{ScanRequest, Source, scan};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let root = args
        .next()
        .ok_or("usage: history_scan REPO [GITLEAKS_TOML]")?;
    let mut request = ScanRequest::tree(root);
    request.source = Source::History;
    request.config = args.next().map(Into::into);
    let outcome = scan(&request)?;
    println!(
        "{}",
        render(
            Format::Json,
            &outcome.findings,
            &outcome.config,
            outcome.scanned,
            outcome.accepted
        )
    );
    Ok(())
}
