//! `status`: the health of every VM, Talos node (running against wanted version), its services, etcd and
//! Kubernetes, read live. Never acts.

use zeroize::Zeroizing;

use crate::desired;
use crate::flow::Engine;
use crate::ports::{Hypervisor, ImageFactory, KubeApi, ServiceHealth, TalosApi};

/// One line of `homelabctl status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusRow {
    pub component: String,
    pub name: String,
    pub healthy: bool,
    pub detail: String,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// Health of every VM, Talos node, etcd and Kubernetes, read live. Never acts.
    pub async fn status(&self) -> Vec<StatusRow> {
        self.status_with_kubeconfig().await.0
    }

    /// [`Self::status`], plus the kubeconfig it read when the API server answered, so a caller looking
    /// further into the cluster (Flux readiness) does not fetch it again.
    pub async fn status_with_kubeconfig(&self) -> (Vec<StatusRow>, Option<Zeroizing<Vec<u8>>>) {
        let row = |component: &str, name: &str, healthy: bool, detail: String| StatusRow {
            component: component.into(),
            name: name.into(),
            healthy,
            detail,
        };
        let mut rows = Vec::new();
        let wanted = self.config.image.talos_version.with_v();
        for node in &self.config.nodes {
            let vm = self.hypervisor.vm(&node.proxmox_node, node.vm_id).await;
            rows.push(match &vm {
                Ok(Some(l)) => row(
                    "vm",
                    &node.name,
                    l.running,
                    format!(
                        "{} {} (id {}, {} cores, {} MiB)",
                        if l.running { "running" } else { "stopped" },
                        node.proxmox_node,
                        node.vm_id,
                        l.cores.unwrap_or(0),
                        l.memory_mib.unwrap_or(0)
                    ),
                ),
                Ok(None) => row(
                    "vm",
                    &node.name,
                    false,
                    format!("absent (id {})", node.vm_id),
                ),
                Err(e) => row("vm", &node.name, false, format!("unknown: {}", e.message)),
            });
            let at = desired::installed_address(node);
            rows.push(match self.talos.installed_version(at).await {
                Ok(Some(v)) if v == wanted => row(
                    "talos",
                    &node.name,
                    true,
                    format!("{v} on {at} (wanted {wanted})"),
                ),
                // Running and answering, so healthy; the version still to reach is a plan, not a fault.
                Ok(Some(v)) => row(
                    "talos",
                    &node.name,
                    true,
                    format!(
                        "{v} on {at}, wanted {wanted}: `homelabctl apply` upgrades it in place"
                    ),
                ),
                _ => row(
                    "talos",
                    &node.name,
                    false,
                    format!("not answering with mutual TLS on {at}"),
                ),
            });
            if let Ok(services) = self.talos.services(at).await {
                rows.push(services_row(&node.name, &services));
            }
        }
        if desired::bootstrap_node(self.config).is_none() {
            return (rows, None);
        }
        for node in desired::control_planes(self.config) {
            let at = desired::installed_address(node);
            let members = self.talos.etcd_members(at).await.unwrap_or_default();
            let member = members.iter().any(|m| !m.learner && m.name == node.name);
            let learning = members.iter().any(|m| m.learner && m.name == node.name);
            let names: Vec<String> = members
                .iter()
                .map(|m| match (m.name.as_str(), m.learner) {
                    ("", _) => "(unnamed learner)".to_string(),
                    (n, true) => format!("{n} (learner)"),
                    (n, false) => n.to_string(),
                })
                .collect();
            rows.push(row(
                "etcd",
                &node.name,
                member,
                if members.is_empty() {
                    "not running (not bootstrapped or not joined yet)".into()
                } else {
                    format!(
                        "{}{} member(s): {}",
                        match (member, learning) {
                            (true, _) => "",
                            (false, true) => "a learner, not voting yet; ",
                            (false, false) => "not a member; ",
                        },
                        members.len(),
                        names.join(", ")
                    )
                },
            ));
        }
        let kubeconfig = self.kubeconfig().await.ok().map(Zeroizing::new);
        let api = match &kubeconfig {
            Some(k) => self.kube.api_ready(k).await.unwrap_or(false),
            None => false,
        };
        rows.push(row(
            "kubernetes",
            "api",
            api,
            if api {
                self.config.cluster.endpoint.clone()
            } else {
                format!("{} not ready", self.config.cluster.endpoint)
            },
        ));
        for node in &self.config.nodes {
            let ready = match &kubeconfig {
                Some(k) if api => self.kube.node_ready(k, &node.name).await.unwrap_or(false),
                _ => false,
            };
            rows.push(row(
                "kubernetes",
                &node.name,
                ready,
                if ready {
                    "Ready".into()
                } else {
                    "not Ready".into()
                },
            ));
        }
        (rows, kubeconfig.filter(|_| api))
    }
}

