//! The Kubernetes step: the API server answering at the control-plane endpoint, the workers installed (their
//! apid certificate comes through that endpoint), and every node Ready. Also the kubeconfig every later
//! step and `status` read Kubernetes with.

use std::collections::BTreeMap;

use homelab_config::Role;
use zeroize::Zeroizing;

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, PortError, TalosApi};
use crate::steps::machine_config::Installing;

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// The Kubernetes step: the API server, the workers' installs, every node Ready.
    pub(crate) async fn apply_kubernetes(&self, run: &mut Run<'_>) -> Result<(), EngineError> {
        let kubeconfig = self.ensure_kubernetes(&mut run.installing).await?;
        run.kubeconfig = Some(kubeconfig);
        Ok(())
    }

    pub(crate) async fn kubernetes_ready(&self) -> bool {
        let Ok(kubeconfig) = self.kubeconfig().await else {
            return false;
        };
        if !self.kube.api_ready(&kubeconfig).await.unwrap_or(false) {
            return false;
        }
        for node in &self.config.nodes {
            if !self
                .kube
                .node_ready(&kubeconfig, &node.name)
                .await
                .unwrap_or(false)
            {
                return false;
            }
        }
        true
    }

    /// The kubeconfig from the first control plane that hands one out (any of them can).
    pub(crate) async fn kubeconfig(&self) -> Result<Vec<u8>, PortError> {
        let mut first_error = None;
        for node in desired::control_planes(self.config) {
            match self
                .talos
                .kubeconfig(desired::installed_address(node))
                .await
            {
                Ok(k) => return Ok(k),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| PortError::permanent("no control-plane node")))
    }

    /// Waits for the API at the control-plane endpoint, then for the workers' apid (their certificates come
    /// from trustd through that endpoint), then for every node to be Ready.
    async fn ensure_kubernetes(
        &self,
        installing: &mut BTreeMap<String, Installing>,
    ) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let since = self.started("kubernetes", "wait");
        let endpoint = &self.config.cluster.endpoint;
        let kubeconfig = Zeroizing::new(
            self.awaited(
                "kubernetes",
                "the kubeconfig",
                "a control plane generates it once installed",
                self.timeouts.kubernetes,
                || async {
                    self.kubeconfig()
                        .await
                        .map(Some)
                        .or_else(|e| if e.transient { Ok(None) } else { Err(e) })
                },
            )
            .await?,
        );
        self.awaited(
            "kubernetes",
            &format!("the API server at {endpoint}"),
            "the endpoint answers once etcd runs (a VIP is elected through etcd) and kube-apiserver started",
            self.timeouts.kubernetes,
            || async { Ok(self.kube.api_ready(&kubeconfig).await?.then_some(())) },
        )
        .await?;
        for node in self
            .config
            .nodes
            .iter()
            .filter(|n| n.role != Role::Controlplane)
        {
            self.await_installed(
                node,
                installing.remove(&node.name),
                &format!(
                    "a worker; its apid certificate comes from trustd reached through {endpoint}, which answered \
                     only now"
                ),
            )
            .await?;
        }
        for node in &self.config.nodes {
            self.await_ready(
                "kubernetes",
                &kubeconfig,
                &node.name,
                "its kubelet registers through the endpoint, then the CNI must come up on it",
            )
            .await?;
        }
        self.finished("kubernetes", "wait", since);
        Ok(kubeconfig)
    }

    /// Waits until the Node `name` is Ready; `why` says what it waits on.
    pub(crate) async fn await_ready(
        &self,
        resource: &str,
        kubeconfig: &[u8],
        name: &str,
        why: &str,
    ) -> Result<(), EngineError> {
        self.awaited(
            resource,
            &format!("node {name} to be Ready"),
            why,
            self.timeouts.kubernetes,
            || async { Ok(self.kube.node_ready(kubeconfig, name).await?.then_some(())) },
        )
        .await
    }
}
