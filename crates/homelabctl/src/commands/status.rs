//! `homelabctl status`: a table of VM, Talos, etcd and Kubernetes health, read live.

use std::process::ExitCode;

use clap::Args;
use homelab_engine::flow::StatusRow;

use super::Global;
use super::provision::{self, BundlePolicy};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn run(global: &Global, _args: &StatusArgs) -> miette::Result<ExitCode> {
    let events = render::events::sink(global.output, render::stderr_color());
    let rows = provision::runtime()?.block_on(async {
        let wired = provision::wire(global, BundlePolicy::ReadOnly, &events).await?;
        Ok::<_, miette::Report>(wired.engine(events.clone()).status().await)
    })?;
    print_rows(global.output, &rows);
    Ok(if rows.iter().all(|r| r.healthy) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn print_rows(output: OutputFormat, rows: &[StatusRow]) {
    match output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default())
        }
        OutputFormat::Text => println!("{}", table(rows)),
    }
}

pub fn table(rows: &[StatusRow]) -> String {
    let width = |f: &dyn Fn(&StatusRow) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let (c, n) = (
        width(&|r| r.component.len()).max(9),
        width(&|r| r.name.len()).max(4),
    );
    let mut out = format!(
        "{:<c$}  {:<n$}  {:<6}  DETAIL\n",
        "COMPONENT", "NAME", "HEALTH"
    );
    for r in rows {
        let health = if r.healthy { "ok" } else { "DOWN" };
        out.push_str(&format!(
            "{:<c$}  {:<n$}  {health:<6}  {}\n",
            r.component, r.name, r.detail
        ));
    }
    out.trim_end().to_string()
}