/// One status row for a node's Talos services: healthy when every one runs and passes its health check;
/// the detail names the ones that do not.
fn services_row(node: &str, services: &[ServiceHealth]) -> StatusRow {
    let failing: Vec<String> = services
        .iter()
        .filter(|s| !s.ok())
        .map(|s| match s.healthy {
            Some(false) => format!("{} {} (unhealthy)", s.id, s.state),
            _ => format!("{} {}", s.id, s.state),
        })
        .collect();
    StatusRow {
        component: "services".into(),
        name: node.into(),
        healthy: failing.is_empty() && !services.is_empty(),
        detail: if failing.is_empty() {
            format!(
                "{} running: {}",
                services.len(),
                services
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("not running: {}", failing.join(", "))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::EtcdMember;
    use crate::steps::bootstrap::not_voting;

    fn service(id: &str, state: &str, healthy: Option<bool>) -> ServiceHealth {
        ServiceHealth {
            id: id.into(),
            state: state.into(),
            healthy,
        }
    }

    #[test]
    fn learners_are_not_joined_until_promoted() {
        let source = "proxmox: {endpoint: 'https://pve:8006', token_id: 'a@pve!b'}\nnodes:\n\
          - {name: cp-1, vm_id: 101, network: {mac: 'BC:24:11:CA:FE:01', address: 10.0.0.11/24, gateway: 10.0.0.1}}\n\
          - {name: cp-2, vm_id: 102, network: {mac: 'BC:24:11:CA:FE:02', address: 10.0.0.12/24, gateway: 10.0.0.1}}\n\
          - {name: cp-3, vm_id: 103, network: {mac: 'BC:24:11:CA:FE:03', address: 10.0.0.13/24, gateway: 10.0.0.1}}\n";
        let config = match homelab_config::parse(source, None) {
            Ok(p) => p.config,
            Err(e) => panic!("{e:?}"),
        };
        let learner = |name: &str| EtcdMember {
            name: name.into(),
            learner: true,
        };
        let members = [EtcdMember::voter("cp-1"), learner("cp-2"), learner("")];
        assert_eq!(
            not_voting(config.nodes.iter(), &members),
            ["cp-2", "cp-3"],
            "a named learner and an unnamed one are both still joining"
        );
        let promoted = [
            EtcdMember::voter("cp-1"),
            EtcdMember::voter("cp-2"),
            EtcdMember::voter("cp-3"),
        ];
        assert!(not_voting(config.nodes.iter(), &promoted).is_empty());
    }

    #[test]
    fn a_service_not_running_or_failing_its_check_makes_the_row_unhealthy_and_is_named() {
        let row = services_row(
            "cp",
            &[
                service("apid", "Running", Some(true)),
                service("etcd", "Preparing", None),
                service("kubelet", "Running", Some(false)),
                service("machined", "Running", None),
            ],
        );
        assert!(!row.healthy);
        assert_eq!(
            row.detail,
            "not running: etcd Preparing, kubelet Running (unhealthy)"
        );
        let ok = services_row("cp", &[service("apid", "Running", None)]);
        assert!(ok.healthy && ok.detail == "1 running: apid", "{ok:?}");
        assert!(!services_row("cp", &[]).healthy);
    }
}
