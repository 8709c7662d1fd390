//! Retiring nodes: the removal step (`remove.NAME`, a node homelabctl created that homelab.yaml no longer
//! names) and the replacement step (`replace.NAME`, asked for with `homelabctl replace`; the normal flow then
//! builds the node anew). Both retire a node the same way — a control plane leaves etcd first
//! (EtcdLeaveCluster on it, or EtcdRemoveMemberByID through a healthy member when it does not answer), then
//! the node is cordoned and drained (evictions honour PodDisruptionBudgets), its Node object deleted, Talos
//! reset (graceful) and its VM deleted — each part skipped when an earlier, interrupted run did it. Both
//! refuse what would leave etcd without quorum, counting a member that is down against it.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use homelab_config::{Node, Role};

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::journal::{Journal, NodeRecord, ReplacePhase};
use crate::plan::{Action, FieldChange, ResourceChange, Step};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, OWNER_TAG, TalosApi, VmLive};
use crate::steps::vm::vm_digest;

/// The precondition fact naming what etcd's quorum would be after the step.
const QUORUM_FACT: &str = "quorum_after";
const LOST_HINT: &str = "bring the control planes that are down back first (`homelabctl status` shows them), then plan again";
const LAST_HINT: &str = "to remove the whole cluster use `homelabctl destroy`";

/// A node on its way out: where it lives and whether it is a control plane.
#[derive(Debug, Clone)]
pub(crate) struct Retiree {
    pub(crate) name: String,
    vm_id: u32,
    proxmox_node: String,
    at: SocketAddr,
    control_plane: bool,
}

impl Retiree {
    fn from_record(name: &str, record: &NodeRecord) -> Self {
        Self {
            name: name.to_string(),
            vm_id: record.vm_id,
            proxmox_node: record.proxmox_node.clone(),
            at: SocketAddr::new(record.address, desired::APID_PORT),
            control_plane: record.control_plane,
        }
    }

    fn from_node(node: &Node) -> Self {
        Self {
            name: node.name.clone(),
            vm_id: node.vm_id,
            proxmox_node: node.proxmox_node.clone(),
            at: desired::installed_address(node),
            control_plane: node.role == Role::Controlplane,
        }
    }
}

/// What etcd looks like now: its members (by name) and which voting members answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct EtcdView {
    members: Vec<String>,
    voters: Vec<String>,
    live: BTreeSet<String>,
}

/// Whether etcd keeps its quorum once some members are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// It keeps quorum; what remains tolerates `tolerates` more members down.
    Kept { remaining: usize, tolerates: usize },
    /// Fewer than a majority of the remaining members would be up.
    Lost { remaining: usize, up: usize },
    /// No member would remain.
    LastControlPlane,
}

/// etcd's quorum once `removing` are no longer members: `voters` are the voting members now, `live` those
/// that answer. A member that is down counts against the quorum (it still votes, but cannot).
pub fn quorum_after(
    voters: &[String],
    live: &BTreeSet<String>,
    removing: &BTreeSet<String>,
) -> Quorum {
    let remaining: Vec<&String> = voters.iter().filter(|v| !removing.contains(*v)).collect();
    if remaining.is_empty() {
        return Quorum::LastControlPlane;
    }
    let up = remaining.iter().filter(|v| live.contains(**v)).count();
    let needed = remaining.len() / 2 + 1;
    if up < needed {
        Quorum::Lost {
            remaining: remaining.len(),
            up,
        }
    } else {
        Quorum::Kept {
            remaining: remaining.len(),
            tolerates: up - needed,
        }
    }
}

impl Quorum {
    /// The verdict as a precondition value (a saved plan goes stale when it moves).
    fn fact(&self) -> String {
        match self {
            Quorum::Kept {
                remaining,
                tolerates,
            } => format!("kept ({remaining} members remain, tolerating {tolerates} down)"),
            Quorum::Lost { remaining, up } => {
                format!("lost ({up} of the {remaining} remaining members up)")
            }
            Quorum::LastControlPlane => "last control plane".into(),
        }
    }

