//! The bootstrap and etcd steps: etcd bootstrapped once, on the first control plane, as soon as it is
//! installed (never a second time: that would start a second cluster), then every other control plane
//! voting in it (they join as learners through the control-plane endpoint).

use std::time::Duration;

use homelab_config::Node;

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::plan::{Action, ResourceChange, Step};
use crate::ports::{
    Bootstrapped, ErrorKind, EtcdMember, Hypervisor, ImageFactory, KubeApi, PortError, TalosApi,
};

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// The bootstrap, etcd and Kubernetes steps' diffs: whether etcd runs, whether every control plane
    /// votes in it, whether Kubernetes is Ready. `installed` names the nodes answering installed.
    pub(crate) async fn plan_cluster(&self, installed: &[String]) -> Vec<Step> {
        let mut steps = Vec::new();
        let Some(first) = desired::bootstrap_node(self.config) else {
            return steps;
        };
        let etcd = self
            .etcd_cluster(
                desired::control_planes(self.config).filter(|n| installed.contains(&n.name)),
            )
            .await;
        let bootstrapped = etcd.is_some();
        let mut change = ResourceChange::new(
            "bootstrap",
            if bootstrapped {
                Action::NoChange
            } else {
                Action::Create
            },
        );
        if !bootstrapped {
            change = change.because(format!("bootstrap etcd on {}", first.name));
        }
        steps.push(change.requires("etcd_running", bootstrapped.to_string()));
        if desired::control_planes(self.config).count() > 1 {
            let members = etcd.map(|(_, m)| m).unwrap_or_default();
            let missing = self.missing_members(&members);
            let mut change = ResourceChange::new(
                "etcd",
                if missing.is_empty() {
                    Action::NoChange
                } else {
                    Action::Create
                },
            );
            if !missing.is_empty() {
                change = change.because(format!("wait for {} to join etcd", missing.join(", ")));
            }
            steps.push(change);
        }
        let ready = bootstrapped && self.kubernetes_ready().await;
        let mut change = ResourceChange::new(
            "kubernetes",
            if ready {
                Action::NoChange
            } else {
                Action::Create
            },
        );
        if !ready {
            change = change.because("wait for the API server and every node to be Ready");
        }
        steps.push(change);
        steps
    }

    /// The bootstrap step: waits for the first control plane's install, then bootstraps etcd on it unless
    /// etcd runs anywhere (observed again here: a second bootstrap would split the cluster).
    pub(crate) async fn apply_bootstrap(&self, run: &mut Run<'_>) -> Result<(), EngineError> {
        let first = desired::bootstrap_node(self.config).ok_or_else(|| EngineError::Step {
            resource: "bootstrap".into(),
            message: "no control-plane node".into(),
            kind: ErrorKind::Invalid,
        })?;
        // etcd is bootstrapped as soon as the first control plane is installed: nothing else can run
        // before it (the endpoint, the other control planes' etcd and every worker's certificate wait on it).
        self.await_installed(
            first,
            run.installing.remove(&first.name),
            "the first control plane; etcd is bootstrapped on it as soon as it answers (a Talos install \
             pulls the installer image and writes the disk: minutes on real hardware)",
        )
        .await?;
        self.ensure_bootstrap(first).await
    }

    /// The etcd step: waits for the other control planes' installs, then for each to vote in etcd.
    pub(crate) async fn apply_etcd(&self, run: &mut Run<'_>) -> Result<(), EngineError> {
        let first = desired::bootstrap_node(self.config).map(|n| n.name.clone());
        for node in desired::control_planes(self.config).filter(|n| Some(&n.name) != first.as_ref())
        {
            self.await_installed(
                node,
                run.installing.remove(&node.name),
                "a control plane; it joins etcd through the control-plane endpoint once installed",
            )
            .await?;
        }
        self.ensure_etcd_members().await
    }

    /// The etcd members as the first of `among` that runs etcd reports them, with that node;
    /// None when none of them runs etcd (not bootstrapped yet: the adapter bounds Talos' blocking answer).
    pub(crate) async fn etcd_cluster<'n>(
        &self,
        among: impl Iterator<Item = &'n Node>,
    ) -> Option<(&'n Node, Vec<EtcdMember>)> {
        for node in among {
            let members = self
                .talos
                .etcd_members(desired::installed_address(node))
                .await
                .unwrap_or_default();
            if !members.is_empty() {
                return Some((node, members));
            }
        }
        None
    }

    /// The etcd members as any control plane reports them (empty before the bootstrap).
    pub(crate) async fn members(&self) -> Vec<EtcdMember> {
        self.etcd_cluster(desired::control_planes(self.config))
            .await
            .map(|(_, m)| m)
            .unwrap_or_default()
    }

    /// The control planes (by name = hostname) that are not voting members: a learner has not joined yet
    /// (it does not vote, and Talos may still fail to promote it).
    pub(crate) fn missing_members(&self, members: &[EtcdMember]) -> Vec<String> {
        not_voting(desired::control_planes(self.config), members)
    }

    /// How long Bootstrap may keep answering "not yet": `cluster.bootstrap_timeout`, else the engine default.
    fn bootstrap_budget(&self) -> Duration {
        self.config
            .cluster
            .bootstrap_timeout_secs
            .map_or(self.timeouts.bootstrap, Duration::from_secs)
    }

    /// Bootstraps etcd on the first control plane unless etcd already runs on any control plane:
    /// a second bootstrap would start a second etcd cluster (split brain); the others join. Talos refuses
    /// the bootstrap until CRI is up and the time is synced; that is retried within the bootstrap budget.
    async fn ensure_bootstrap(&self, first: &Node) -> Result<(), EngineError> {
        let at = desired::installed_address(first);
        if let Some((node, _)) = self
            .etcd_cluster(desired::control_planes(self.config))
            .await
        {
            if node.name != first.name {
                self.events.info(
                    "bootstrap",
                    format!(
                        "etcd already runs on {}; {} joins it instead of bootstrapping",
                        node.name, first.name
                    ),
                );
            }
            return Ok(());
        }
        let since = self.started("bootstrap", "bootstrap");
        let budget = self.bootstrap_budget();
        let r = self
            .waited(
                "bootstrap",
                &format!("Talos on {} to accept the bootstrap of etcd", first.name),
                "Talos accepts it only once CRI is up and the node's time is synced over NTP (a minute or \
                 two after the install; never if NTP is unreachable)",
                budget,
                || async { self.talos.bootstrap(at).await.map(Some) },
            )
            .await;
        let done = r.map_err(|e| EngineError::Refused {
            resource: "bootstrap".into(),
            message: e.message,
            hint: format!(
                "check that {} reaches its NTP servers; to wait longer than {}s set cluster.bootstrap_timeout \
                 (seconds) in homelab.yaml",
                first.name,
                budget.as_secs()
            ),
        })?;
        match done {
            Bootstrapped::Now => self
                .events
                .info("bootstrap", format!("etcd bootstrapped on {}", first.name)),
            Bootstrapped::Already => self
                .events
                .info("bootstrap", "etcd was already bootstrapped"),
        }
        self.finished("bootstrap", "bootstrap", since);
        Ok(())
    }

    /// With several control planes, waits until every one of them is a voting etcd member (they join through
    /// the control-plane endpoint once the bootstrap node serves it, as learners first).
    /// With several control planes, waits until every one of them is a voting etcd member (they join through
    /// the control-plane endpoint once the bootstrap node serves it, as learners first).
    async fn ensure_etcd_members(&self) -> Result<(), EngineError> {
        if desired::control_planes(self.config).count() < 2 {
            return Ok(());
        }
        if self.missing_members(&self.members().await).is_empty() {
            return Ok(());
        }
        let since = self.started("etcd", "join");
        self.awaited(
            "etcd",
            "every control plane to join etcd as a voting member",
            "each joins through the control-plane endpoint once etcd runs, as a learner first; Talos promotes \
             it once it caught up with the leader",
            self.timeouts.kubernetes,
            || async {
                let members = self.members().await;
                let missing = self.missing_members(&members);
                if missing.is_empty() {
                    return Ok(Some(()));
                }
                let learners: Vec<&str> = members
                    .iter()
                    .filter(|m| m.learner)
                    .map(|m| if m.name.is_empty() { "(unnamed)" } else { m.name.as_str() })
                    .collect();
                // Named in the timeout error if they never join.
                Err(PortError::transient(if learners.is_empty() {
                    format!("not members yet: {}", missing.join(", "))
                } else {
                    format!(
                        "not voting members yet: {} (learners: {})",
                        missing.join(", "),
                        learners.join(", ")
                    )
                }))
            },
        )
        .await?;
        self.events.info(
            "etcd",
            format!(
                "{} members: {}",
                desired::control_planes(self.config).count(),
                desired::control_planes(self.config)
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        self.finished("etcd", "join", since);
        Ok(())
    }
}

/// The nodes (by name = hostname) that are not voting etcd members: a learner has not joined yet (it does not
/// vote, and an unnamed one cannot even be told apart).
pub(crate) fn not_voting<'n>(
    nodes: impl Iterator<Item = &'n Node>,
    members: &[EtcdMember],
) -> Vec<String> {
    nodes
        .filter(|n| !members.iter().any(|m| !m.learner && m.name == n.name))
        .map(|n| n.name.clone())
        .collect()
}
