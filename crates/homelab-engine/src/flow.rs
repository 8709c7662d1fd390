//! The provisioning flow: plan (observe and diff, acting on nothing), converge (the ordered, idempotent
//! steps of DESIGN.md's provisioning flow), and destroy.
//!
//! The order follows what Talos (v1.12) needs, not what is convenient: every node gets its config first (the
//! installs then run side by side); etcd is bootstrapped as soon as the first control plane is installed;
//! the other control planes join etcd (as learners first) through the control-plane endpoint; the endpoint
//! answers once etcd runs (a Layer 2 VIP is elected through etcd); and only then can a worker's apid come up,
//! because its certificate comes from trustd reached through that endpoint (`secrets/api.go`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use homelab_config::{Config, Node, Role};
use zeroize::Zeroizing;

use crate::desired::{self, ConfigRenderer, ImageWanted, RenderedNode};
use crate::events::{Event, EventSink};
use crate::journal::{self, AppliedConfig, Journal};
use crate::plan::{Action, FieldChange, Plan, ResourceChange, line_diff};
use crate::ports::{
    Bootstrapped, ErrorKind, EtcdMember, Hypervisor, ImageFactory, KubeApi, PortError,
    ServiceHealth, TalosApi, VmLive, VmWanted,
};
use crate::wait;

/// How long each kind of wait may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until a fresh node answers in maintenance mode (at its reserved address or where the agent says).
    pub agent: Duration,
    pub install: Duration,
    pub kubernetes: Duration,
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

/// A node whose config was applied in maintenance mode and that is installing (its step still open).
struct Installing {
    since: Instant,
    /// The config was applied by an earlier run: if the node is back in maintenance mode (reset, or the
    /// answer was lost before the apply), it is applied again while waiting.
    reapply: Option<Zeroizing<Vec<u8>>>,
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
}

