//! The provisioning flow's spine: the engine and its error type, [`Engine::plan`] (observe and diff into an
//! ordered [`Plan`] of steps, acting on nothing) and [`Engine::apply`] (execute exactly those steps, each
//! re-checking what it relies on just before acting). Each kind of step owns its diff and its action in
//! [`crate::steps`]; `destroy` and `status` live beside this module.
//!
//! The order follows what Talos (v1.12) needs, not what is convenient: every node gets its config first (the
//! installs then run side by side); etcd is bootstrapped as soon as the first control plane is installed;
//! the other control planes join etcd (as learners first) through the control-plane endpoint; the endpoint
//! answers once etcd runs (a Layer 2 VIP is elected through etcd); and only then can a worker's apid come up,
//! because its certificate comes from trustd reached through that endpoint (`secrets/api.go`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use homelab_config::{Config, Node};
use zeroize::Zeroizing;

use crate::desired::{self, ConfigRenderer, RenderedNode};
use crate::events::{Event, EventSink};
use crate::journal::Journal;
use crate::plan::Plan;
use crate::ports::{ErrorKind, Hypervisor, ImageFactory, KubeApi, PortError, TalosApi};
use crate::steps::image::ImageFacts;
use crate::steps::machine_config::Installing;
use crate::wait;

pub use crate::status::StatusRow;
pub use crate::steps::vm::vm_change;

/// How long each kind of wait may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until a fresh node answers in maintenance mode (at its reserved address or where the agent says).
    pub agent: Duration,
    pub install: Duration,
    pub kubernetes: Duration,
    /// How long draining a node may wait for its evictions (PodDisruptionBudgets answering 429) and for
    /// the evicted pods to be gone (`kubectl drain --timeout`).
    pub drain: Duration,
    /// How long Bootstrap may keep answering "not yet" (CRI, time sync); `cluster.bootstrap_timeout` in
    /// homelab.yaml overrides it.
    pub bootstrap: Duration,
    pub poll: Duration,
    pub retries: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            agent: Duration::from_secs(300),
            install: Duration::from_secs(900),
            kubernetes: Duration::from_secs(900),
            drain: Duration::from_secs(900),
            bootstrap: Duration::from_secs(600),
            poll: Duration::from_secs(5),
            retries: 5,
        }
    }
}

impl Timeouts {
    /// Budgets for real hardware with a person watching: the defaults, polled every 10 s.
    pub fn realistic() -> Self {
        Self {
            poll: Duration::from_secs(10),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{resource}: {message}")]
    Step {
        resource: String,
        message: String,
        /// What kind of failure the port met (decides whether running again can help).
        kind: ErrorKind,
    },
    #[error("{resource}: {message}")]
    Refused {
        resource: String,
        message: String,
        hint: String,
    },
    #[error("cannot render the machine config of {node}: {message}")]
    Render { node: String, message: String },
    /// What a step relies on changed between plan and apply.
    #[error("{resource}: the world changed since the plan ({message}); nothing more was done")]
    Stale { resource: String, message: String },
}

impl EngineError {
    pub(crate) fn step(resource: &str, e: PortError) -> Self {
        Self::Step {
            resource: resource.to_string(),
            message: e.message,
            kind: e.kind,
        }
    }

    /// What kind of failure this is: a refusal is a conflict the operator resolves, a render failure comes
    /// from homelab.yaml.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Step { kind, .. } => *kind,
            EngineError::Refused { .. } => ErrorKind::Conflict,
            EngineError::Render { .. } => ErrorKind::Invalid,
            EngineError::Stale { .. } => ErrorKind::Conflict,
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&str> {
        match self {
            EngineError::Refused { hint, .. } => Some(hint),
            EngineError::Stale { .. } => {
                Some("run `homelabctl plan` again, review it, then apply the new plan")
            }
            _ => None,
        }
    }
}

/// Everything the flow works with.
pub struct Engine<'a, H, F, T, K> {
    pub config: &'a Config,
    pub hypervisor: &'a H,
    pub factory: &'a F,
    pub talos: &'a T,
    pub kube: &'a K,
    pub renderer: &'a dyn ConfigRenderer,
    /// `.homelab/` of the repository.
    pub state_dir: PathBuf,
    pub events: EventSink,
    pub timeouts: Timeouts,
}

/// What `converge` hands back for outputs.
pub struct Converged {
    pub vm_ids: Vec<(String, u32)>,
    pub kubeconfig: Zeroizing<Vec<u8>>,
}

/// Takes an encrypted etcd snapshot before an upgrade and says where it went. The engine does not know
/// the repository or its recipients; the binary does (`homelabctl etcd snapshot` is the same thing).
pub trait Snapshotter: Send + Sync {
    fn take(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>>;
}

/// How apply may act.
#[derive(Default, Clone, Copy)]
pub struct ApplyOptions<'s> {
    /// Replacing VMs (losing their disks) is allowed.
    pub allow_replace: bool,
    /// Removing nodes homelab.yaml no longer names (drain, reset, VM deleted) is allowed.
    pub allow_remove: bool,
    /// Takes the snapshot an upgrade starts with; without one, an upgrade is refused.
    pub snapshot: Option<&'s dyn Snapshotter>,
}

/// What apply carries from one step to the next.
pub(crate) struct Run<'s> {
    pub(crate) options: ApplyOptions<'s>,
    pub(crate) journal: Journal,
    pub(crate) image: Option<ImageFacts>,
    /// Nodes whose config was applied in maintenance mode and that are installing.
    pub(crate) installing: BTreeMap<String, Installing>,
    pub(crate) kubeconfig: Option<Zeroizing<Vec<u8>>>,
    /// Where the snapshot taken before the first upgrade went.
    pub(crate) snapshot: Option<String>,
    /// The Kubernetes version the cluster runs while the plan's Kubernetes upgrade has not run yet: the
    /// machine configs are rendered with it until then.
    pub(crate) kubernetes_running: Option<crate::versions::Version>,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    pub(crate) fn port<V>(
        &self,
        resource: &str,
        r: Result<V, PortError>,
    ) -> Result<V, EngineError> {
        r.map_err(|e| EngineError::step(resource, e))
    }

