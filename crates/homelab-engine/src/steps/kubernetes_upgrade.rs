//! The Kubernetes upgrade step: a change of `cluster.kubernetes_version` plans as one step (never as
//! in-place machine-config updates that would restart every component at once), refused at plan time when
//! it skips a minor or leaves the range of the Talos the nodes will run ([`crate::versions`]). Apply runs
//! [`crate::kubernetes_upgrade::upgrade_kubernetes`] (talosctl `upgrade-k8s`: static pods per control
//! plane in turn, kube-proxy, then each kubelet), after every Talos upgrade of the same plan, and records
//! the configs it left on the nodes in the journal.
//!
//! Until that step ran, the machine-config steps render with the Kubernetes version the cluster runs
//! ([`Engine::render_running`]), so they diff only what else changed.

use homelab_config::Config;
use zeroize::Zeroizing;

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::journal::{self, AppliedConfig};
use crate::kubernetes_upgrade::{
    KubernetesUpgrade, StagedRenderer, StagedVersions, UpgradeNode, UpgradeTimeouts,
    oldest_running, upgrade_kubernetes,
};
use crate::plan::{Action, FieldChange, ResourceChange, Step};
use crate::ports::{ErrorKind, Hypervisor, ImageFactory, KubeApi, TalosApi};
use crate::versions::{self, Version};

/// The step's address.
pub const ADDRESS: &str = "kubernetes_upgrade";

fn same(a: &Version, b: &Version) -> bool {
    (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch)
}

/// The Kubernetes version a plan's upgrade step goes from (what the cluster ran when planned).
pub(crate) fn planned_from(step: &Step) -> Option<Version> {
    step.preconditions
        .iter()
        .find(|p| p.fact == "kubernetes_version")
        .and_then(|p| p.value.parse().ok())
}

/// [`StagedRenderer`] over the engine's renderer.
struct Staged<'e> {
    renderer: &'e dyn crate::desired::ConfigRenderer,
    config: &'e Config,
    installer_image: String,
}

impl StagedRenderer for Staged<'_> {
    fn render_staged(
        &self,
        node: &str,
        versions: &StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        self.renderer
            .render_staged(self.config, node, &self.installer_image, versions)
    }
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// The oldest Kubernetes version any component of the cluster runs, when it answers.
    pub(crate) async fn kubernetes_running(&self) -> Option<Version> {
        let kubeconfig = self.kubeconfig().await.ok()?;
        oldest_running(self.kube, &kubeconfig).await.ok().flatten()
    }

    /// `node`'s machine config naming `installer_image`, with the Kubernetes version the cluster runs when
    /// that is not homelab.yaml's yet (the upgrade step moves it).
    pub(crate) fn render_running(
        &self,
        node: &homelab_config::Node,
        installer_image: &str,
        kubernetes: Option<&Version>,
    ) -> Result<crate::desired::RenderedNode, EngineError> {
        match kubernetes {
            Some(k) if !same(k, &self.config.cluster.kubernetes_version) => {
                let mut config = self.config.clone();
                config.cluster.kubernetes_version = k.clone();
                self.renderer
                    .render(&config, node, installer_image)
                    .map_err(|message| EngineError::Render {
                        node: node.name.clone(),
                        message,
                    })
            }
            _ => self.render(node, installer_image),
        }
    }

    /// The Kubernetes upgrade step's diff: none while the cluster runs homelab.yaml's version (or does not
    /// answer yet: a new cluster starts on it). Refused when the path skips a minor or leaves the range of
    /// the Talos homelab.yaml wants (every Talos upgrade of the plan runs first).
    pub(crate) fn plan_kubernetes_upgrade(
        &self,
        running: Option<&Version>,
    ) -> Result<Option<Step>, EngineError> {
        let Some(running) = running else {
            return Ok(None);
        };
        let wanted = &self.config.cluster.kubernetes_version;
        if same(running, wanted) {
            return Ok(None);
        }
        let talos = self.config.image.talos_version.clone();
        versions::kubernetes_upgrade_path(running, wanted, &[talos]).map_err(|refusal| {
            EngineError::Refused {
                resource: ADDRESS.into(),
                message: refusal.to_string(),
                hint: "change cluster.kubernetes_version as the message says; nothing was touched"
                    .into(),
            }
        })?;
        let mut step = ResourceChange::new(ADDRESS, Action::Upgrade).because(format!(
            "{running} → {wanted}: control-plane components one node at a time, then each kubelet"
        ));
        step.fields.push(FieldChange::new(
            "kubernetes_version",
            Some(running.to_string()),
            Some(wanted.to_string()),
        ));
        Ok(Some(
            step.requires("kubernetes_version", running.to_string()),
        ))
    }

    /// The Kubernetes upgrade step: talosctl `upgrade-k8s`'s procedure, then the journal records the
    /// configs it left (homelab.yaml's, rendered for the new version).
    pub(crate) async fn apply_kubernetes_upgrade(
        &self,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let wanted = self.config.cluster.kubernetes_version.clone();
        let from = planned_from(planned).unwrap_or_else(|| wanted.clone());
        if let Some(now) = self.kubernetes_running().await
            && !same(&now, &from)
            && !same(&now, &wanted)
        {
            return Err(EngineError::Stale {
                resource: ADDRESS.into(),
                message: format!("kubernetes_version was {from} when planned, is {now} now"),
            });
        }
        let schematic = match &run.image {
            Some(i) => i.schematic.clone(),
            None => self.image_facts().await?.schematic,
        };
        let installer_image = self.factory.installer_image(&schematic);
        let kubeconfig = match &run.kubeconfig {
            Some(k) => k.clone(),
            None => Zeroizing::new(self.port(ADDRESS, self.kubeconfig().await)?),
        };
        let nodes: Vec<UpgradeNode> = desired::config_order(self.config)
            .into_iter()
            .map(|n| UpgradeNode {
                name: n.name.clone(),
                control_plane: n.role == homelab_config::Role::Controlplane,
                apid: desired::installed_address(n),
            })
            .collect();
        let staged = Staged {
            renderer: self.renderer,
            config: self.config,
            installer_image: installer_image.clone(),
        };
        let upgrade = KubernetesUpgrade {
            nodes: &nodes,
            kubeconfig: &kubeconfig,
            from,
            to: wanted,
            timeouts: UpgradeTimeouts {
                static_pod: self.timeouts.kubernetes,
                kubelet: self.timeouts.kubernetes,
                poll: self.timeouts.poll,
            },
        };
        upgrade_kubernetes(self.talos, self.kube, &staged, &upgrade, &self.events)
            .await
            .map_err(|e| EngineError::Step {
                resource: ADDRESS.into(),
                message: e.to_string(),
                kind: ErrorKind::Transient,
            })?;
        for node in desired::config_order(self.config) {
            let rendered = self.render(node, &installer_image)?;
            run.journal.machine_configs.insert(
                node.name.clone(),
                AppliedConfig {
                    sha256: journal::digest(&rendered.config),
                    redacted: rendered.redacted.clone(),
                    installer_image: Some(installer_image.clone()),
                },
            );
        }
        let _ = run.journal.save(&self.state_dir);
        run.kubernetes_running = None;
        Ok(())
    }
}
