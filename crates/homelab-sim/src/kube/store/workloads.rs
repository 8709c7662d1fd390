//! The controllers a drain meets, run lazily on every request (the store has no clock of its own):
//! pod termination after the grace period (scaled down), pod garbage collection for Nodes that no
//! longer exist, the Deployment controller (one ReplicaSet per Deployment, its replicas and status),
//! the ReplicaSet controller (a replacement for every pod being deleted), the
//! DaemonSet controller (one pod per Node, cordoned or not), the scheduler (spreads a workload's
//! pods over Ready, schedulable Nodes whose taints they tolerate), the kubelet starting a scheduled
//! pod (Ready after a delay), the disruption controller's PodDisruptionBudget status, and the
//! `pods/eviction` subresource as kube-apiserver's `EvictionREST` answers it.
//!
//! Not modelled: the pod GC's 40 s quarantine (the pods of a deleted Node go at once), the node lifecycle
//! controller (pods on a NotReady Node stay Ready), a Deployment's rollout when its template changes
//! (its one ReplicaSet keeps the first template), and plain `DELETE` of a pod honouring its grace
//! period (only evictions do).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ApiError, Key, Store, now_secs, rfc3339};

/// How fast simulated pods live and die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeTiming {
    /// what one second of a pod's termination grace period takes
    pub grace_second: Duration,
    /// from scheduled to Ready
    pub ready_delay: Duration,
}

impl Default for KubeTiming {
    /// A 30 s grace period takes 300 ms; a scheduled pod is Ready after 200 ms.
    fn default() -> Self {
        Self {
            grace_second: Duration::from_millis(10),
            ready_delay: Duration::from_millis(200),
        }
    }
}

/// What the controllers remember between requests (not part of etcd's content).
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    pub(crate) timing: KubeTiming,
    /// pods being deleted: when their grace period ends
    terminating: BTreeMap<Key, Instant>,
    /// scheduled pods: when their containers turn Ready
    starting: BTreeMap<Key, Instant>,
    /// Nodes deleted through the API whose pods the pod GC removes (pods naming a Node that was
    /// never registered are left alone: the GC's quarantine outlasts a kubelet registering late)
    pub(crate) deleted_nodes: BTreeSet<String>,
}

const DEFAULT_GRACE_SECONDS: u64 = 30;

fn pod_key(ns: &str, name: &str) -> Key {
    (String::new(), "pods".into(), ns.to_owned(), name.to_owned())
}

fn is_deleting(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn is_ready(obj: &Value) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn is_mirror(pod: &Value) -> bool {
    pod["metadata"]["annotations"]
        .get("kubernetes.io/config.mirror")
        .is_some()
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))?["uid"]
        .as_str()
}

/// `metav1.LabelSelector` (matchLabels and matchExpressions) against an object's labels; an empty
/// or missing selector matches nothing, as a PodDisruptionBudget's does.
pub(crate) fn selector_matches(selector: &Value, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    let match_labels = selector["matchLabels"].as_object();
    let exprs = selector["matchExpressions"].as_array();
    if match_labels.is_none_or(|m| m.is_empty()) && exprs.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels[k] == *v);
    let exprs_ok = exprs.into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = labels[key].as_str();
        match e["operator"].as_str() {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// `intstr.GetScaledValueFromIntOrPercent(value, total, roundUp)`.
fn scaled(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let pct: i64 = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    let product = pct * total;
    Some(if round_up {
        (product + 99) / 100
    } else {
        product / 100
    })
}

/// `n` as `len` characters of [bcdfghjklmnpqrstvwxz2456789], the alphabet of generated name
/// suffixes and pod-template hashes upstream (`rand.SafeEncodeString`).
fn safe_suffix(n: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// A stable hash of a pod template (the `pod-template-hash` label of a Deployment's ReplicaSet).
fn template_hash(template: &Value) -> String {
    // FNV-1a over the template's JSON: stable across runs, unlike std's hasher.
    let hash = template
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    safe_suffix(hash, 10)
}

/// Whether a pod tolerates a node's taint (`effect` NoSchedule/NoExecute only matter here).
fn tolerates(pod: &Value, taint: &Value) -> bool {
    pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            let effect_ok = t["effect"]
                .as_str()
                .is_none_or(|e| e.is_empty() || taint["effect"] == e);
            let key = t["key"].as_str().unwrap_or_default();
            match t["operator"].as_str() {
                Some("Exists") => effect_ok && (key.is_empty() || taint["key"] == key),
                _ => effect_ok && taint["key"] == key && t["value"] == taint["value"],
            }
        })
}