    /// A port call run again on transient errors within the run's retry budget; `what` names it in
    /// progress events and errors.
    pub(crate) async fn retried<V, Op, Fut>(
        &self,
        resource: &str,
        what: &str,
        op: Op,
    ) -> Result<V, EngineError>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<V, PortError>>,
    {
        let r = wait::retry(
            &self.events,
            resource,
            what,
            self.timeouts.retries,
            self.timeouts.poll / 5,
            op,
        )
        .await;
        self.port(resource, r)
    }

    /// Polls `probe` until it yields a value, within `timeout`, saying first what it waits for and why that may
    /// take long (`why`), then reporting progress; a timeout names both.
    pub(crate) async fn awaited<V, Probe, Fut>(
        &self,
        resource: &str,
        what: &str,
        why: &str,
        timeout: Duration,
        probe: Probe,
    ) -> Result<V, EngineError>
    where
        Probe: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<V>, PortError>>,
    {
        let r = self.waited(resource, what, why, timeout, probe).await;
        self.port(resource, r)
    }

    /// [`Self::awaited`] returning the port error (for callers that add their own hint).
    pub(crate) async fn waited<V, Probe, Fut>(
        &self,
        resource: &str,
        what: &str,
        why: &str,
        timeout: Duration,
        probe: Probe,
    ) -> Result<V, PortError>
    where
        Probe: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<V>, PortError>>,
    {
        self.events.info(
            resource,
            format!(
                "waiting up to {}s for {what}: {why}",
                timeout.as_secs().max(1)
            ),
        );
        wait::until(
            &self.events,
            resource,
            what,
            timeout,
            self.timeouts.poll,
            probe,
        )
        .await
        .map_err(|mut e| {
            if e.message.starts_with("timed out") {
                e.message = format!("{}; {why}", e.message);
            }
            e
        })
    }

    /// The node's machine config naming `installer_image`.
    pub(crate) fn render(
        &self,
        node: &Node,
        installer_image: &str,
    ) -> Result<RenderedNode, EngineError> {
        self.renderer
            .render(self.config, node, installer_image)
            .map_err(|message| EngineError::Render {
                node: node.name.clone(),
                message,
            })
    }

    pub(crate) fn started(&self, resource: &str, action: &str) -> Instant {
        self.events.emit(Event::StepStarted {
            resource: resource.to_string(),
            action: action.to_string(),
        });
        Instant::now()
    }

    pub(crate) fn finished(&self, resource: &str, action: &str, since: Instant) {
        self.events.emit(Event::StepFinished {
            resource: resource.to_string(),
            action: action.to_string(),
            elapsed: since.elapsed(),
        });
    }

