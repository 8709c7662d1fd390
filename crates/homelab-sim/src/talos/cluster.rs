//! What simulated nodes of one cluster share, keyed by the cluster's OS CA certificate: the OS
//! CA key and where trustd answers (a worker's config has only the certificate; a real worker
//! gets its apid certificate from trustd, dialled at the control-plane endpoint or at control
//! planes found by discovery), etcd membership (one bootstrap, the other control planes join
//! through the control-plane endpoint, as learners first), where the Kubernetes API answers, the
//! holder of the Layer 2 VIP (elected among etcd members while etcd has quorum), and the kubelets
//! that register with the API once the endpoint in their config answers.
//!
//! It also records the cluster's health after every change it sees ([`ClusterHealth`]): each
//! moment etcd lost quorum and each moment the VIP had no holder while a control plane's API
//! answered, so tests of node removal and replacement can assert that neither happened.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::node::Inner;
use crate::kube::{KubeNode, KubeSim, WeakKubeSim};

/// Who serves the API at the VIP in [`Cluster::serving`].
const VIP: &str = "(vip)";

/// etcd's `rpctypes` errors as a client prints them.
pub(crate) const ETCD_NO_LEADER: &str = "etcdserver: no leader";
pub(crate) const ETCD_MEMBER_NOT_FOUND: &str = "etcdserver: member not found";
pub(crate) const ETCD_NOT_ENOUGH_STARTED: &str =
    "etcdserver: re-configuration failed due to not enough started members";
pub(crate) const ETCD_UNHEALTHY: &str = "etcdserver: unhealthy cluster";

struct Kubelet {
    node: KubeNode,
    /// The API endpoint the kubelet dials (`cluster.controlPlane.endpoint`); `None` registers with
    /// whatever API runs (tests whose API servers listen on ephemeral ports).
    endpoint: Option<(String, u16)>,
    registered: bool,
}

#[derive(Default)]
struct Cluster {
    os_ca_key_pem: Option<String>,
    /// The store of the cluster's API (what etcd holds).
    kube: Option<WeakKubeSim>,
    kubelets: BTreeMap<String, Kubelet>,
    /// Where an API server answers, by the node serving it (or [`VIP`]).
    serving: BTreeMap<String, SocketAddr>,
    /// etcd members by name, with their address.
    etcd: BTreeMap<String, IpAddr>,
    /// Members whose etcd runs now.
    etcd_up: BTreeSet<String>,
    /// How many times etcd was bootstrapped (more than once is a split brain).
    bootstraps: u32,
    /// Members configured with a Layer2VIPConfig.
    vip_candidates: BTreeMap<String, Weak<Inner>>,
    vip_holder: Option<String>,
    /// The VIP's address while its holder serves there.
    vip_ip: Option<IpAddr>,
    /// Control planes whose trustd runs (from their installed boot on, etcd or not), by name.
    trustd: BTreeMap<String, IpAddr>,
    /// Members that joined as etcd learners: since when, and how long until their promotion.
    learners: BTreeMap<String, (Instant, Duration)>,
    /// Control planes down (powered off or rebooting) now, and the most ever down at once.
    control_planes_down: BTreeSet<String>,
    max_control_planes_down: usize,
    /// What the control planes' static pods run, and who restarts them now.
    static_pods: super::kubernetes::StaticPods,
    /// Members removed from etcd whose data directory still names them: their etcd refuses to
    /// start again ("the member has been permanently removed from the cluster").
    removed: BTreeSet<String>,
    /// The control planes' nodes (registered when their trustd starts), so that etcd removing a
    /// running member reaches the node it runs on.
    control_plane_nodes: HashMap<String, Weak<Inner>>,
    /// Whether etcd had quorum once (before its bootstrap, no quorum is no loss).
    had_quorum: bool,
    /// The state at the last observation: without quorum, without a VIP holder.
    without_quorum: bool,
    without_vip: bool,
    health: ClusterHealth,
}

/// What the lab saw go wrong in a cluster, counted at every change of etcd membership, member
/// liveness (VM stop, reboot, reset, leave, removal, join) and of the VIP's holder.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Moments etcd went without quorum (fewer running voting members than `members/2+1`) after
    /// it had quorum once; a loss lasting over several changes counts once.
    pub quorum_losses: u32,
    /// Moments the Layer 2 VIP had no holder while some control plane's API server answered
    /// (clusters without a VIP never count).
    pub vip_gaps: u32,
}

