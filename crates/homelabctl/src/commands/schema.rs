//! `homelabctl schema`: the JSON Schema of homelab.yaml.

use crate::ExitStatus;

use homelab_fs::Mode;
use miette::IntoDiagnostic;

use crate::cli::SchemaArgs;

pub fn run(args: &SchemaArgs) -> miette::Result<ExitStatus> {
    let text = schema_text();
    match &args.write {
        Some(path) => {
            homelab_fs::write(path, text.as_bytes(), Mode::Exact(0o644)).into_diagnostic()?
        }
        None => outln!("{text}")?,
    }
    Ok(ExitStatus::Success)
}

pub fn schema_text() -> String {
    serde_json::to_string_pretty(&homelab_config::schema::json_schema()).unwrap_or_default()
}