    /// Observes everything and returns the steps apply would execute, in order. Acts on nothing.
    ///
    /// The order is apply's: the image, every VM, every machine config (control planes first), the
    /// bootstrap, etcd membership, Kubernetes readiness, then the Talos upgrades one node at a time
    /// (control planes first).
    pub async fn plan(&self) -> Result<Plan, EngineError> {
        let mut journal = Journal::load(&self.state_dir);
        let image = self.image_facts().await?;
        let mut plan = Plan::default();
        plan.changes.push(self.image_change(&image));
        // A node being replaced is retired first; every later step plans it as the fresh node it will be.
        let mut retiring = Vec::new();
        for node in &self.config.nodes {
            if let Some(step) = self.plan_replace(node, &journal).await? {
                plan.changes.push(step);
                journal.machine_configs.remove(&node.name);
                journal.upgrades.remove(&node.name);
                retiring.push(node.name.clone());
            }
        }
        let mut running = BTreeMap::new();
        for node in &self.config.nodes {
            let (change, live) = if retiring.contains(&node.name) {
                (self.plan_fresh_vm(node, &image, &journal)?, None)
            } else {
                self.plan_vm(node, &image, &journal).await?
            };
            plan.changes.push(change);
            let installed = match &live {
                Some(l) if l.running => self
                    .talos
                    .installed_version(desired::installed_address(node))
                    .await
                    .unwrap_or(None),
                _ => None,
            };
            running.insert(node.name.clone(), installed);
        }
        // The Kubernetes version the cluster runs: the machine configs keep it until the upgrade step.
        let kubernetes = if running.values().any(Option::is_some) {
            self.kubernetes_running().await
        } else {
            None
        };
        for node in desired::config_order(self.config) {
            let installed = running.get(&node.name).cloned().flatten();
            plan.changes.push(self.plan_config(
                node,
                &image,
                installed.as_deref(),
                kubernetes.as_ref(),
                &journal,
            )?);
        }
        let installed_nodes: Vec<String> = running
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        plan.changes
            .extend(self.plan_cluster(&installed_nodes).await);
        // Capacity that replaces them first: removals come once the new nodes are Ready.
        plan.changes.extend(self.plan_removals(&journal).await?);
        for node in desired::config_order(self.config) {
            let installed = running.get(&node.name).cloned().flatten();
            if let Some(change) = self.plan_upgrade(
                node,
                &image,
                installed.as_deref(),
                kubernetes.as_ref(),
                &journal,
            )? {
                plan.changes.push(change);
            }
        }
        if let Some(change) = self.plan_kubernetes_upgrade(kubernetes.as_ref())? {
            plan.changes.push(change);
        }
        Ok(plan)
    }