impl std::ops::Add for ClusterHealth {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            quorum_losses: self.quorum_losses + other.quorum_losses,
            vip_gaps: self.vip_gaps + other.vip_gaps,
        }
    }
}

/// How a worker reached trustd for its apid certificate (Talos' `k8s.Endpoint` sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustdRoute {
    /// `cluster.controlPlane.endpoint` names a control plane's own address.
    StaticEndpoint,
    /// `cluster.controlPlane.endpoint` is the Layer 2 VIP, held (etcd runs).
    Vip,
    /// A control plane found through the discovery service.
    Discovery,
}

/// One etcd member as `EtcdMemberList` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// etcd's member id (stable per node, known before the name is)
    pub(crate) id: u64,
    /// empty while a learner has not started yet (etcd knows only its peer URL)
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
    pub(crate) learner: bool,
}

/// A node that won the VIP election and must now take the address.
pub(crate) struct VipWinner {
    pub(crate) node: Weak<Inner>,
    pub(crate) name: String,
    pub(crate) os_ca_pem: String,
}

/// What the simulated clusters of one lab share, keyed by their OS CA certificate. The lab owns
/// one and hands it to every node it makes ([`super::NodeOptions::clusters`]); nodes of
/// different labs (or of a test that makes its own) never see each other's etcd or VIP.
#[derive(Default)]
pub struct ClusterRegistry {
    clusters: Mutex<HashMap<String, Cluster>>,
}

impl std::fmt::Debug for ClusterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRegistry")
            .field("clusters", &self.lock().len())
            .finish()
    }
}

/// The etcd member id of a node: stable per name, as etcd keeps a member's id across its restarts.
pub(crate) fn member_id(name: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id)
}

impl Cluster {
    fn live_kube(&mut self) -> Option<KubeSim> {
        let kube = self.kube.as_ref().and_then(WeakKubeSim::upgrade);
        if kube.is_none() {
            self.kube = None;
        }
        kube
    }

    /// Whether `name` is still an etcd learner (promotion happens once it caught up).
    fn learning(&mut self, name: &str) -> Option<Duration> {
        let (since, promote_after) = *self.learners.get(name)?;
        let elapsed = since.elapsed();
        if elapsed >= promote_after {
            self.learners.remove(name);
            return None;
        }
        Some(elapsed)
    }

    /// etcd has quorum: more than half of the voting members run (learners do not vote).
    fn quorum(&mut self) -> bool {
        let names: Vec<String> = self.etcd.keys().cloned().collect();
        let voters: Vec<String> = names
            .into_iter()
            .filter(|n| self.learning(n).is_none())
            .collect();
        let up = voters.iter().filter(|n| self.etcd_up.contains(*n)).count();
        !voters.is_empty() && up * 2 > voters.len()
    }

