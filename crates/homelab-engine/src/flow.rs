//! The provisioning flow: plan (observe and diff, acting on nothing), converge (the ordered, idempotent
//! steps of DESIGN.md's provisioning flow), and destroy.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use homelab_config::{Config, Node};
use zeroize::Zeroizing;

use crate::desired::{self, ConfigRenderer, ImageWanted, RenderedNode};
use crate::events::{Event, EventSink};
use crate::journal::{self, AppliedConfig, Journal};
use crate::plan::{Action, FieldChange, Plan, ResourceChange, line_diff};
use crate::ports::{
    Bootstrapped, Hypervisor, ImageFactory, KubeApi, PortError, ServiceHealth, TalosApi, VmLive,
    VmWanted,
};
use crate::wait;

/// How long each kind of wait may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub agent: Duration,
    pub install: Duration,
    pub kubernetes: Duration,
    pub poll: Duration,
    pub retries: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            agent: Duration::from_secs(300),
            install: Duration::from_secs(900),
            kubernetes: Duration::from_secs(900),
            poll: Duration::from_secs(5),
            retries: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{resource}: {message}")]
    Step { resource: String, message: String },
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

    /// Polls `probe` until it yields a value, within `timeout`, reporting what it waits for.
    async fn awaited<V, Probe, Fut>(
        &self,
        resource: &str,
        what: &str,
        timeout: Duration,
        probe: Probe,
    ) -> Result<V, EngineError>
    where
        Probe: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<V>, PortError>>,
    {
        let r = wait::until(
            &self.events,
            resource,
            what,
            timeout,
            self.timeouts.poll,
            probe,
        )
        .await;
        self.port(resource, r)
    }

    async fn image_facts(&self) -> Result<ImageFacts, EngineError> {
        let wanted = ImageWanted::from_config(self.config);
        let schematic = self
            .retried("image", "register the schematic", || {
                self.factory.schematic(&wanted.extensions)
            })
            .await?;
        let file = desired::iso_file_name(self.config, &schematic);
        let present = self
            .retried("image", "list ISO storage", || {
                self.hypervisor
                    .iso_exists(&wanted.proxmox_node, &wanted.storage, &file)
            })
            .await?;
        Ok(ImageFacts {
            volume: format!("{}:iso/{file}", wanted.storage),
            schematic,
            file,
            present,
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
    /// None when none of them runs etcd (not bootstrapped yet).
    async fn etcd_cluster<'n>(
        &self,
        among: impl Iterator<Item = &'n Node>,
    ) -> Option<(&'n Node, Vec<String>)> {
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
    async fn members(&self) -> Vec<String> {
        self.etcd_cluster(desired::control_planes(self.config))
            .await
            .map(|(_, m)| m)
            .unwrap_or_default()
    }

    /// The control planes (by name = hostname) missing from `members`.
    fn missing_members(&self, members: &[String]) -> Vec<String> {
        desired::control_planes(self.config)
            .filter(|n| !members.contains(&n.name))
            .map(|n| n.name.clone())
            .collect()
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
        for node in desired::config_order(self.config) {
            self.ensure_config(node, &image.schematic, &mut journal)
                .await?;
        }
        let first = desired::bootstrap_node(self.config).ok_or_else(|| EngineError::Step {
            resource: "bootstrap".into(),
            message: "no control-plane node".into(),
        })?;
        self.ensure_bootstrap(first).await?;
        self.ensure_etcd_members().await?;
        let kubeconfig = self.ensure_kubernetes().await?;
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
        let wanted = ImageWanted::from_config(self.config);
        let url = self.factory.iso_url(&image.schematic);
        self.events
            .info("image", format!("downloading {url} into {}", image.volume));
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
        self.finished("image", "download", since);
        Ok(ImageFacts {
            present: true,
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

    async fn ensure_config(
        &self,
        node: &Node,
        schematic: &str,
        journal: &mut Journal,
    ) -> Result<(), EngineError> {
        let resource = format!("machine_config.{}", node.name);
        let rendered = self.render(node, schematic)?;
        let at = desired::installed_address(node);
        let installed = self.talos.installed_version(at).await.unwrap_or(None);
        let digest = journal::digest(&rendered.config);
        let record = AppliedConfig {
            sha256: digest.clone(),
            redacted: rendered.redacted.clone(),
        };
        if installed.is_some() {
            if journal
                .machine_configs
                .get(&node.name)
                .is_some_and(|r| r.sha256 == digest)
            {
                return Ok(());
            }
            let since = self.started(&resource, "apply");
            self.retried(&resource, "apply the config", || {
                self.talos.apply_installed(at, &rendered.config)
            })
            .await?;
            journal.machine_configs.insert(node.name.clone(), record);
            let _ = journal.save(&self.state_dir);
            self.finished(&resource, "apply", since);
            return Ok(());
        }
        let since = self.started(&resource, "install");
        let maintenance = self.maintenance_address(node, &resource).await?;
        // apid may not listen yet when the agent reports the address; an earlier, interrupted run (or
        // an answer lost on the way) may have applied the config already and the node is installing.
        let apply = wait::until(
            &self.events,
            &resource,
            &format!("apid in maintenance mode on {maintenance} to take the config"),
            self.timeouts.agent,
            self.timeouts.poll / 5,
            || async {
                match self
                    .talos
                    .apply_in_maintenance(maintenance, &rendered.config)
                    .await
                {
                    Ok(()) => Ok(Some(())),
                    Err(e) => match self.talos.installed_version(at).await {
                        Ok(Some(_)) => Ok(Some(())),
                        _ => Err(e),
                    },
                }
            },
        )
        .await;
        self.port(&resource, apply)?;
        journal.machine_configs.insert(node.name.clone(), record);
        let _ = journal.save(&self.state_dir);
        let version = self
            .awaited(
                &resource,
                &format!("Talos to install and answer on {at}"),
                self.timeouts.install,
                || self.talos.installed_version(at),
            )
            .await?;
        self.events.info(
            &resource,
            format!("installed, Talos {version} answering on {at}"),
        );
        self.finished(&resource, "install", since);
        Ok(())
    }

    /// The node's maintenance-mode address: the guest agent's report for our MAC (the DHCP lease), else the
    /// configured fallback (talos#11651: the agent may not run in maintenance mode). Says which was used.
    async fn maintenance_address(
        &self,
        node: &Node,
        resource: &str,
    ) -> Result<SocketAddr, EngineError> {
        let mac = node.network.mac.to_string();
        let reported = wait::until(
            &self.events,
            resource,
            "the guest agent to report the DHCP address",
            self.timeouts.agent,
            self.timeouts.poll,
            || {
                self.hypervisor
                    .guest_ipv4(&node.proxmox_node, node.vm_id, &mac)
            },
        )
        .await;
        let ip = match reported {
            Ok(ip) => {
                self.events.info(
                    resource,
                    format!("maintenance address {ip} (from the guest agent)"),
                );
                ip
            }
            Err(e) => {
                let ip = desired::maintenance_fallback(node);
                let source = if node.maintenance_address.is_some() {
                    "maintenance_address in homelab.yaml"
                } else {
                    "the static address (DHCP reservation)"
                };
                self.events
                    .warn(resource, format!("{}; using {ip} from {source}", e.message));
                ip
            }
        };
        Ok(SocketAddr::new(ip, desired::APID_PORT))
    }

    /// Bootstraps etcd on the first control plane unless etcd already runs on any control plane:
    /// a second bootstrap would start a second etcd cluster (split brain); the others join.
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
        let r = wait::retry(
            &self.events,
            "bootstrap",
            "bootstrap etcd",
            self.timeouts.retries * 4,
            self.timeouts.poll,
            || self.talos.bootstrap(at),
        )
        .await;
        match self.port("bootstrap", r)? {
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

    /// With several control planes, waits until every one of them is an etcd member (they join
    /// through the control-plane endpoint once the bootstrap node serves it).
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
            "every control plane to join etcd",
            self.timeouts.kubernetes,
            || async {
                let missing = self.missing_members(&self.members().await);
                if missing.is_empty() {
                    Ok(Some(()))
                } else {
                    // Named in the timeout error if they never join.
                    Err(PortError::transient(format!(
                        "not members yet: {}",
                        missing.join(", ")
                    )))
                }
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

    async fn ensure_kubernetes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let since = self.started("kubernetes", "wait");
        let kubeconfig = Zeroizing::new(
            self.awaited(
                "kubernetes",
                "the kubeconfig",
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
            "the API server",
            self.timeouts.kubernetes,
            || async { Ok(self.kube.api_ready(&kubeconfig).await?.then_some(())) },
        )
        .await?;
        for node in &self.config.nodes {
            self.awaited(
                "kubernetes",
                &format!("node {} to be Ready", node.name),
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
            let image = self.image_facts().await?;
            if image.present {
                let wanted = ImageWanted::from_config(self.config);
                self.port(
                    "image",
                    self.hypervisor
                        .delete_iso(&wanted.proxmox_node, &wanted.storage, &image.file)
                        .await,
                )?;
                self.events
                    .info("image", format!("removed {}", image.volume));
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
            let member = members.contains(&node.name);
            rows.push(row(
                "etcd",
                &node.name,
                member,
                if members.is_empty() {
                    "not running (not bootstrapped or not joined yet)".into()
                } else {
                    format!(
                        "{}{} member(s): {}",
                        if member { "" } else { "not a member; " },
                        members.len(),
                        members.join(", ")
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