    /// Executes `plan`'s steps in order. Each step observes again what it relies on just before acting:
    /// when that moved towards the step's goal (an earlier run finished it) the step has nothing left to
    /// do; when it changed otherwise, apply stops with [`EngineError::Stale`] naming the step.
    pub async fn apply(
        &self,
        plan: &Plan,
        options: ApplyOptions<'_>,
    ) -> Result<Converged, EngineError> {
        let mut run = Run {
            options,
            journal: Journal::load(&self.state_dir),
            image: None,
            installing: BTreeMap::new(),
            kubeconfig: None,
            snapshot: None,
            kubernetes_running: plan
                .changes
                .iter()
                .find(|c| c.address == crate::steps::kubernetes_upgrade::ADDRESS)
                .and_then(crate::steps::kubernetes_upgrade::planned_from),
        };
        self.refuse_removals(plan, &options)?;
        for step in &plan.changes {
            let (kind, name) = step
                .address
                .split_once('.')
                .unwrap_or((step.address.as_str(), ""));
            let node = || {
                self.config
                    .nodes
                    .iter()
                    .find(|n| n.name == name)
                    .ok_or_else(|| EngineError::Stale {
                        resource: step.address.clone(),
                        message: format!("homelab.yaml has no node named {name}"),
                    })
            };
            match kind {
                "image" => self.apply_image(step, &mut run).await?,
                "vm" => self.apply_vm(node()?, step, &mut run).await?,
                "machine_config" => self.apply_config(node()?, step, &mut run).await?,
                "bootstrap" => self.apply_bootstrap(&mut run).await?,
                "etcd" => self.apply_etcd(&mut run).await?,
                "kubernetes" => self.apply_kubernetes(&mut run).await?,
                "talos_upgrade" => self.apply_upgrade(node()?, step, &mut run).await?,
                "kubernetes_upgrade" => self.apply_kubernetes_upgrade(step, &mut run).await?,
                "replace" => self.apply_replace(node()?, step, &mut run).await?,
                "remove" => self.apply_remove(name, step, &mut run).await?,
                _ => {
                    return Err(EngineError::Stale {
                        resource: step.address.clone(),
                        message: "this homelabctl does not know this kind of step".into(),
                    });
                }
            }
        }
        run.journal.last_step = plan.changes.last().map(|c| c.address.clone());
        // A node homelab.yaml dropped with nothing left of it needed no removal step: forget it.
        let config = self.config;
        let forgotten: Vec<String> = run
            .journal
            .nodes
            .keys()
            .filter(|name| {
                !config.nodes.iter().any(|n| &n.name == *name)
                    && !plan
                        .changes
                        .iter()
                        .any(|c| c.address == format!("remove.{name}"))
            })
            .cloned()
            .collect();
        for name in &forgotten {
            run.journal.forget(name);
        }
        // The whole plan ran: a replacement whose new node was built is finished.
        run.journal
            .replacing
            .retain(|_, phase| *phase != crate::journal::ReplacePhase::Rebuilding);
        let _ = run.journal.save(&self.state_dir);
        let kubeconfig = match run.kubeconfig.take() {
            Some(k) => k,
            None => Zeroizing::new(self.kubeconfig().await.unwrap_or_default()),
        };
        Ok(Converged {
            vm_ids: self
                .config
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.vm_id))
                .collect(),
            kubeconfig,
        })
    }

    /// Before acting on anything: a plan that removes nodes needs `allow_remove`, and none of its
    /// removals may leave etcd without quorum (or remove the last control plane), flag or not.
    fn refuse_removals(&self, plan: &Plan, options: &ApplyOptions<'_>) -> Result<(), EngineError> {
        let removals: Vec<&crate::plan::Step> = plan
            .changes
            .iter()
            .filter(|c| c.address.starts_with("remove.") && c.action == crate::plan::Action::Delete)
            .collect();
        if let Some(refused) = removals
            .iter()
            .find_map(|s| crate::steps::remove::planned_refusal(s))
        {
            return Err(refused);
        }
        if !removals.is_empty() && !options.allow_remove {
            let names: Vec<&str> = removals
                .iter()
                .map(|s| s.address.trim_start_matches("remove."))
                .collect();
            return Err(EngineError::Refused {
                resource: "remove".into(),
                message: format!(
                    "the plan removes node{} {} (drained, reset, VM deleted: its disk is lost); nothing was done",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ),
                hint: "review the plan, then run `homelabctl apply --allow-remove`".into(),
            });
        }
        Ok(())
    }

    /// Plans, then applies that plan: what `apply --yes` does. Safe to run again after any interruption.
    pub async fn converge(&self, allow_replace: bool) -> Result<Converged, EngineError> {
        let plan = self.plan().await?;
        self.apply(
            &plan,
            ApplyOptions {
                allow_replace,
                allow_remove: false,
                snapshot: None,
            },
        )
        .await
    }
}

/// A saved plan checked against a fresh one: the first step whose action or preconditions differ, as an
/// error naming it. Steps the fresh plan adds or lacks count too.
pub fn stale_against(saved: &Plan, fresh: &Plan) -> Result<(), EngineError> {
    for (i, step) in saved.changes.iter().enumerate() {
        let Some(now) = fresh.changes.iter().find(|c| c.address == step.address) else {
            return Err(EngineError::Stale {
                resource: step.address.clone(),
                message: "the step is no longer needed or no longer exists".into(),
            });
        };
        if let Some(what) = step.changed_since(now) {
            return Err(EngineError::Stale {
                resource: step.address.clone(),
                message: what,
            });
        }
        if now.action != step.action {
            return Err(EngineError::Stale {
                resource: step.address.clone(),
                message: format!(
                    "planned to {}, would now {}",
                    step.action.verb(),
                    now.action.verb()
                ),
            });
        }
        if fresh.changes.get(i).map(|c| &c.address) != Some(&step.address) {
            return Err(EngineError::Stale {
                resource: step.address.clone(),
                message: "the steps are in another order now".into(),
            });
        }
    }
    if let Some(extra) = fresh.changes.get(saved.changes.len()) {
        return Err(EngineError::Stale {
            resource: extra.address.clone(),
            message: "a step that the saved plan does not have is needed now".into(),
        });
    }
    Ok(())
}