    /// etcd's `mayRemoveMember`: no leader without quorum; a learner goes freely; the last voter
    /// never (`IsReadyToRemoveVotingMember`: every voter here has started once, a member never
    /// started is not modelled); a voter that is down goes freely; a running one only if the
    /// running voters left still make a quorum.
    fn remove_refusal(&mut self, name: &str) -> Option<&'static str> {
        if !self.quorum() {
            return Some(ETCD_NO_LEADER);
        }
        if !self.etcd.contains_key(name) {
            return Some(ETCD_MEMBER_NOT_FOUND);
        }
        if self.learning(name).is_some() {
            return None;
        }
        let names: Vec<String> = self.etcd.keys().cloned().collect();
        let voters: Vec<String> = names
            .into_iter()
            .filter(|n| self.learning(n).is_none())
            .collect();
        if voters.len() <= 1 {
            return Some(ETCD_NOT_ENOUGH_STARTED);
        }
        if !self.etcd_up.contains(name) {
            return None;
        }
        let active = voters.iter().filter(|v| self.etcd_up.contains(*v)).count();
        if active.saturating_sub(1) < 1 + (voters.len() - 1) / 2 {
            return Some(ETCD_UNHEALTHY);
        }
        None
    }

    /// Records a moment without quorum or without a VIP holder, when this change began one.
    fn observe(&mut self) {
        let quorum = self.quorum();
        self.had_quorum |= quorum;
        let without_quorum = self.had_quorum && !quorum;
        if without_quorum && !self.without_quorum {
            self.health.quorum_losses += 1;
        }
        self.without_quorum = without_quorum;
        // An API server answering is what a Ready control plane offers behind the VIP.
        let api_answers = self.serving.keys().any(|k| k != VIP);
        let without_vip =
            !self.vip_candidates.is_empty() && api_answers && self.vip_holder.is_none();
        if without_vip && !self.without_vip {
            self.health.vip_gaps += 1;
        }
        self.without_vip = without_vip;
    }

    fn served(&self, endpoint: &(String, u16)) -> bool {
        self.serving
            .values()
            .any(|a| a.port() == endpoint.1 && a.ip().to_string() == endpoint.0)
    }

    /// Registers every kubelet whose endpoint answers (the kubelet's own retry loop).
    fn reconcile(&mut self) {
        let Some(kube) = self.live_kube() else {
            return;
        };
        let serving = !self.serving.is_empty();
        let ready: Vec<String> = self
            .kubelets
            .iter()
            .filter(|(_, k)| !k.registered)
            .filter(|(_, k)| match &k.endpoint {
                Some(e) => self.served(e),
                None => serving,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in ready {
            if let Some(k) = self.kubelets.get_mut(&name) {
                kube.upsert_node(k.node.clone());
                k.registered = true;
            }
        }
    }

    /// etcd and the API server of `name` stopped: a VIP it held is given up and another holder
    /// elected (returned, to take the address).
    fn etcd_and_api_stopped(&mut self, name: &str) -> Option<(String, Weak<Inner>)> {
        self.serving.remove(name);
        self.etcd_up.remove(name);
        if self.vip_holder.as_deref() == Some(name) {
            self.vip_holder = None;
            self.vip_ip = None;
            self.serving.remove(VIP);
        }
        self.elect()
    }

    /// Elects a VIP holder among the running candidates if nobody holds it and etcd has quorum.
    fn elect(&mut self) -> Option<(String, Weak<Inner>)> {
        if self.vip_holder.is_some() || !self.quorum() {
            return None;
        }
        let (name, node) = self
            .vip_candidates
            .iter()
            .find(|(name, node)| self.etcd_up.contains(*name) && node.strong_count() > 0)
            .map(|(name, node)| (name.clone(), node.clone()))?;
        self.vip_holder = Some(name.clone());
        Some((name, node))
    }
}

impl ClusterRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Cluster>> {
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads or changes a cluster; every change is observed for [`ClusterHealth`].
    fn with<R>(&self, os_ca_pem: &str, f: impl FnOnce(&mut Cluster) -> R) -> R {
        let mut clusters = self.lock();
        let cluster = clusters.entry(os_ca_pem.to_owned()).or_default();
        let r = f(cluster);
        cluster.observe();
        r
    }

    /// What went wrong in the cluster of this OS CA so far.
    pub(crate) fn health(&self, os_ca_pem: &str) -> ClusterHealth {
        self.with(os_ca_pem, |c| c.health)
    }

    /// What went wrong so far, summed over every cluster of the lab.
    pub fn total_health(&self) -> ClusterHealth {
        let mut clusters = self.lock();
        clusters
            .values_mut()
            .map(|c| {
                c.observe();
                c.health
            })
            .fold(ClusterHealth::default(), |a, b| a + b)
    }

    fn winner(os_ca_pem: &str, elected: Option<(String, Weak<Inner>)>) -> Option<VipWinner> {
        elected.map(|(name, node)| VipWinner {
            node,
            name,
            os_ca_pem: os_ca_pem.to_owned(),
        })
    }

    /// Reads or changes the static pods' state of a cluster.
    pub(crate) fn static_pods<R>(
        &self,
        os_ca_pem: &str,
        f: impl FnOnce(&mut super::kubernetes::StaticPods) -> R,
    ) -> R {
        self.with(os_ca_pem, |c| f(&mut c.static_pods))
    }

    /// A control plane published the OS CA key (what trustd serves to workers).
    pub(crate) fn record_os_ca_key(&self, os_ca_pem: &str, key_pem: String) {
        self.with(os_ca_pem, |c| c.os_ca_key_pem = Some(key_pem));
    }

    /// The OS CA key, if a control plane of this cluster was installed.
    pub(crate) fn os_ca_key(&self, os_ca_pem: &str) -> Option<String> {
        self.with(os_ca_pem, |c| c.os_ca_key_pem.clone())
    }

    /// A node is up: its kubelet registers with the API once its endpoint answers.
    pub(crate) fn kubelet_up(
        &self,
        os_ca_pem: &str,
        node: KubeNode,
        endpoint: Option<(String, u16)>,
    ) {
        self.with(os_ca_pem, |c| {
            c.control_planes_down.remove(&node.name);
            c.kubelets.insert(
                node.name.clone(),
                Kubelet {
                    node,
                    endpoint,
                    registered: false,
                },
            );
            c.reconcile();
        });
    }

    /// A node powered off: its Node object turns NotReady, its API server and etcd stop, and a
    /// VIP it held moves to another member (returned: the caller makes it take the address).
    pub(crate) fn down(&self, os_ca_pem: &str, name: &str) -> Option<VipWinner> {
        let elected = self.with(os_ca_pem, |c| {
            if c.kubelets.get(name).is_some_and(|k| k.node.control_plane) {
                c.control_planes_down.insert(name.to_owned());
                c.max_control_planes_down =
                    c.max_control_planes_down.max(c.control_planes_down.len());
            }
            if let Some(k) = c.kubelets.get_mut(name) {
                k.node.ready = false;
                let node = k.node.clone();
                // The node lifecycle controller marks it NotReady; a deleted Node stays deleted.
                if let Some(kube) = c.live_kube() {
                    kube.update_node_status(node);
                }
            }
            c.trustd.remove(name);
            c.etcd_and_api_stopped(name)
        });
        Self::winner(os_ca_pem, elected)
    }

    /// A node was reset (its disk wiped): it goes down and its kubelet no longer runs. A graceful
    /// reset left etcd first (`left_etcd`); otherwise the member stays, down, until someone removes
    /// it. Talos never deletes the Node object: it stays, NotReady (deleting it is the operator's job).
    pub(crate) fn reset(&self, os_ca_pem: &str, name: &str, left_etcd: bool) -> Option<VipWinner> {
        if left_etcd {
            // Talos leaves etcd before it stops anything: the member is gone before it goes
            // down, so two members of three never look like one running of three.
            self.forget_member(os_ca_pem, name);
        }
        let winner = self.down(os_ca_pem, name);
        self.with(os_ca_pem, |c| {
            c.kubelets.remove(name);
            c.vip_candidates.remove(name);
        });
        winner
    }

    /// The node's etcd data directory was wiped (EPHEMERAL reset, or it left etcd: `left_etcd`):
    /// it is down; a member that did not leave stays one (down) until it is removed or rejoins.
    /// Its Node object stays (the node keeps its config and comes back).
    pub(crate) fn etcd_wiped(
        &self,
        os_ca_pem: &str,
        name: &str,
        left_etcd: bool,
    ) -> Option<VipWinner> {
        if left_etcd {
            self.forget_member(os_ca_pem, name);
        }
        self.down(os_ca_pem, name)
    }

    fn forget_member(&self, os_ca_pem: &str, name: &str) {
        self.with(os_ca_pem, |c| {
            if c.etcd.contains_key(name) {
                c.removed.insert(name.to_owned());
            }
            c.etcd.remove(name);
            c.etcd_up.remove(name);
            c.learners.remove(name);
        });
    }

    /// Why etcd refuses a `MemberRemove` of `name` now (etcd's error text), as etcd's
    /// `mayRemoveMember` with `--strict-reconfig-check` decides, or `None` when it allows it.
    pub(crate) fn remove_refusal(&self, os_ca_pem: &str, name: &str) -> Option<&'static str> {
        self.with(os_ca_pem, |c| c.remove_refusal(name))
    }

    /// The name of the member with `id`.
    pub(crate) fn member_named(&self, os_ca_pem: &str, id: u64) -> Option<String> {
        self.with(os_ca_pem, |c| {
            c.etcd.keys().find(|n| member_id(n) == id).cloned()
        })
    }

    /// Removes the member `name` (etcd's `MemberRemove`, once [`Self::remove_refusal`] allowed it).
    /// A member that was running learns of it at once and shuts down: its node is returned, for the
    /// caller to stop its etcd ([`Inner::etcd_removed`]).
    pub(crate) fn remove_member(&self, os_ca_pem: &str, name: &str) -> Option<Weak<Inner>> {
        let running = self.with(os_ca_pem, |c| c.etcd_up.contains(name));
        self.forget_member(os_ca_pem, name);
        running
            .then(|| self.with(os_ca_pem, |c| c.control_plane_nodes.get(name).cloned()))
            .flatten()
    }

    /// etcd stopped on `name` while the node runs on: its API server (which talks to the local etcd
    /// only) stops answering, and a VIP it held moves, as Talos' VIP operator gives the address up
    /// when etcd stops (a winner is returned: the caller makes it take the address).
    pub(crate) fn etcd_stopped(&self, os_ca_pem: &str, name: &str) -> Option<VipWinner> {
        let elected = self.with(os_ca_pem, |c| c.etcd_and_api_stopped(name));
        Self::winner(os_ca_pem, elected)
    }

    /// Whether `name` may be upgraded as Talos checks it: etcd has quorum and every member is up.
    /// The error reads like Talos' refusal.
    pub(crate) fn etcd_healthy_for_upgrade(&self, os_ca_pem: &str) -> Result<(), String> {
        self.with(os_ca_pem, |c| {
            if let Some(down) = c.etcd.keys().find(|m| !c.etcd_up.contains(*m)) {
                return Err(format!(
                    "error validating etcd for upgrade: etcd member {down} is not healthy; all members must be healthy to perform an upgrade"
                ));
            }
            if !c.quorum() {
                return Err("error validating etcd for upgrade: etcd has no quorum".into());
            }
            Ok(())
        })
    }

    /// The etcd leader: the first running member while etcd has quorum.
    pub(crate) fn leader(&self, os_ca_pem: &str) -> Option<String> {
        self.with(os_ca_pem, |c| {
            if !c.quorum() {
                return None;
            }
            c.etcd.keys().find(|m| c.etcd_up.contains(*m)).cloned()
        })
    }

    /// The most control planes that were down at the same moment.
    pub(crate) fn max_control_planes_down(&self, os_ca_pem: &str) -> usize {
        self.with(os_ca_pem, |c| c.max_control_planes_down)
    }

    /// etcd was bootstrapped on `name`: a new etcd cluster with that single member.
    pub(crate) fn bootstrap(&self, os_ca_pem: &str, name: &str, ip: IpAddr) {
        self.with(os_ca_pem, |c| {
            c.bootstraps += 1;
            c.removed.clear();
            c.etcd = BTreeMap::from([(name.to_owned(), ip)]);
            c.etcd_up = BTreeSet::from([name.to_owned()]);
            c.learners.clear();
        });
    }

    /// Whether a joining control plane can reach etcd: members with quorum, found through the
    /// control-plane endpoint (Talos asks the API at the endpoint for the control planes).
    pub(crate) fn can_join(&self, os_ca_pem: &str, endpoint: Option<&(String, u16)>) -> bool {
        self.with(os_ca_pem, |c| {
            c.quorum()
                && match endpoint {
                    Some(e) => c.served(e),
                    None => !c.serving.is_empty(),
                }
        })
    }

    /// `name` joined etcd as a learner, promoted to a voter after `learning` (Talos adds a
    /// joining member with `MemberAddAsLearner` and promotes it once it caught up with the
    /// leader). A member of the same name is replaced, as Talos does.
    pub(crate) fn add_member(&self, os_ca_pem: &str, name: &str, ip: IpAddr, learning: Duration) {
        self.with(os_ca_pem, |c| {
            c.removed.remove(name);
            c.etcd.insert(name.to_owned(), ip);
            c.etcd_up.insert(name.to_owned());
            if learning.is_zero() {
                c.learners.remove(name);
            } else {
                c.learners
                    .insert(name.to_owned(), (Instant::now(), learning));
            }
        });
    }

    /// A member's etcd runs again after a reboot; its data directory makes it a member (also
    /// when this process learns of the cluster only now, from a restored node). `false` when the
    /// member was removed meanwhile: its etcd does not start.
    pub(crate) fn member_up(&self, os_ca_pem: &str, name: &str, ip: IpAddr) -> bool {
        self.with(os_ca_pem, |c| {
            if c.removed.contains(name) {
                return false;
            }
            c.etcd.insert(name.to_owned(), ip);
            c.etcd_up.insert(name.to_owned());
            true
        })
    }

    /// The etcd members, by name (voters and learners).
    pub(crate) fn members(&self, os_ca_pem: &str) -> Vec<(String, IpAddr)> {
        self.with(os_ca_pem, |c| {
            c.etcd.iter().map(|(n, ip)| (n.clone(), *ip)).collect()
        })
    }

    /// The members as etcd's MemberList reports them: a learner is unnamed for the first half
    /// of its learning time (its etcd has not started and published its name yet).
    pub(crate) fn member_list(&self, os_ca_pem: &str) -> Vec<Member> {
        self.with(os_ca_pem, |c| {
            let all: Vec<(String, IpAddr)> =
                c.etcd.iter().map(|(n, ip)| (n.clone(), *ip)).collect();
            all.into_iter()
                .map(|(name, ip)| {
                    let learning = c.learning(&name);
                    let unnamed = learning.is_some_and(|elapsed| {
                        c.learners
                            .get(&name)
                            .is_some_and(|(_, total)| elapsed < *total / 2)
                    });
                    Member {
                        id: member_id(&name),
                        name: if unnamed { String::new() } else { name },
                        ip,
                        learner: learning.is_some(),
                    }
                })
                .collect()
        })
    }

    /// Whether etcd of this cluster has quorum (an etcd client gets answers).
    pub(crate) fn has_quorum(&self, os_ca_pem: &str) -> bool {
        self.with(os_ca_pem, Cluster::quorum)
    }

    /// A control plane's trustd answers at `ip` (it runs from the installed boot on).
    pub(crate) fn trustd_up(&self, os_ca_pem: &str, name: &str, ip: IpAddr, node: Weak<Inner>) {
        self.with(os_ca_pem, |c| {
            c.trustd.insert(name.to_owned(), ip);
            c.control_plane_nodes.insert(name.to_owned(), node);
        });
    }

    /// How a worker whose endpoint host is `endpoint_host` reaches a trustd, if it can: a
    /// control plane at that address, the VIP while held, or (with `discovery`) any control
    /// plane whose trustd runs.
    pub(crate) fn trustd_route(
        &self,
        os_ca_pem: &str,
        endpoint_host: Option<&str>,
        discovery: bool,
    ) -> Option<TrustdRoute> {
        self.with(os_ca_pem, |c| {
            let host = endpoint_host.and_then(|h| h.parse::<IpAddr>().ok());
            if host.is_some_and(|h| c.trustd.values().any(|ip| *ip == h)) {
                return Some(TrustdRoute::StaticEndpoint);
            }
            let vip_holder_trustd = c
                .vip_holder
                .as_ref()
                .is_some_and(|n| c.trustd.contains_key(n));
            if host.is_some() && host == c.vip_ip && vip_holder_trustd {
                return Some(TrustdRoute::Vip);
            }
            (discovery && !c.trustd.is_empty()).then_some(TrustdRoute::Discovery)
        })
    }

    /// How many times etcd of this cluster was bootstrapped.
    pub(crate) fn bootstraps(&self, os_ca_pem: &str) -> u32 {
        self.with(os_ca_pem, |c| c.bootstraps)
    }

    /// The cluster's API store, if some API server of it runs.
    pub(crate) fn live_kube(&self, os_ca_pem: &str) -> Option<KubeSim> {
        self.with(os_ca_pem, Cluster::live_kube)
    }

    /// A new API store started (etcd bootstrapped, or restarted with nothing else running):
    /// every kubelet registers again.
    pub(crate) fn kube_started(&self, os_ca_pem: &str, kube: &KubeSim) {
        self.with(os_ca_pem, |c| {
            c.kube = Some(kube.downgrade());
            for k in c.kubelets.values_mut() {
                k.registered = false;
            }
        });
    }

    /// A control plane's API server answers at `addr`; with a VIP configured it takes part in the
    /// election (a winner is returned: the caller makes it take the address).
    pub(crate) fn api_up(
        &self,
        os_ca_pem: &str,
        name: &str,
        addr: SocketAddr,
        vip_candidate: Option<Weak<Inner>>,
    ) -> Option<VipWinner> {
        let elected = self.with(os_ca_pem, |c| {
            c.serving.insert(name.to_owned(), addr);
            if let Some(node) = vip_candidate {
                c.vip_candidates.insert(name.to_owned(), node);
            }
            c.reconcile();
            c.elect()
        });
        Self::winner(os_ca_pem, elected)
    }

    /// The VIP holder took the address: the API answers there too.
    pub(crate) fn vip_taken(&self, os_ca_pem: &str, name: &str, addr: SocketAddr) {
        self.with(os_ca_pem, |c| {
            if c.vip_holder.as_deref() == Some(name) {
                c.serving.insert(VIP.to_owned(), addr);
                c.vip_ip = Some(addr.ip());
                c.reconcile();
            }
        });
    }

    /// The elected holder could not take the address: nobody holds it.
    pub(crate) fn vip_failed(&self, os_ca_pem: &str, name: &str) {
        self.with(os_ca_pem, |c| {
            if c.vip_holder.as_deref() == Some(name) {
                c.vip_holder = None;
            }
        });
    }

    /// The node holding the VIP, by name.
    pub(crate) fn vip_holder(&self, os_ca_pem: &str) -> Option<String> {
        self.with(os_ca_pem, |c| c.vip_holder.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_members() -> Cluster {
        let mut c = Cluster::default();
        for (i, name) in ["cp1", "cp2", "cp3"].into_iter().enumerate() {
            c.etcd
                .insert(name.into(), IpAddr::from([127, 0, 0, 11 + i as u8]));
            c.etcd_up.insert(name.into());
        }
        c
    }

    #[test]
    fn a_loss_of_quorum_counts_once_however_long_it_lasts() {
        let mut c = Cluster::default();
        c.observe();
        assert_eq!(c.health, ClusterHealth::default(), "before bootstrap");
        let mut c = three_members();
        c.observe();
        c.etcd_up.remove("cp2");
        c.observe();
        assert_eq!(c.health.quorum_losses, 0, "two of three");
        c.etcd_up.remove("cp3");
        c.observe();
        c.observe();
        assert_eq!(c.health.quorum_losses, 1);
        // Removing a stopped member brings quorum back; losing it again counts again.
        c.etcd.remove("cp3");
        c.etcd.remove("cp2");
        c.observe();
        c.etcd_up.remove("cp1");
        c.observe();
        assert_eq!(c.health.quorum_losses, 2);
    }

    #[test]
    fn etcd_refuses_removals_as_may_remove_member_does() {
        let mut c = three_members();
        assert_eq!(c.remove_refusal("cp3"), None, "all running");
        c.etcd_up.remove("cp3");
        assert_eq!(
            c.remove_refusal("cp2"),
            Some(ETCD_UNHEALTHY),
            "would leave one of three"
        );
        assert_eq!(c.remove_refusal("cp3"), None, "a member that is down goes");
        assert_eq!(c.remove_refusal("cp9"), Some(ETCD_MEMBER_NOT_FOUND));
        c.etcd.remove("cp3");
        assert_eq!(c.remove_refusal("cp2"), None, "two running: one may go");
        c.etcd.remove("cp2");
        assert_eq!(
            c.remove_refusal("cp1"),
            Some(ETCD_NOT_ENOUGH_STARTED),
            "the last voter"
        );
        c.learners
            .insert("cp4".into(), (Instant::now(), Duration::from_secs(3600)));
        c.etcd.insert("cp4".into(), IpAddr::from([127, 0, 0, 14]));
        assert_eq!(c.remove_refusal("cp4"), None, "a learner goes freely");
        c.etcd_up.remove("cp1");
        assert_eq!(c.remove_refusal("cp4"), Some(ETCD_NO_LEADER));
    }

    #[test]
    fn the_vip_counts_as_missing_only_while_an_api_server_answers() {
        let mut c = three_members();
        c.vip_candidates.insert("cp1".into(), Weak::new());
        c.observe();
        assert_eq!(c.health.vip_gaps, 0, "no API server yet");
        let api = SocketAddr::from(([127, 0, 0, 11], 6443));
        c.serving.insert("cp1".into(), api);
        c.observe();
        assert_eq!(c.health.vip_gaps, 1);
        c.vip_holder = Some("cp1".into());
        c.observe();
        c.vip_holder = None;
        c.observe();
        assert_eq!(c.health.vip_gaps, 2);
        let mut plain = three_members();
        plain.serving.insert("cp1".into(), api);
        plain.observe();
        assert_eq!(plain.health.vip_gaps, 0, "no VIP configured");
    }
}