fn schedulable_for(pod: &Value, node: &Value) -> bool {
    is_ready(node)
        && node["spec"]["unschedulable"].as_bool() != Some(true)
        && node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
            .all(|t| tolerates(pod, t))
}

fn node_ip(node: &Value) -> Value {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .map_or(Value::Null, |a| a["address"].clone())
}

fn owner_ref(kind: &str, obj: &Value) -> Value {
    json!([{
        "apiVersion": "apps/v1", "kind": kind,
        "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    }])
}

impl Store {
    /// How fast pods terminate and start from now on.
    pub(crate) fn set_timing(&mut self, timing: KubeTiming) {
        self.runtime.timing = timing;
    }

    fn of(&self, group: &str, plural: &str) -> Vec<(Key, Value)> {
        self.objects
            .iter()
            .filter(|((g, p, _, _), _)| g == group && p == plural)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes an object as a controller does (a new resourceVersion, nothing validated).
    fn controller_write(&mut self, key: Key, mut obj: Value) {
        if self.objects.get(&key) == Some(&obj) {
            return;
        }
        obj["metadata"]["resourceVersion"] = json!(self.bump());
        self.objects.insert(key, obj);
    }

    fn controller_remove(&mut self, key: &Key) {
        if self.objects.remove(key).is_some() {
            self.runtime.terminating.remove(key);
            self.runtime.starting.remove(key);
            self.bump();
        }
    }

    fn controller_create(&mut self, ns: &str, prefix: &str, mut pod: Value) {
        let name = loop {
            let rev = self.bump();
            let n: u64 = rev.parse().unwrap_or_default();
            let name = format!("{prefix}-{}", safe_suffix(n, 5));
            if !self.objects.contains_key(&pod_key(ns, &name)) {
                break name;
            }
        };
        let meta = &mut pod["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["uid"] = json!(super::uid(self.revision));
        meta["creationTimestamp"] = json!(rfc3339(now_secs()));
        meta["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(pod_key(ns, &name), pod);
    }

    /// Creates an object as a controller does (server-owned metadata filled in).
    fn controller_insert(&mut self, key: Key, mut obj: Value) {
        let rev = self.bump();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(super::uid(self.revision));
        meta["creationTimestamp"] = json!(rfc3339(now_secs()));
        meta["resourceVersion"] = json!(rev);
        self.objects.insert(key, obj);
    }

    /// Runs every controller once, as much as the time since the last request allows.
    pub(crate) fn reconcile(&mut self) {
        let now = Instant::now();
        let nodes: BTreeMap<String, Value> = self
            .of("", "nodes")
            .into_iter()
            .map(|(k, v)| (k.3, v))
            .collect();
        self.collect_pods(now, &nodes);
        self.deployments();
        self.replicasets();
        self.daemonsets(&nodes);
        self.schedule(now, &nodes);
        self.start_pods(now);
        self.budgets();
    }

    /// Pods whose grace period ended, and pods bound to a Node that no longer exists, go.
    fn collect_pods(&mut self, now: Instant, nodes: &BTreeMap<String, Value>) {
        let grace_second = self.runtime.timing.grace_second;
        for (key, pod) in self.of("", "pods") {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
            if !node.is_empty()
                && !nodes.contains_key(node)
                && self.runtime.deleted_nodes.contains(node)
            {
                self.controller_remove(&key);
                continue;
            }
            if !is_deleting(&pod) {
                continue;
            }
            let grace = pod["metadata"]["deletionGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(DEFAULT_GRACE_SECONDS);
            let ends = *self
                .runtime
                .terminating
                .entry(key.clone())
                .or_insert_with(|| now + grace_second * grace as u32);
            if now >= ends {
                self.controller_remove(&key);
            }
        }
    }

    /// Every Deployment owns one ReplicaSet (`NAME-HASH`, its pods labelled with the hash) of its
    /// replicas, and reports the ReplicaSet's readiness as its status.
    fn deployments(&mut self) {
        let sets = self.of("apps", "replicasets");
        for (key, deploy) in self.of("apps", "deployments") {
            let uid = deploy["metadata"]["uid"].as_str().unwrap_or_default();
            let want = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
            let owned = sets
                .iter()
                .find(|(k, rs)| k.2 == key.2 && controller_uid(rs) == Some(uid));
            let (ready, available) = match owned {
                Some((rs_key, rs)) => {
                    if rs["spec"]["replicas"].as_i64() != Some(want) {
                        let mut next = rs.clone();
                        next["spec"]["replicas"] = json!(want);
                        self.controller_write(rs_key.clone(), next);
                    }
                    (
                        rs["status"]["readyReplicas"].as_i64().unwrap_or(0),
                        rs["status"]["availableReplicas"].as_i64().unwrap_or(0),
                    )
                }
                None => {
                    let hash = template_hash(&deploy["spec"]["template"]);
                    let mut template = deploy["spec"]["template"].clone();
                    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                    let mut selector = deploy["spec"]["selector"].clone();
                    selector["matchLabels"]["pod-template-hash"] = json!(hash);
                    let name = format!("{}-{hash}", key.3);
                    let rs = json!({
                        "apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": name, "namespace": key.2, "labels": template["metadata"]["labels"],
                                     "ownerReferences": owner_ref("Deployment", &deploy), "generation": 1},
                        "spec": {"replicas": want, "selector": selector, "template": template},
                    });
                    self.controller_insert(
                        ("apps".into(), "replicasets".into(), key.2.clone(), name),
                        rs,
                    );
                    (0, 0)
                }
            };
            let mut next = deploy.clone();
            next["status"] = json!({
                "observedGeneration": deploy["metadata"]["generation"],
                "replicas": want, "updatedReplicas": want,
                "readyReplicas": ready, "availableReplicas": available,
                "unavailableReplicas": (want - available).max(0),
                "conditions": [{"type": "Available", "status": if available >= want { "True" } else { "False" },
                                "reason": if available >= want { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}],
            });
            self.controller_write(key, next);
        }
    }

    /// Every ReplicaSet keeps `spec.replicas` pods that are not being deleted.
    fn replicasets(&mut self) {
        let pods = self.of("", "pods");
        for (key, rs) in self.of("apps", "replicasets") {
            let uid = rs["metadata"]["uid"].as_str().unwrap_or_default();
            let owned: Vec<&Value> = pods
                .iter()
                .filter(|(k, p)| k.2 == key.2 && controller_uid(p) == Some(uid))
                .map(|(_, p)| p)
                .collect();
            let active = owned
                .iter()
                .filter(|p| !is_deleting(p) && !is_terminal(p))
                .count() as i64;
            let want = rs["spec"]["replicas"].as_i64().unwrap_or(1);
            for _ in active..want {
                let template = &rs["spec"]["template"];
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"labels": template["metadata"]["labels"], "ownerReferences": owner_ref("ReplicaSet", &rs)},
                    "spec": template["spec"],
                    "status": {"phase": "Pending"},
                });
                self.controller_create(&key.2, &key.3, pod);
            }
            let ready = owned
                .iter()
                .filter(|p| !is_deleting(p) && is_ready(p))
                .count();
            let mut next = rs.clone();
            next["status"] = json!({"replicas": active.max(want), "readyReplicas": ready,
                                    "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
            self.controller_write(key, next);
        }
    }

    /// Every DaemonSet runs one pod on every Node (cordoned Nodes too: its pods tolerate
    /// `node.kubernetes.io/unschedulable`).
    fn daemonsets(&mut self, nodes: &BTreeMap<String, Value>) {
        let pods = self.of("", "pods");
        for (key, ds) in self.of("apps", "daemonsets") {
            let uid = ds["metadata"]["uid"].as_str().unwrap_or_default();
            let covered: BTreeSet<&str> = pods
                .iter()
                .filter(|(k, p)| k.2 == key.2 && controller_uid(p) == Some(uid) && !is_deleting(p))
                .filter_map(|(_, p)| p["spec"]["nodeName"].as_str())
                .collect();
            let template = &ds["spec"]["template"];
            let missing: Vec<&String> = nodes
                .keys()
                .filter(|n| !covered.contains(n.as_str()))
                .collect();
            for node in missing {
                let mut spec = template["spec"].clone();
                spec["nodeName"] = json!(node);
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"labels": template["metadata"]["labels"], "ownerReferences": owner_ref("DaemonSet", &ds)},
                    "spec": spec,
                    "status": {"phase": "Pending", "hostIP": node_ip(&nodes[node])},
                });
                self.controller_create(&key.2, &key.3, pod);
            }
        }
    }

    /// Binds every unbound pod to the schedulable Node with the fewest pods of its controller.
    fn schedule(&mut self, now: Instant, nodes: &BTreeMap<String, Value>) {
        let unbound: Vec<(Key, Value)> = self
            .of("", "pods")
            .into_iter()
            .filter(|(_, p)| {
                !is_deleting(p) && p["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
            })
            .collect();
        for (key, pod) in &unbound {
            // Placed one by one: each sees where the previous ones went.
            let pods = self.of("", "pods");
            let owner = controller_uid(pod);
            let load = |node: &str| {
                let on = |p: &&(Key, Value)| p.1["spec"]["nodeName"] == node && !is_deleting(&p.1);
                let same = pods
                    .iter()
                    .filter(on)
                    .filter(|p| owner.is_some() && controller_uid(&p.1) == owner)
                    .count();
                (same, pods.iter().filter(on).count())
            };
            let choice = nodes
                .iter()
                .filter(|(_, n)| schedulable_for(pod, n))
                .min_by_key(|(name, _)| (load(name), (*name).clone()));
            let mut next = pod.clone();
            match choice {
                Some((name, node)) => {
                    next["spec"]["nodeName"] = json!(name);
                    next["status"]["hostIP"] = node_ip(node);
                    next["status"]["conditions"] =
                        json!([{"type": "PodScheduled", "status": "True"}]);
                    self.runtime
                        .starting
                        .insert(key.clone(), now + self.runtime.timing.ready_delay);
                }
                None => {
                    next["status"]["conditions"] = json!([{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": format!("0/{} nodes are available: no Ready, schedulable node whose taints the pod tolerates.", nodes.len()),
                    }]);
                }
            }
            self.controller_write(key.clone(), next);
        }
    }

    /// A bound pod's containers start: Running and Ready once its start delay passed.
    fn start_pods(&mut self, now: Instant) {
        let delay = self.runtime.timing.ready_delay;
        for (key, pod) in self.of("", "pods") {
            let bound = pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            if !bound || is_deleting(&pod) || is_mirror(&pod) || pod["status"]["phase"] != "Pending"
            {
                continue;
            }
            let at = *self
                .runtime
                .starting
                .entry(key.clone())
                .or_insert(now + delay);
            if now < at {
                continue;
            }
            self.runtime.starting.remove(&key);
            let mut next = pod.clone();
            next["status"]["phase"] = json!("Running");
            next["status"]["conditions"] = json!([
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ]);
            self.controller_write(key, next);
        }
    }

    /// The replicas the controllers of these pods want (the disruption controller's
    /// `getExpectedScale`: a ReplicaSet owned by a Deployment counts the Deployment's).
    fn expected_scale(&self, ns: &str, pods: &[&Value]) -> i64 {
        let mut seen = BTreeSet::new();
        let mut total = 0;
        for pod in pods {
            let Some(uid) = controller_uid(pod) else {
                continue;
            };
            if !seen.insert(uid.to_owned()) {
                continue;
            }
            let owner = self
                .objects
                .iter()
                .find(|((_, _, n, _), o)| n == ns && o["metadata"]["uid"].as_str() == Some(uid));
            if let Some((_, o)) = owner {
                let deployment = controller_uid(o).and_then(|d| {
                    self.objects.iter().find(|((g, p, n, _), v)| {
                        g == "apps"
                            && p == "deployments"
                            && n == ns
                            && v["metadata"]["uid"].as_str() == Some(d)
                    })
                });
                let scale = deployment.map_or(o, |(_, d)| d);
                total += scale["spec"]["replicas"].as_i64().unwrap_or(1);
            }
        }
        total
    }

    /// The disruption controller: `desiredHealthy`, `currentHealthy`, `expectedPods` and
    /// `disruptionsAllowed` of every PodDisruptionBudget over its pods' readiness.
    fn budgets(&mut self) {
        let pods = self.of("", "pods");
        for (key, pdb) in self.of("policy", "poddisruptionbudgets") {
            let selected: Vec<&Value> = pods
                .iter()
                .filter(|(k, p)| k.2 == key.2 && selector_matches(&pdb["spec"]["selector"], p))
                .map(|(_, p)| p)
                .collect();
            let spec = &pdb["spec"];
            let (expected, desired) = if let Some(max) = spec.get("maxUnavailable") {
                let expected = self.expected_scale(&key.2, &selected);
                let max = scaled(max, expected, true).unwrap_or(0);
                (expected, (expected - max).max(0))
            } else if let Some(min) = spec["minAvailable"].as_i64() {
                (selected.len() as i64, min)
            } else if let Some(min) = spec.get("minAvailable") {
                let expected = self.expected_scale(&key.2, &selected);
                (expected, scaled(min, expected, true).unwrap_or(0))
            } else {
                (selected.len() as i64, 1)
            };
            // Pods an eviction approved stay out of the count until they are seen deleting.
            let mut disrupted = pdb["status"]["disruptedPods"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            disrupted.retain(|name, _| {
                selected
                    .iter()
                    .any(|p| p["metadata"]["name"] == name.as_str() && !is_deleting(p))
            });
            let healthy = selected
                .iter()
                .filter(|p| !is_deleting(p) && is_ready(p))
                .filter(|p| {
                    !p["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| disrupted.contains_key(n))
                })
                .count() as i64;
            let allowed = (healthy - desired).max(0);
            let mut next = pdb.clone();
            next["status"] = json!({
                "observedGeneration": pdb["metadata"]["generation"],
                "disruptedPods": disrupted,
                "disruptionsAllowed": allowed,
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "conditions": [if allowed > 0 {
                    json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": ""})
                } else {
                    json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": ""})
                }],
            });
            self.controller_write(key, next);
        }
    }

    /// `POST …/pods/{name}/eviction` as kube-apiserver's `EvictionREST.Create` answers it.
    pub(crate) fn evict(&mut self, ns: &str, name: &str, body: &Value) -> Result<Value, ApiError> {
        if body["kind"] != "Eviction" {
            return Err(ApiError::new(
                400,
                "BadRequest",
                format!("not a Eviction object: {}", body["kind"]),
            ));
        }
        if body["metadata"]["name"] != name {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "name in URL does not match name in Eviction object",
            ));
        }
        self.reconcile();
        let key = pod_key(ns, name);
        let pod =
            self.objects.get(&key).cloned().ok_or_else(|| {
                ApiError::new(404, "NotFound", format!("pods \"{name}\" not found"))
            })?;
        let grace = body["deleteOptions"]["gracePeriodSeconds"].as_u64();
        let success = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        // A pod that is finished, not started or already going has caused its disruption.
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed" | "Pending") || is_deleting(&pod) {
            self.delete_pod(&key, pod, grace);
            return Ok(success);
        }
        let pdbs: Vec<(Key, Value)> = self
            .of("policy", "poddisruptionbudgets")
            .into_iter()
            .filter(|(k, pdb)| k.2 == ns && selector_matches(&pdb["spec"]["selector"], &pod))
            .collect();
        if pdbs.len() > 1 {
            return Err(ApiError::new(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some((pdb_key, pdb)) = pdbs.into_iter().next() {
            let status = &pdb["status"];
            let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
            let current = status["currentHealthy"].as_i64().unwrap_or(0);
            let unready_spare = !is_ready(&pod) && current >= desired && desired > 0;
            if !unready_spare {
                let pdb_name = &pdb_key.3;
                if status["observedGeneration"].as_i64() < pdb["metadata"]["generation"].as_i64() {
                    return Err(too_many_requests(
                        format!(
                            "The disruption budget {pdb_name} is still being processed by the server."
                        ),
                        10,
                    ));
                }
                let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
                if allowed < 0 {
                    return Err(ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "poddisruptionbudget.policy \"{pdb_name}\" is forbidden: pdb disruptions allowed is negative"
                        ),
                    ));
                }
                if allowed == 0 {
                    return Err(too_many_requests(
                        format!(
                            "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                        ),
                        0,
                    ));
                }
                let mut next = pdb.clone();
                next["status"]["disruptionsAllowed"] = json!(allowed - 1);
                next["status"]["disruptedPods"][name] = json!(rfc3339(now_secs()));
                self.controller_write(pdb_key, next);
            }
        }
        self.delete_pod(&key, pod, grace);
        Ok(success)
    }

    /// What a graceful Talos reset does to its own Node before it stops the pods
    /// (`CordonAndDrainNode`): cordon it, then evict every pod there that is not a mirror pod,
    /// not unmanaged and not a DaemonSet's. Talos retries a refused eviction every 5 s for up to
    /// 5 minutes and then goes on regardless; the simulator tries once and goes on at once.
    /// Returns the pods whose eviction was refused, as "ns/name".
    pub(crate) fn talos_drain(&mut self, node: &str) -> Vec<String> {
        self.reconcile();
        let node_key = (
            String::new(),
            "nodes".to_owned(),
            String::new(),
            node.to_owned(),
        );
        if let Some(obj) = self.objects.get(&node_key).cloned()
            && obj["spec"]["unschedulable"].as_bool() != Some(true)
        {
            let mut next = obj;
            next["spec"]["unschedulable"] = json!(true);
            self.controller_write(node_key, next);
        }
        let mut refused = Vec::new();
        for ((_, _, ns, name), pod) in self.of("", "pods") {
            let owner = pod["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|refs| {
                    refs.iter()
                        .find(|r| r["controller"].as_bool() == Some(true))
                });
            let skip = pod["spec"]["nodeName"] != node
                || is_mirror(&pod)
                || owner.is_none_or(|r| r["kind"] == "DaemonSet");
            if skip {
                continue;
            }
            let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                                  "metadata": {"name": name, "namespace": ns},
                                  "deleteOptions": {"gracePeriodSeconds": 60}});
            if self.evict(&ns, &name, &eviction).is_err() {
                refused.push(format!("{ns}/{name}"));
            }
        }
        refused
    }

    /// Deletes a pod gracefully: an unbound pod goes at once, a bound one is marked deleting and
    /// goes when its grace period ends (the kubelet stops its containers meanwhile).
    fn delete_pod(&mut self, key: &Key, mut pod: Value, grace: Option<u64>) {
        let bound = pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let grace = grace.unwrap_or_else(|| {
            pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(DEFAULT_GRACE_SECONDS)
        });
        if !bound || grace == 0 {
            self.controller_remove(key);
            return;
        }
        if is_deleting(&pod) {
            return;
        }
        pod["metadata"]["deletionTimestamp"] = json!(rfc3339(now_secs() + grace as i64));
        pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        self.controller_write(key.clone(), pod);
        self.reconcile();
    }
}

/// `errors.NewTooManyRequests` with a `DisruptionBudget` cause, as the eviction subresource
/// answers a budget that allows no disruption now.
fn too_many_requests(cause: String, retry_after: u64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
    }
    ApiError {
        code: 429,
        reason: "TooManyRequests",
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        details: Some(details),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_scale_as_intstr_does() {
        assert_eq!(scaled(&json!("50%"), 3, true), Some(2));
        assert_eq!(scaled(&json!("50%"), 3, false), Some(1));
        assert_eq!(scaled(&json!(2), 3, true), Some(2));
        assert_eq!(scaled(&json!("x"), 3, true), None);
    }

    #[test]
    fn empty_selectors_match_nothing() {
        let pod = json!({"metadata": {"labels": {"app": "web"}}});
        assert!(!selector_matches(&json!({}), &pod));
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &pod
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}),
            &pod
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
            &pod
        ));
    }

    #[test]
    fn cordoned_and_tainted_nodes_take_no_pods() {
        let ready = json!({"type": "Ready", "status": "True"});
        let node = json!({"spec": {}, "status": {"conditions": [ready]}});
        let pod = json!({"spec": {}});
        assert!(schedulable_for(&pod, &node));
        let cordoned = json!({"spec": {"unschedulable": true}, "status": {"conditions": [ready]}});
        assert!(!schedulable_for(&pod, &cordoned));
        let tainted = json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
                             "status": {"conditions": [ready]}});
        assert!(!schedulable_for(&pod, &tainted));
        let tolerant = json!({"spec": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}});
        assert!(schedulable_for(&tolerant, &tainted));
    }
}
