//! `homelabctl status`: a table of VM, Talos, etcd, Kubernetes and (once bootstrapped) Flux health, read live.

use crate::ExitStatus;

use clap::Args;
use homelab_engine::flow::StatusRow;
use homelab_flux::KustomizationStatus;
use homelab_flux::cluster::ClusterError;
use homelab_kube::KubeClient;

use super::Global;
use super::provision::{self, BundlePolicy};
use crate::cli::OutputFormat;
use crate::render;

#[derive(Debug, Args)]
pub struct StatusArgs {}

pub fn run(global: &Global, _args: &StatusArgs) -> miette::Result<ExitStatus> {
    let events = render::events::sink(global.output, render::stderr_color());
    let rows = provision::runtime()?.block_on(async {
        let wired = provision::wire(global, BundlePolicy::ReadOnly, &events).await?;
        let (mut rows, kubeconfig) = wired.engine(events.clone()).status_with_kubeconfig().await;
        if let Some(kubeconfig) = kubeconfig {
            rows.extend(flux_rows(&kubeconfig).await);
        }
        Ok::<_, miette::Report>(rows)
    })?;
    print_rows(global.output, &rows)?;
    Ok(if rows.iter().all(|r| r.healthy) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// One row per Flux Kustomization in flux-system; none when Flux is not installed (its CRD is not served).
async fn flux_rows(kubeconfig: &[u8]) -> Vec<StatusRow> {
    let client = match std::str::from_utf8(kubeconfig)
        .map_err(|e| e.to_string())
        .and_then(|t| KubeClient::from_kubeconfig_yaml(t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            return vec![flux_row(
                "kustomizations",
                false,
                format!("unusable kubeconfig: {e}"),
            )];
        }
    };
    match homelab_flux::kustomization_status(&client).await {
        Ok(list) => list.iter().map(kustomization_row).collect(),
        Err(ClusterError::NotFound(_)) => Vec::new(),
        Err(e) => vec![flux_row(
            "kustomizations",
            false,
            format!("cannot list: {e}"),
        )],
    }
}

fn kustomization_row(k: &KustomizationStatus) -> StatusRow {
    let healthy = k.ready == Some(true) && !k.suspended;
    let mut detail = match k.ready {
        Some(true) => format!("Ready {}", k.revision.as_deref().unwrap_or_default()),
        Some(false) => format!(
            "not Ready: {} {}",
            k.reason.as_deref().unwrap_or_default(),
            k.message.as_deref().unwrap_or_default()
        ),
        None => "not reconciled yet".to_string(),
    };
    if k.suspended {
        detail.push_str(" (suspended)");
    }
    flux_row(&k.name, healthy, detail.trim().to_string())
}

fn flux_row(name: &str, healthy: bool, detail: String) -> StatusRow {
    StatusRow {
        component: "flux".into(),
        name: name.into(),
        healthy,
        detail,
    }
}

pub fn print_rows(output: OutputFormat, rows: &[StatusRow]) -> Result<(), crate::out::WriteError> {
    match output {
        OutputFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(rows).unwrap_or_default())
        }
        OutputFormat::Text => outln!("{}", table(rows)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(ready: Option<bool>, suspended: bool) -> KustomizationStatus {
        KustomizationStatus {
            name: "infrastructure".into(),
            ready,
            reason: Some("BuildFailed".into()),
            message: Some("kustomize build failed".into()),
            revision: Some("main@sha1:abc".into()),
            suspended,
        }
    }

    #[test]
    fn a_kustomization_is_healthy_only_when_ready_and_not_suspended() {
        let ready = kustomization_row(&ks(Some(true), false));
        assert!(
            ready.healthy && ready.detail == "Ready main@sha1:abc",
            "{ready:?}"
        );
        let failed = kustomization_row(&ks(Some(false), false));
        assert!(!failed.healthy);
        assert_eq!(
            failed.detail,
            "not Ready: BuildFailed kustomize build failed"
        );
        assert!(!kustomization_row(&ks(Some(true), true)).healthy);
        assert_eq!(
            kustomization_row(&ks(None, false)).detail,
            "not reconciled yet"
        );
    }

    fn row(component: &str, name: &str, healthy: bool, detail: &str) -> StatusRow {
        StatusRow {
            component: component.into(),
            name: name.into(),
            healthy,
            detail: detail.into(),
        }
    }

    /// The status table and its JSON as users read them (a change of layout shows as a snapshot diff).
    #[test]
    fn status_output_in_text_and_json() {
        let rows = vec![
            row("vm", "talos-cp-01", true, "running (id 100, 8192 MiB)"),
            row("vm", "talos-w-01", false, "absent (id 110)"),
            row("talos", "talos-cp-01", true, "v1.12.4 on 192.168.20.100"),
            row("services", "talos-cp-01", false, "etcd Running (unhealthy)"),
            row("etcd", "members", true, "1 member: talos-cp-01"),
            row(
                "kubernetes",
                "api",
                true,
                "https://192.168.20.100:6443 ready",
            ),
            kustomization_row(&ks(Some(true), false)),
            kustomization_row(&ks(Some(false), false)),
            kustomization_row(&ks(None, true)),
        ];
        insta::assert_snapshot!("status_text", table(&rows));
        insta::assert_snapshot!(
            "status_json",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    }
}