impl EngineError {
    fn step(resource: &str, e: PortError) -> Self {
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
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> Option<&str> {
        match self {
            EngineError::Refused { hint, .. } => Some(hint),
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

struct ImageFacts {
    schematic: String,
    file: String,
    volume: String,
    present: bool,
    /// The ISO copies not there yet (one per host, or one for a shared storage).
    missing: Vec<crate::placement::IsoTarget>,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    fn port<V>(&self, resource: &str, r: Result<V, PortError>) -> Result<V, EngineError> {
        r.map_err(|e| EngineError::step(resource, e))
    }

    /// A port call run again on transient errors within the run's retry budget; `what` names it in
    /// progress events and errors.
    async fn retried<V, Op, Fut>(
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
    async fn awaited<V, Probe, Fut>(
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
    async fn waited<V, Probe, Fut>(
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

    async fn image_facts(&self) -> Result<ImageFacts, EngineError> {
        let wanted = ImageWanted::from_config(self.config);
        let schematic = self
            .retried("image", "register the schematic", || {
                self.factory.schematic(&wanted.extensions)
            })
            .await?;
        let file = desired::iso_file_name(self.config, &schematic);
        // Every host that boots a node needs the ISO on its own storage, unless that storage is shared.
        let targets = self
            .retried("image", "look up the ISO storage of each host", || {
                crate::placement::iso_targets(self.config, self.hypervisor)
            })
            .await?;
        let mut missing = Vec::new();
        for target in targets {
            let there = self
                .retried("image", "list ISO storage", || {
                    self.hypervisor
                        .iso_exists(&target.proxmox_node, &target.storage, &file)
                })
                .await?;
            if !there {
                missing.push(target);
            }
        }
        Ok(ImageFacts {
            volume: format!("{}:iso/{file}", wanted.storage),
            schematic,
            file,
            present: missing.is_empty(),
            missing,
        })
    }

    fn render(&self, node: &Node, schematic: &str) -> Result<RenderedNode, EngineError> {
        self.renderer
            .render(self.config, node, &self.factory.installer_image(schematic))
            .map_err(|message| EngineError::Render {
                node: node.name.clone(),
                message,
            })
    }

    /// Observes everything and reports what `converge` would do. Acts on nothing.
    pub async fn plan(&self) -> Result<Plan, EngineError> {
        let journal = Journal::load(&self.state_dir);
        let image = self.image_facts().await?;
        let mut plan = Plan::default();
        let mut change = ResourceChange::new(
            "image",
            if image.present {
                Action::NoChange
            } else {
                Action::Create
            },
        );
        if !image.present {
            change
                .fields
                .push(FieldChange::new("iso", None, Some(image.volume.clone())));
            change.fields.push(FieldChange::new(
                "url",
                None,
                Some(self.factory.iso_url(&image.schematic)),
            ));
            let hosts: Vec<&str> = image
                .missing
                .iter()
                .map(|t| t.proxmox_node.as_str())
                .collect();
            change
                .fields
                .push(FieldChange::new("hosts", None, Some(hosts.join(", "))));
        }
        plan.changes.push(change);
        let mut installed_nodes = Vec::new();
        for node in &self.config.nodes {
            let wanted = desired::vm_wanted(self.config, node, &image.volume);
            let live = self.port(
                &format!("vm.{}", node.name),
                self.hypervisor.vm(&node.proxmox_node, node.vm_id).await,
            )?;
            plan.changes.push(vm_change(
                &wanted,
                live.as_ref(),
                journal.vms.get(&node.name),
            )?);
            let rendered = self.render(node, &image.schematic)?;
            let installed = match &live {
                Some(l) if l.running => self
                    .talos
                    .installed_version(desired::installed_address(node))
                    .await
                    .unwrap_or(None),
                _ => None,
            };
            plan.changes.push(config_change(
                node,
                &rendered,
                installed.is_some(),
                journal.machine_configs.get(&node.name),
            ));
            if installed.is_some() {
                installed_nodes.push(node.name.clone());
            }
        }
        if let Some(first) = desired::bootstrap_node(self.config) {
            let etcd = self
                .etcd_cluster(
                    desired::control_planes(self.config)
                        .filter(|n| installed_nodes.contains(&n.name)),
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
            plan.changes.push(change);
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
                    change =
                        change.because(format!("wait for {} to join etcd", missing.join(", ")));
                }
                plan.changes.push(change);
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
            plan.changes.push(change);
        }
        Ok(plan)
    }

    async fn kubernetes_ready(&self) -> bool {
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
    async fn kubeconfig(&self) -> Result<Vec<u8>, PortError> {
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

    /// The etcd members as the first of `among` that runs etcd reports them, with that node;
    /// None when none of them runs etcd (not bootstrapped yet: the adapter bounds Talos' blocking answer).
    async fn etcd_cluster<'n>(
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
    async fn members(&self) -> Vec<EtcdMember> {
        self.etcd_cluster(desired::control_planes(self.config))
            .await
            .map(|(_, m)| m)
            .unwrap_or_default()
    }

    /// The control planes (by name = hostname) that are not voting members: a learner has not joined yet
    /// (it does not vote, and Talos may still fail to promote it).
    fn missing_members(&self, members: &[EtcdMember]) -> Vec<String> {
        not_voting(desired::control_planes(self.config), members)
    }

    fn started(&self, resource: &str, action: &str) -> Instant {
        self.events.emit(Event::StepStarted {
            resource: resource.to_string(),
            action: action.to_string(),
        });
        Instant::now()
    }

    fn finished(&self, resource: &str, action: &str, since: Instant) {
        self.events.emit(Event::StepFinished {
            resource: resource.to_string(),
            action: action.to_string(),
            elapsed: since.elapsed(),
        });
    }

    /// Converges live state on homelab.yaml. Safe to run again after any interruption.
    pub async fn converge(&self, allow_replace: bool) -> Result<Converged, EngineError> {
        let mut journal = Journal::load(&self.state_dir);
        let image = self.ensure_image().await?;
        for node in &self.config.nodes {
            self.ensure_vm(node, &image, allow_replace, &mut journal)
                .await?;
        }
        let first = desired::bootstrap_node(self.config).ok_or_else(|| EngineError::Step {
            resource: "bootstrap".into(),
            message: "no control-plane node".into(),
            kind: ErrorKind::Invalid,
        })?;
        // Every node gets its config first: the installs (minutes each) then run side by side.
        let mut installing = std::collections::BTreeMap::new();
        for node in desired::config_order(self.config) {
            if let Some(i) = self
                .ensure_config(node, &image.schematic, &mut journal)
                .await?
            {
                installing.insert(node.name.clone(), i);
            }
        }
        // etcd is bootstrapped as soon as the first control plane is installed: nothing else can run
        // before it (the endpoint, the other control planes' etcd and every worker's certificate wait on it).
        self.await_installed(
            first,
            installing.remove(&first.name),
            "the first control plane; etcd is bootstrapped on it as soon as it answers (a Talos install \
             pulls the installer image and writes the disk: minutes on real hardware)",
        )
        .await?;
        self.ensure_bootstrap(first).await?;
        for node in desired::control_planes(self.config).filter(|n| n.name != first.name) {
            self.await_installed(
                node,
                installing.remove(&node.name),
                "a control plane; it joins etcd through the control-plane endpoint once installed",
            )
            .await?;
        }
        self.ensure_etcd_members().await?;
        let kubeconfig = self.ensure_kubernetes(&mut installing).await?;
        journal.last_step = Some("kubernetes".into());
        let _ = journal.save(&self.state_dir);
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

    async fn ensure_image(&self) -> Result<ImageFacts, EngineError> {
        let image = self.image_facts().await?;
        if image.present {
            return Ok(image);
        }
        let since = self.started("image", "download");
        let url = self.factory.iso_url(&image.schematic);
        for wanted in &image.missing {
            self.events.info(
                "image",
                format!(
                    "downloading {url} into {} on {}",
                    image.volume, wanted.proxmox_node
                ),
            );
            let attempts = std::sync::atomic::AtomicU32::new(0);
            self.retried("image", "download the ISO", || async {
                // A retried download first checks whether an earlier attempt already finished (the first
                // attempt follows the listing above that found no ISO).
                let retried = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0;
                if retried
                    && self
                        .hypervisor
                        .iso_exists(&wanted.proxmox_node, &wanted.storage, &image.file)
                        .await?
                {
                    return Ok(());
                }
                self.hypervisor
                    .download_iso(&wanted.proxmox_node, &wanted.storage, &image.file, &url)
                    .await
            })
            .await?;
        }
        self.finished("image", "download", since);
        Ok(ImageFacts {
            present: true,
            missing: Vec::new(),
            ..image
        })
    }

    async fn ensure_vm(
        &self,
        node: &Node,
        image: &ImageFacts,
        allow_replace: bool,
        journal: &mut Journal,
    ) -> Result<(), EngineError> {
        let resource = format!("vm.{}", node.name);
        let wanted = desired::vm_wanted(self.config, node, &image.volume);
        let live = self.vm_unlocked(&resource, node).await?;
        let change = vm_change(&wanted, live.as_ref(), journal.vms.get(&node.name))?;
        match change.action {
            Action::Create => {
                let since = self.started(&resource, "create");
                // A new VM has a blank disk: whatever config an earlier VM of this name took is gone.
                journal.machine_configs.remove(&node.name);
                self.create_vm(&resource, &wanted).await?;
                self.finished(&resource, "create", since);
            }
            Action::Replace if !allow_replace => {
                let fields: Vec<&str> = change
                    .fields
                    .iter()
                    .filter(|f| f.forces_replacement)
                    .map(|f| f.field.as_str())
                    .collect();
                return Err(EngineError::Refused {
                    resource,
                    message: format!(
                        "replacing the VM would destroy its disk, EFI vars and TPM state (changed: {})",
                        fields.join(", ")
                    ),
                    hint: "run again with --allow-replace if losing the node's data is intended"
                        .into(),
                });
            }
            Action::Replace => {
                let since = self.started(&resource, "replace");
                self.port(
                    &resource,
                    self.hypervisor
                        .stop_vm(&node.proxmox_node, node.vm_id)
                        .await,
                )?;
                self.port(
                    &resource,
                    self.hypervisor
                        .delete_vm(&node.proxmox_node, node.vm_id)
                        .await,
                )?;
                journal.machine_configs.remove(&node.name);
                self.create_vm(&resource, &wanted).await?;
                self.finished(&resource, "replace", since);
            }
            Action::Update => {
                let fields: Vec<String> = change
                    .fields
                    .iter()
                    .filter(|f| f.field != "running")
                    .map(|f| f.field.clone())
                    .collect();
                if !fields.is_empty() {
                    let since = self.started(&resource, "update");
                    self.retried(&resource, "update the VM", || {
                        self.hypervisor.update_vm(&wanted, &fields)
                    })
                    .await?;
                    self.events.info(
                        &resource,
                        format!(
                            "updated {}; hardware changes take effect when the VM restarts",
                            fields.join(", ")
                        ),
                    );
                    self.finished(&resource, "update", since);
                }
            }
            Action::NoChange | Action::Delete | Action::Wait => {}
        }
        journal
            .vms
            .insert(node.name.clone(), journal::vm_record(&wanted));
        let _ = journal.save(&self.state_dir);
        // A VM made just now is stopped; otherwise the state read above still holds (an update does not
        // change the power state). Reading it again would only repeat the same two GETs.
        let running = match change.action {
            Action::Create | Action::Replace => false,
            _ => live.as_ref().is_some_and(|l| l.running),
        };
        if !running {
            let since = self.started(&resource, "start");
            self.retried(&resource, "start the VM", || {
                self.hypervisor.start_vm(&node.proxmox_node, node.vm_id)
            })
            .await?;
            self.finished(&resource, "start", since);
        }
        Ok(())
    }

    async fn vm_live(&self, resource: &str, node: &Node) -> Result<Option<VmLive>, EngineError> {
        self.retried(resource, "read the VM", || {
            self.hypervisor.vm(&node.proxmox_node, node.vm_id)
        })
        .await
    }

    /// The VM once no task holds it: a locked VM (a create an interrupted run left running) is waited for,
    /// naming the task, and read again; its config before that is not what the VM will be.
    async fn vm_unlocked(
        &self,
        resource: &str,
        node: &Node,
    ) -> Result<Option<VmLive>, EngineError> {
        let mut live = self.vm_live(resource, node).await?;
        for _ in 0..3 {
            let Some(lock) = live.as_ref().and_then(|l| l.lock.clone()) else {
                break;
            };
            self.events.info(
                resource,
                match &lock.task {
                    Some(task) => format!(
                        "VM {} is locked ({}) by task {task}; waiting for it to end before comparing",
                        node.vm_id, lock.kind
                    ),
                    None => format!(
                        "VM {} is locked ({}) and no running task holds the lock",
                        node.vm_id, lock.kind
                    ),
                },
            );
            self.retried(resource, "wait for the VM's lock to clear", || {
                self.hypervisor
                    .wait_unlocked(&node.proxmox_node, node.vm_id)
            })
            .await?;
            live = self.vm_live(resource, node).await?;
        }
        Ok(live)
    }

    /// Creates the VM; a create is never re-sent blindly: after a failure the VM is looked up first.
    async fn create_vm(&self, resource: &str, wanted: &VmWanted) -> Result<(), EngineError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.hypervisor.create_vm(wanted).await {
                Ok(()) => return Ok(()),
                Err(e) if e.transient && attempt < self.timeouts.retries => {
                    self.events.info(
                        resource,
                        format!(
                            "create failed ({}); checking whether the VM exists before retrying",
                            e.message
                        ),
                    );
                    tokio::time::sleep(self.timeouts.poll / 5).await;
                    if self
                        .hypervisor
                        .vm(&wanted.proxmox_node, wanted.vm_id)
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                    {
                        return Ok(());
                    }
                }
                Err(e) => return Err(EngineError::step(resource, e)),
            }
        }
    }

    /// Applies the node's config: to an installed node when it changed, or in maintenance mode to a fresh one
    /// (which then installs: the returned [`Installing`] is awaited later, so installs run side by side).
    async fn ensure_config(
        &self,
        node: &Node,
        schematic: &str,
        journal: &mut Journal,
    ) -> Result<Option<Installing>, EngineError> {
        let resource = format!("machine_config.{}", node.name);
        let rendered = self.render(node, schematic)?;
        let at = desired::installed_address(node);
        let installed = self.talos.installed_version(at).await.unwrap_or(None);
        let digest = journal::digest(&rendered.config);
        let record = AppliedConfig {
            sha256: digest.clone(),
            redacted: rendered.redacted.clone(),
        };
        let journaled = journal
            .machine_configs
            .get(&node.name)
            .is_some_and(|r| r.sha256 == digest);
        if installed.is_some() {
            if journaled {
                return Ok(None);
            }
            let since = self.started(&resource, "apply");
            self.retried(&resource, "apply the config", || {
                self.talos.apply_installed(at, &rendered.config)
            })
            .await?;
            journal.machine_configs.insert(node.name.clone(), record);
            let _ = journal.save(&self.state_dir);
            self.finished(&resource, "apply", since);
            return Ok(None);
        }
        let since = self.started(&resource, "install");
        if journaled {
            // An earlier run applied this config and the node does not answer yet: it is installing, or (a
            // worker) waiting for its certificate. Applied again below if it turns out to be in maintenance.
            self.events.info(
                &resource,
                "config applied by an earlier run; waiting for the node to finish installing",
            );
            return Ok(Some(Installing {
                since,
                reapply: Some(rendered.config),
            }));
        }
        self.apply_in_maintenance(node, &resource, &rendered.config)
            .await?;
        journal.machine_configs.insert(node.name.clone(), record);
        let _ = journal.save(&self.state_dir);
        Ok(Some(Installing {
            since,
            reapply: None,
        }))
    }

    /// Applies `config` to the node in maintenance mode at whichever address answers first: the address a DHCP
    /// reservation (or `maintenance_address`) makes predictable, probed directly from the start, or the one the
    /// guest agent reports for our MAC (talos#11651: the agent may not run in maintenance mode at all). An
    /// earlier run that applied it already shows as the node answering installed. Says which address it used.
    async fn apply_in_maintenance(
        &self,
        node: &Node,
        resource: &str,
        config: &[u8],
    ) -> Result<SocketAddr, EngineError> {
        let predicted = SocketAddr::new(desired::maintenance_fallback(node), desired::APID_PORT);
        // A static address on the cloud-init drive is where maintenance mode comes up: no DHCP lease to
        // wait for, and no guest agent needed to learn it.
        let cloudinit = node.addressing.is_static();
        let source = if cloudinit {
            "the static address on its cloud-init drive"
        } else if node.maintenance_address.is_some() {
            "maintenance_address in homelab.yaml"
        } else {
            "the static address (DHCP reservation)"
        };
        let at = desired::installed_address(node);
        let mac = node.network.mac.to_string();
        let r = self
            .waited(
                resource,
                &format!(
                    "{} to answer in maintenance mode at {predicted} or where the guest agent says",
                    node.name
                ),
                "a fresh VM boots the ISO and gets its DHCP lease first; the guest agent may never run in \
                 maintenance mode (talos#11651), so the reserved address is tried alongside it",
                self.timeouts.agent,
                || async {
                    let direct = match self.talos.apply_in_maintenance(predicted, config).await {
                        Ok(()) => return Ok(Some((predicted, source))),
                        Err(e) => e.message,
                    };
                    let agent = if cloudinit {
                        "not asked (the address comes from the cloud-init drive)".to_string()
                    } else {
                        match self
                        .hypervisor
                        .guest_ipv4(&node.proxmox_node, node.vm_id, &mac)
                        .await
                    {
                        Ok(Some(ip)) if ip != predicted.ip() => {
                            let reported = SocketAddr::new(ip, desired::APID_PORT);
                            match self.talos.apply_in_maintenance(reported, config).await {
                                Ok(()) => return Ok(Some((reported, "the guest agent"))),
                                Err(e) => format!("reports {ip}, where {}", e.message),
                            }
                        }
                        Ok(Some(ip)) => format!("reports {ip} too"),
                        Ok(None) => "reports no address yet".to_string(),
                        Err(e) => e.message,
                        }
                    };
                    if let Ok(Some(_)) = self.talos.installed_version(at).await {
                        return Ok(Some((at, "an earlier run (the node answers installed)")));
                    }
                    Err(PortError::transient(format!(
                        "not in maintenance mode at {predicted} ({direct}); guest agent: {agent}"
                    )))
                },
            )
            .await;
        let (used, from) = r.map_err(|e| EngineError::Refused {
            resource: resource.to_string(),
            message: e.message,
            hint: if cloudinit {
                format!(
                    "check the VM's console: Talos in maintenance mode should show {} from its cloud-init \
                     drive (only the nocloud image reads it)",
                    predicted.ip()
                )
            } else {
                format!(
                    "check the VM's console: it should show Talos in maintenance mode; if its DHCP address is \
                     not {}, reserve it for {mac} or set nodes[].maintenance_address",
                    predicted.ip()
                )
            },
        })?;
        self.events.info(
            resource,
            format!("config applied in maintenance mode at {used} (from {from})"),
        );
        Ok(used)
    }

    /// Waits until `node` answers installed with mutual TLS (its install step, if it had one, then ends).
    /// `what_for` says why the flow waits for this node now and why it may take long.
    async fn await_installed(
        &self,
        node: &Node,
        installing: Option<Installing>,
        what_for: &str,
    ) -> Result<(), EngineError> {
        let resource = format!("machine_config.{}", node.name);
        let at = desired::installed_address(node);
        let Some(installing) = installing else {
            return Ok(());
        };
        let predicted = SocketAddr::new(desired::maintenance_fallback(node), desired::APID_PORT);
        let version = self
            .awaited(
                &resource,
                &format!("Talos to install and answer with mutual TLS on {at}"),
                what_for,
                self.timeouts.install,
                || async {
                    if let Some(v) = self.talos.installed_version(at).await? {
                        return Ok(Some(v));
                    }
                    if let Some(config) = &installing.reapply
                        && self
                            .talos
                            .apply_in_maintenance(predicted, config)
                            .await
                            .is_ok()
                    {
                        self.events.info(
                            &resource,
                            format!(
                                "{predicted} was in maintenance mode again: config applied anew"
                            ),
                        );
                    }
                    Ok(None)
                },
            )
            .await?;
        self.events.info(
            &resource,
            format!("installed, Talos {version} answering on {at}"),
        );
        self.finished(&resource, "install", installing.since);
        Ok(())
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

    /// Waits for the API at the control-plane endpoint, then for the workers' apid (their certificates come
    /// from trustd through that endpoint), then for every node to be Ready.
    async fn ensure_kubernetes(
        &self,
        installing: &mut std::collections::BTreeMap<String, Installing>,
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
            self.awaited(
                "kubernetes",
                &format!("node {} to be Ready", node.name),
                "its kubelet registers through the endpoint, then the CNI must come up on it",
                self.timeouts.kubernetes,
                || async {
                    Ok(self
                        .kube
                        .node_ready(&kubeconfig, &node.name)
                        .await?
                        .then_some(()))
                },
            )
            .await?;
        }
        self.finished("kubernetes", "wait", since);
        Ok(kubeconfig)
    }

    /// Removes the cluster's VMs (optionally resetting Talos first) and, if asked, the ISO. Things already
    /// gone are fine.
    pub async fn destroy(&self, reset_talos: bool, remove_iso: bool) -> Result<(), EngineError> {
        for node in self.config.nodes.iter().rev() {
            let resource = format!("vm.{}", node.name);
            let Some(live) = self.vm_live(&resource, node).await? else {
                self.events.info(&resource, "already gone");
                continue;
            };
            if live.name.as_deref().is_some_and(|n| n != node.name) {
                return Err(refuse_foreign(
                    &resource,
                    node.vm_id,
                    live.name.as_deref(),
                    &node.name,
                ));
            }
            let since = self.started(&resource, "destroy");
            if reset_talos
                && live.running
                && self
                    .talos
                    .installed_version(desired::installed_address(node))
                    .await
                    .unwrap_or(None)
                    .is_some()
                && let Err(e) = self.talos.reset(desired::installed_address(node)).await
            {
                self.events.warn(
                    &resource,
                    format!("Talos reset failed ({}); removing the VM anyway", e.message),
                );
            }
            if live.running {
                self.port(
                    &resource,
                    self.hypervisor
                        .stop_vm(&node.proxmox_node, node.vm_id)
                        .await,
                )?;
            }
            self.port(
                &resource,
                self.hypervisor
                    .delete_vm(&node.proxmox_node, node.vm_id)
                    .await,
            )?;
            self.finished(&resource, "destroy", since);
        }
        if remove_iso {
            // Every copy: one per host that ran a node, or the one on a shared storage.
            let image = self.image_facts().await?;
            let targets = self.port(
                "image",
                crate::placement::iso_targets(self.config, self.hypervisor).await,
            )?;
            for target in targets.iter().filter(|t| !image.missing.contains(t)) {
                self.port(
                    "image",
                    self.hypervisor
                        .delete_iso(&target.proxmox_node, &target.storage, &image.file)
                        .await,
                )?;
                self.events.info(
                    "image",
                    format!("removed {} on {}", image.volume, target.proxmox_node),
                );
            }
        }
        let mut journal = Journal::load(&self.state_dir);
        journal.machine_configs.clear();
        journal.vms.clear();
        journal.last_step = None;
        let _ = journal.save(&self.state_dir);
        Ok(())
    }
}

/// The nodes (by name = hostname) that are not voting etcd members: a learner has not joined yet (it does not
/// vote, and an unnamed one cannot even be told apart).
fn not_voting<'n>(nodes: impl Iterator<Item = &'n Node>, members: &[EtcdMember]) -> Vec<String> {
    nodes
        .filter(|n| !members.iter().any(|m| !m.learner && m.name == n.name))
        .map(|n| n.name.clone())
        .collect()
}

fn refuse_foreign(resource: &str, vm_id: u32, found: Option<&str>, ours: &str) -> EngineError {
    EngineError::Refused {
        resource: resource.to_string(),
        message: format!(
            "VM {vm_id} exists but is named `{}`, not `{ours}`; it is not ours",
            found.unwrap_or("?")
        ),
        hint: "choose a free vm_id in homelab.yaml, or rename/remove that VM in Proxmox".into(),
    }
}

/// The planned change of one VM: create, refuse a foreign VM, replace on firmware/TPM changes, update in
/// place (marked as drift when the live value differs from what homelabctl last set), start if stopped.
pub fn vm_change(
    wanted: &VmWanted,
    live: Option<&VmLive>,
    last_applied: Option<&journal::VmRecord>,
) -> Result<ResourceChange, EngineError> {
    let address = format!("vm.{}", wanted.name);
    let Some(live) = live else {
        let mut change = ResourceChange::new(&address, Action::Create);
        for (field, value) in journal::vm_record(wanted).fields() {
            change
                .fields
                .push(FieldChange::new(field, None, Some(value)));
        }
        return Ok(change);
    };
    if let Some(lock) = &live.lock {
        // A locked VM's config is not final (under `lock: create` it holds nothing but the lock): it says
        // nothing about drift, and a replacement planned from it would destroy a VM that is merely not
        // finished.
        let reason = match &lock.task {
            Some(task) => format!(
                "locked ({}) by task {task}: apply waits for that task to end, then compares",
                lock.kind
            ),
            None => format!(
                "locked ({}) and no running task holds the lock (left by a task that died): apply stops here; remove the VM if it is half-made, or `qm unlock {}`",
                lock.kind, wanted.vm_id
            ),
        };
        return Ok(ResourceChange::new(&address, Action::Wait).because(reason));
    }
    if live.name.as_deref().is_some_and(|n| n != wanted.name) {
        return Err(refuse_foreign(
            &address,
            wanted.vm_id,
            live.name.as_deref(),
            &wanted.name,
        ));
    }
    let mut fields = Vec::new();
    let replacing = [
        ("bios", live.bios.clone(), "ovmf".to_string()),
        ("machine", live.machine.clone(), "q35".to_string()),
        (
            "efidisk0",
            live.efidisk
                .as_ref()
                .map(|(t, k)| format!("efitype={t},pre-enrolled-keys={}", u8::from(*k))),
            // Setup mode in both image modes (see the Proxmox adapter's `vm_spec`).
            "efitype=4m,pre-enrolled-keys=0".to_string(),
        ),
        ("tpmstate0", live.tpm_version.clone(), "v2.0".to_string()),
    ];
    for (field, have, want) in replacing {
        if have.as_deref() != Some(want.as_str()) {
            fields.push(FieldChange::new(field, have, Some(want)).replacing());
        }
    }
    let record = journal::vm_record(wanted);
    let live_fields = [
        ("cores", live.cores.map(|v| v.to_string())),
        ("memory", live.memory_mib.map(|v| v.to_string())),
        ("mac", live.mac.as_ref().map(|m| m.to_ascii_uppercase())),
        ("bridge", live.bridge.clone()),
        (
            "vlan",
            Some(live.vlan.map(|v| v.to_string()).unwrap_or_default()),
        ),
    ];
    for (field, have) in live_fields {
        let want = record.get(field);
        if have.as_deref() != Some(want.as_str()) {
            let last = last_applied.map(|r| r.get(field));
            let mut change = FieldChange::new(field, have, Some(want.clone()));
            if last.as_deref() == Some(want.as_str()) {
                change = change.drifted();
            }
            fields.push(change);
        }
    }
    // Cloud-init address, extra disks and NICs: in-place updates (see `hardware`).
    fields.extend(crate::hardware::changes(wanted, live));
    if !live.running {
        fields.push(FieldChange::new(
            "running",
            Some("false".into()),
            Some("true".into()),
        ));
    }
    let action = if fields.iter().any(|f| f.forces_replacement) {
        Action::Replace
    } else if fields.is_empty() {
        Action::NoChange
    } else {
        Action::Update
    };
    let mut change = ResourceChange::new(address, action);
    if action == Action::Replace {
        change = change.because(
            "firmware, EFI vars or TPM state differ: the VM must be recreated and its data is lost",
        );
    } else if fields.iter().any(|f| f.drift) {
        change = change.because("changed outside homelabctl (drift)");
    }
    change.fields = fields;
    Ok(change)
}

/// The planned change of one node's machine config.
fn config_change(
    node: &Node,
    rendered: &RenderedNode,
    installed: bool,
    applied: Option<&AppliedConfig>,
) -> ResourceChange {
    let address = format!("machine_config.{}", node.name);
    if !installed {
        return ResourceChange::new(address, Action::Create)
            .because("apply in maintenance mode, then Talos installs and reboots");
    }
    match applied {
        Some(a) if a.sha256 == journal::digest(&rendered.config) => {
            ResourceChange::new(address, Action::NoChange)
        }
        Some(a) => {
            let mut change = ResourceChange::new(address, Action::Update)
                .because("the rendered config changed (secrets redacted)");
            change.document_diff = line_diff(&a.redacted, &rendered.redacted);
            change
        }
        None => ResourceChange::new(address, Action::Update)
            .because("no record of the config this node runs; it will be applied again"),
    }
}

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
                Ok(Some(v)) => row("talos", &node.name, true, format!("{v} on {at}")),
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