    /// What the plan says about what remains.
    fn note(&self) -> String {
        match self {
            Quorum::Kept {
                remaining,
                tolerates: 0,
            } => format!(
                "what remains ({remaining} control plane{}) tolerates no further failure",
                if *remaining == 1 { "" } else { "s" }
            ),
            Quorum::Kept {
                remaining,
                tolerates,
            } => format!(
                "what remains ({remaining} control planes) tolerates {tolerates} more down"
            ),
            Quorum::Lost { remaining, up } => format!(
                "REFUSED: etcd would lose its quorum (only {up} of the {remaining} remaining members are up)"
            ),
            Quorum::LastControlPlane => {
                "REFUSED: it is the last control plane; use `homelabctl destroy` to remove the cluster".into()
            }
        }
    }

    /// The refusal of a step with this verdict, if it is refused.
    fn refusal(&self, resource: &str, name: &str) -> Option<EngineError> {
        let (message, hint) = match self {
            Quorum::Kept { .. } => return None,
            Quorum::Lost { remaining, up } => (
                format!(
                    "removing {name} from etcd would leave it without quorum: only {up} of the {remaining} \
                     remaining members are up, a majority is needed"
                ),
                LOST_HINT,
            ),
            Quorum::LastControlPlane => (
                format!(
                    "{name} is the last control plane: removing it would end etcd and the cluster"
                ),
                LAST_HINT,
            ),
        };
        Some(EngineError::Refused {
            resource: resource.to_string(),
            message,
            hint: hint.into(),
        })
    }
}

/// The refusal of a planned removal whose recorded quorum verdict is not "kept": apply checks every
/// removal before acting on any.
pub(crate) fn planned_refusal(step: &Step) -> Option<EngineError> {
    let value = step
        .preconditions
        .iter()
        .find(|p| p.fact == QUORUM_FACT)
        .map(|p| p.value.as_str())?;
    if value.starts_with("kept") {
        return None;
    }
    let name = step.address.split_once('.').map_or("", |(_, n)| n);
    let (message, hint) = if value.starts_with("last") {
        (
            format!("{name} is the last control plane: removing it would end etcd and the cluster"),
            LAST_HINT,
        )
    } else {
        (
            format!("removing {name} would leave etcd without quorum: {value}"),
            LOST_HINT,
        )
    };
    Some(EngineError::Refused {
        resource: step.address.clone(),
        message,
        hint: hint.into(),
    })
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// Every control plane etcd may be asked through: homelab.yaml's and the journal's that it no longer names.
    fn etcd_peers(&self, journal: &Journal) -> Vec<(String, SocketAddr)> {
        let mut peers: Vec<(String, SocketAddr)> = desired::control_planes(self.config)
            .map(|n| (n.name.clone(), desired::installed_address(n)))
            .collect();
        for (name, record) in &journal.nodes {
            if record.control_plane && !peers.iter().any(|(n, _)| n == name) {
                peers.push((
                    name.clone(),
                    SocketAddr::new(record.address, desired::APID_PORT),
                ));
            }
        }
        peers
    }

    /// etcd as the first of `peers` that runs it reports it, with which voting members answer installed.
    async fn etcd_view(&self, peers: &[(String, SocketAddr)]) -> EtcdView {
        let mut members = Vec::new();
        for (_, at) in peers {
            members = self.talos.etcd_members(*at).await.unwrap_or_default();
            if !members.is_empty() {
                break;
            }
        }
        // No member answered the list (etcd has no quorum, or every control plane is down): every control
        // plane we know of is taken for a voting member, so those that do not answer count against the
        // quorum rather than making a removal look safe.
        let voters: Vec<String> = if members.is_empty() {
            peers.iter().map(|(n, _)| n.clone()).collect()
        } else {
            members
                .iter()
                .filter(|m| !m.learner && !m.name.is_empty())
                .map(|m| m.name.clone())
                .collect()
        };
        let mut live = BTreeSet::new();
        for voter in &voters {
            if let Some((_, at)) = peers.iter().find(|(n, _)| n == voter)
                && self.answers_installed(*at).await
            {
                live.insert(voter.clone());
            }
        }
        EtcdView {
            members: if members.is_empty() {
                voters.clone()
            } else {
                members.into_iter().map(|m| m.name).collect()
            },
            voters,
            live,
        }
    }

    async fn answers_installed(&self, at: SocketAddr) -> bool {
        self.talos
            .installed_version(at)
            .await
            .unwrap_or(None)
            .is_some()
    }

    /// The VM at the retiree's id, if it is the retiree's (a VM of another name there is not ours: left alone).
    async fn retiree_vm(&self, resource: &str, r: &Retiree) -> Result<Option<VmLive>, EngineError> {
        let live = self
            .retried(resource, "read the VM", || {
                self.hypervisor.vm(&r.proxmox_node, r.vm_id)
            })
            .await?;
        Ok(live.filter(|l| l.name.as_deref() == Some(r.name.as_str())))
    }

    /// The removal steps: one per node the journal records (homelabctl created it) and homelab.yaml no
    /// longer names, workers first, then control planes, one at a time. A node with nothing left of it (no
    /// VM, no etcd member, no Node object) needs no step.
    pub(crate) async fn plan_removals(&self, journal: &Journal) -> Result<Vec<Step>, EngineError> {
        let mut gone: Vec<Retiree> = journal
            .nodes
            .iter()
            .filter(|(name, _)| !self.config.nodes.iter().any(|n| &n.name == *name))
            .map(|(name, record)| Retiree::from_record(name, record))
            .collect();
        // A journal written before homelabctl recorded where nodes live knows the VM only by name.
        for name in journal.vms.keys().filter(|n| {
            !journal.nodes.contains_key(*n) && !self.config.nodes.iter().any(|c| &c.name == *n)
        }) {
            self.events.warn(
                &format!("remove.{name}"),
                format!(
                    "homelab.yaml no longer names {name}, but the journal (older than node removal) does not \
                     say where its VM lives, so it is not removed: put it back in homelab.yaml, run \
                     `homelabctl apply` once, then drop it again"
                ),
            );
        }
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        gone.sort_by(|a, b| (a.control_plane, &a.name).cmp(&(b.control_plane, &b.name)));
        let view = if gone.iter().any(|g| g.control_plane) {
            self.etcd_view(&self.etcd_peers(journal)).await
        } else {
            EtcdView::default()
        };
        let kube_nodes: Option<Vec<String>> = match self.kubeconfig().await {
            Ok(kubeconfig) => self
                .kube
                .nodes(&kubeconfig)
                .await
                .ok()
                .map(|nodes| nodes.into_iter().map(|n| n.name).collect()),
            Err(_) => None,
        };
        let mut removing = BTreeSet::new();
        let mut steps = Vec::new();
        for g in gone {
            let resource = format!("remove.{}", g.name);
            let live = self.retiree_vm(&resource, &g).await?;
            let member = g.control_plane && view.members.contains(&g.name);
            // Unknown when the API does not answer: the step then tries.
            let has_node = kube_nodes.as_ref().is_none_or(|n| n.contains(&g.name));
            if live.is_none() && !member && !has_node {
                continue;
            }
            let answering =
                live.as_ref().is_some_and(|l| l.running) && self.answers_installed(g.at).await;
            let mut what = Vec::new();
            let mut step = ResourceChange::new(&resource, Action::Delete);
            if member {
                what.push(if answering {
                    "leave etcd".to_string()
                } else {
                    "remove its etcd member through a healthy control plane (it does not answer)"
                        .into()
                });
                step.fields
                    .push(FieldChange::new("etcd_member", Some(g.name.clone()), None));
            }
            if has_node {
                what.push(
                    "cordon and drain it (evictions honour PodDisruptionBudgets), delete its Node"
                        .into(),
                );
                step.fields
                    .push(FieldChange::new("node", Some(g.name.clone()), None));
            }
            if answering {
                what.push("reset Talos (graceful)".into());
            }
            if let Some(l) = &live {
                what.push(format!("delete VM {}", g.vm_id));
                step.fields.push(FieldChange::new(
                    "vm",
                    Some(format!(
                        "{} on {}{}",
                        g.vm_id,
                        g.proxmox_node,
                        if l.running { ", running" } else { "" }
                    )),
                    None,
                ));
            }
            let role = if g.control_plane {
                "control plane"
            } else {
                "worker"
            };
            let mut reason = format!(
                "remove node {} ({role}, not in homelab.yaml): {}",
                g.name,
                what.join(", then ")
            );
            step = step.requires("vm_digest", vm_digest(live.as_ref()));
            if member {
                removing.insert(g.name.clone());
                let verdict = if desired::control_planes(self.config).count() == 0 {
                    Quorum::LastControlPlane
                } else {
                    quorum_after(&view.voters, &view.live, &removing)
                };
                reason = format!("{reason}; {}", verdict.note());
                step = step.requires(QUORUM_FACT, verdict.fact());
            }
            steps.push(step.because(reason));
        }
        Ok(steps)
    }

    /// The removal step: re-checks the VM and etcd's quorum, retires the node, and forgets it.
    pub(crate) async fn apply_remove(
        &self,
        name: &str,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let resource = planned.address.clone();
        if self.config.nodes.iter().any(|n| n.name == name) {
            return Err(EngineError::Stale {
                resource,
                message: format!("homelab.yaml names {name} again"),
            });
        }
        let Some(record) = run.journal.nodes.get(name).cloned() else {
            // Forgotten by an earlier run that finished the removal.
            return Ok(());
        };
        let g = Retiree::from_record(name, &record);
        let peers = self.etcd_peers(&run.journal);
        self.retire_checked(&resource, &g, planned, &peers).await?;
        run.journal.forget(name);
        let _ = run.journal.save(&self.state_dir);
        Ok(())
    }

    /// Retires `g` after checking, just before acting, that its VM is as planned (or gone: an earlier run
    /// got further) and that etcd keeps its quorum without it.
    async fn retire_checked(
        &self,
        resource: &str,
        g: &Retiree,
        planned: &Step,
        peers: &[(String, SocketAddr)],
    ) -> Result<(), EngineError> {
        let live = self.retiree_vm(resource, g).await?;
        // Only the VM is compared with the plan: etcd's quorum is checked afresh below (an earlier removal in
        // the same plan changed the membership the plan saw, and that is what was planned).
        if live.is_some()
            && let Some(p) = planned.preconditions.iter().find(|p| p.fact == "vm_digest")
        {
            let now = vm_digest(live.as_ref());
            if p.value != now {
                return Err(EngineError::Stale {
                    resource: resource.to_string(),
                    message: format!("vm_digest was {} when planned, is {now} now", p.value),
                });
            }
        }
        if g.control_plane {
            let view = self.etcd_view(peers).await;
            if view.members.contains(&g.name) {
                let verdict =
                    quorum_after(&view.voters, &view.live, &BTreeSet::from([g.name.clone()]));
                if let Some(refused) = verdict.refusal(resource, &g.name) {
                    return Err(refused);
                }
            }
        }
        let since = self.started(resource, "retire");
        self.retire(resource, g, live, peers).await?;
        self.finished(resource, "retire", since);
        Ok(())
    }

    /// Takes `g` out of etcd and Kubernetes, resets Talos and deletes its VM; each part is skipped when it
    /// is done already, and each is its own step event (a rerun after a kill continues where it stopped).
    async fn retire(
        &self,
        resource: &str,
        g: &Retiree,
        live: Option<VmLive>,
        peers: &[(String, SocketAddr)],
    ) -> Result<(), EngineError> {
        let others: Vec<(String, SocketAddr)> = peers
            .iter()
            .filter(|(n, _)| n != &g.name)
            .cloned()
            .collect();
        // Asked of the others first (a member that left stops its etcd), then of the node itself; when no
        // one answers the node counts as a member still, so it is never skipped on a passing failure.
        let mut asked = others.clone();
        asked.extend(peers.iter().filter(|(n, _)| n == &g.name).cloned());
        if g.control_plane && self.etcd_view(&asked).await.members.contains(&g.name) {
            if self.answers_installed(g.at).await {
                let since = self.started(resource, "etcd leave");
                self.retried(resource, "leave etcd", || self.talos.etcd_leave(g.at))
                    .await?;
                self.finished(resource, "etcd leave", since);
            } else {
                let since = self.started(resource, "etcd remove member");
                self.remove_member_through(resource, &g.name, &others)
                    .await?;
                self.finished(resource, "etcd remove member", since);
            }
        }
        let kubeconfig = self
            .retried(resource, "get the kubeconfig", || self.kubeconfig())
            .await?;
        let nodes = self
            .retried(resource, "list the Nodes", || self.kube.nodes(&kubeconfig))
            .await?;
        if nodes.iter().any(|n| n.name == g.name) {
            let since = self.started(resource, "drain");
            self.retried(resource, "cordon the node", || {
                self.kube.cordon(&kubeconfig, &g.name)
            })
            .await?;
            // Not retried: a drain waits for its own timeout and names the pods still there.
            let drained = self.port(
                resource,
                self.kube
                    .drain(
                        &kubeconfig,
                        &g.name,
                        self.timeouts.drain,
                        self.timeouts.poll,
                    )
                    .await,
            )?;
            self.events.info(
                resource,
                if drained.evicted.is_empty() {
                    "drained: no pod to evict".to_string()
                } else {
                    format!("drained: evicted {}", drained.evicted.join(", "))
                },
            );
            self.finished(resource, "drain", since);
            let since = self.started(resource, "delete node");
            self.retried(resource, "delete the Node", || {
                self.kube.delete_node(&kubeconfig, &g.name)
            })
            .await?;
            self.finished(resource, "delete node", since);
        }
        if self.answers_installed(g.at).await {
            let since = self.started(resource, "reset");
            match self.talos.reset(g.at).await {
                Ok(()) => {
                    let r = self
                        .waited(
                            resource,
                            &format!("{} to finish its reset", g.name),
                            "a graceful reset wipes STATE and EPHEMERAL, then the node reboots",
                            self.timeouts.install,
                            || async { Ok((!self.answers_installed(g.at).await).then_some(())) },
                        )
                        .await;
                    if let Err(e) = r {
                        self.events
                            .warn(resource, format!("{}; deleting the VM anyway", e.message));
                    }
                }
                Err(e) => self.events.warn(
                    resource,
                    format!("Talos reset failed ({}); deleting the VM anyway", e.message),
                ),
            }
            self.finished(resource, "reset", since);
        }
        // Read again: the reset may have rebooted it, and an earlier run may have deleted it.
        let live = match live {
            Some(_) => self.retiree_vm(resource, g).await?,
            None => None,
        };
        if let Some(live) = live {
            let since = self.started(resource, "delete vm");
            self.remove_vm(resource, &g.proxmox_node, g.vm_id, live.running)
                .await?;
            self.finished(resource, "delete vm", since);
        }
        Ok(())
    }

    /// Removes member `name` through the first of `others` that does it.
    async fn remove_member_through(
        &self,
        resource: &str,
        name: &str,
        others: &[(String, SocketAddr)],
    ) -> Result<(), EngineError> {
        let mut last = None;
        for (peer, at) in others {
            match self.talos.etcd_remove_member(*at, name).await {
                Ok(()) => {
                    self.events.info(
                        resource,
                        format!("etcd member {name} removed through {peer}"),
                    );
                    return Ok(());
                }
                Err(e) => last = Some(format!("{peer}: {}", e.message)),
            }
        }
        Err(EngineError::Refused {
            resource: resource.to_string(),
            message: format!(
                "no healthy control plane removed etcd member {name} ({})",
                last.unwrap_or_else(|| "none left".into())
            ),
            hint: "check `homelabctl etcd members` and `homelabctl status`, then run again".into(),
        })
    }

    /// The replacement step's diff for `node`, while its replacement is being asked for or retires the old
    /// node (`None` once the old one is gone: the normal steps build the new one).
    pub(crate) async fn plan_replace(
        &self,
        node: &Node,
        journal: &Journal,
    ) -> Result<Option<Step>, EngineError> {
        if journal.replacing.get(&node.name) != Some(&ReplacePhase::Retiring) {
            return Ok(None);
        }
        let resource = format!("replace.{}", node.name);
        let g = Retiree::from_node(node);
        let live = self.retiree_vm(&resource, &g).await?;
        let mut step = ResourceChange::new(&resource, Action::Replace).because(format!(
            "replace node {} as `homelabctl replace` asked: {}drain it, reset Talos and delete VM {}, then \
             create it anew with the same VM id, MAC and address; it installs and joins{}",
            node.name,
            if g.control_plane { "leave etcd, " } else { "" },
            node.vm_id,
            if g.control_plane {
                " etcd again"
            } else {
                " the cluster again"
            }
        ));
        step = step.requires("vm_digest", vm_digest(live.as_ref()));
        Ok(Some(step))
    }

    /// The replacement step: retires the old node (quorum re-checked), then hands over to the VM step,
    /// which creates the new VM.
    pub(crate) async fn apply_replace(
        &self,
        node: &Node,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        if run.journal.replacing.get(&node.name) != Some(&ReplacePhase::Retiring) {
            return Ok(());
        }
        let resource = planned.address.clone();
        let g = Retiree::from_node(node);
        let peers = self.etcd_peers(&run.journal);
        self.retire_checked(&resource, &g, planned, &peers).await?;
        // The new VM has a blank disk: the config the old one took is gone with it.
        run.journal.machine_configs.remove(&node.name);
        run.journal.upgrades.remove(&node.name);
        run.journal
            .replacing
            .insert(node.name.clone(), ReplacePhase::Rebuilding);
        let _ = run.journal.save(&self.state_dir);
        Ok(())
    }

    /// Whether `name` may be replaced: homelab.yaml names it, its VM exists and is ours, and (a control
    /// plane) every other control plane is a healthy voting etcd member. `Ok(true)` when a replacement is
    /// already under way (an earlier run was interrupted): it is continued, not checked again.
    pub async fn check_replace(&self, name: &str) -> Result<bool, EngineError> {
        let resource = format!("replace.{name}");
        let node = self
            .config
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| EngineError::Refused {
                resource: resource.clone(),
                message: format!("homelab.yaml has no node named {name}"),
                hint: format!(
                    "the nodes are: {}",
                    self.config
                        .nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let journal = Journal::load(&self.state_dir);
        if journal.replacing.contains_key(name) {
            return Ok(true);
        }
        match self
            .retiree_vm(&resource, &Retiree::from_node(node))
            .await?
        {
            None => {
                return Err(EngineError::Refused {
                    resource,
                    message: format!("{name} has no VM {} to replace", node.vm_id),
                    hint: "`homelabctl apply` creates it".into(),
                });
            }
            Some(l)
                if !l.tags.iter().any(|t| t == OWNER_TAG) && !journal.vms.contains_key(name) =>
            {
                return Err(refuse_not_ours(&resource, node.vm_id));
            }
            Some(_) => {}
        }
        if node.role == Role::Controlplane {
            self.refuse_unhealthy_control_planes(&resource, node, &journal)
                .await?;
        }
        Ok(false)
    }

    /// Records the intent to replace `name` (checked with [`Self::check_replace`] first), so apply — and any
    /// rerun after an interruption — retires the old node and builds the new one.
    pub async fn begin_replace(&self, name: &str) -> Result<(), EngineError> {
        if self.check_replace(name).await? {
            self.events.info(
                &format!("replace.{name}"),
                "continuing the replacement an earlier run started",
            );
            return Ok(());
        }
        let mut journal = Journal::load(&self.state_dir);
        journal
            .replacing
            .insert(name.to_string(), ReplacePhase::Retiring);
        journal
            .save(&self.state_dir)
            .map_err(|e| EngineError::Step {
                resource: format!("replace.{name}"),
                message: format!("cannot record the replacement in the journal: {e}"),
                kind: crate::ports::ErrorKind::Other,
            })
    }

    /// Replacing a control plane takes it out of etcd for a while: every other one must be a voting member
    /// that answers, or the cluster loses its quorum on the way.
    async fn refuse_unhealthy_control_planes(
        &self,
        resource: &str,
        node: &Node,
        journal: &Journal,
    ) -> Result<(), EngineError> {
        let view = self.etcd_view(&self.etcd_peers(journal)).await;
        let unhealthy: Vec<String> = desired::control_planes(self.config)
            .filter(|n| n.name != node.name)
            .filter(|n| !view.voters.contains(&n.name) || !view.live.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        let others = desired::control_planes(self.config).count() - 1;
        if others == 0 {
            return Err(EngineError::Refused {
                resource: resource.to_string(),
                message: format!(
                    "{} is the only control plane: replacing it would end etcd and the cluster",
                    node.name
                ),
                hint: "add control planes first (three keep quorum through a replacement), or restore from \
                       a snapshot with `homelabctl etcd restore`"
                    .into(),
            });
        }
        if !unhealthy.is_empty() {
            return Err(EngineError::Refused {
                resource: resource.to_string(),
                message: format!(
                    "replacing {} takes it out of etcd, and {} {} not a healthy voting member: etcd would lose \
                     its quorum",
                    node.name,
                    unhealthy.join(", "),
                    if unhealthy.len() == 1 { "is" } else { "are" }
                ),
                hint:
                    "bring every other control plane back first (`homelabctl status`), then replace"
                        .into(),
            });
        }
        Ok(())
    }
}

/// A VM homelabctl did not create (no `homelabctl` tag, no journal record) is never deleted.
pub(crate) fn refuse_not_ours(resource: &str, vm_id: u32) -> EngineError {
    EngineError::Refused {
        resource: resource.to_string(),
        message: format!(
            "VM {vm_id} carries no `{OWNER_TAG}` tag and the journal does not record creating it: it is not \
             ours, and is left alone"
        ),
        hint:
            "if homelabctl should manage it, add the tag in Proxmox (`qm set ID --tags homelabctl`)"
                .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn set(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn removing_one_of_three_healthy_members_keeps_quorum_with_no_margin_left() {
        let voters = names(&["a", "b", "c"]);
        let q = quorum_after(&voters, &set(&["a", "b", "c"]), &set(&["c"]));
        assert_eq!(
            q,
            Quorum::Kept {
                remaining: 2,
                tolerates: 0
            }
        );
        assert_eq!(
            q.note(),
            "what remains (2 control planes) tolerates no further failure"
        );
    }

    #[test]
    fn a_member_that_is_down_counts_against_the_quorum() {
        let voters = names(&["a", "b", "c"]);
        // c is down: removing b leaves a and c, of which one is up.
        assert_eq!(
            quorum_after(&voters, &set(&["a", "b"]), &set(&["b"])),
            Quorum::Lost {
                remaining: 2,
                up: 1
            }
        );
        // Removing c itself (the one down) keeps the two that are up.
        assert!(matches!(
            quorum_after(&voters, &set(&["a", "b"]), &set(&["c"])),
            Quorum::Kept { remaining: 2, .. }
        ));
    }

    #[test]
    fn removing_the_last_member_is_refused_and_points_to_destroy() {
        let q = quorum_after(&names(&["a"]), &set(&["a"]), &set(&["a"]));
        assert_eq!(q, Quorum::LastControlPlane);
        let e = q.refusal("remove.a", "a").expect("refused");
        assert!(e.hint().is_some_and(|h| h.contains("homelabctl destroy")));
    }

    #[test]
    fn five_members_tolerate_one_more_after_a_removal() {
        let all = ["a", "b", "c", "d", "e"];
        let q = quorum_after(&names(&all), &set(&all), &set(&["e"]));
        assert_eq!(
            q,
            Quorum::Kept {
                remaining: 4,
                tolerates: 1
            }
        );
    }
}
