//! Taking a node out of service as `kubectl drain --ignore-daemonsets --delete-emptydir-data`
//! does (kubectl's `pkg/drain`): cordon the Node, list its pods by `spec.nodeName`, skip mirror and
//! DaemonSet-owned pods, refuse pods that no controller would recreate, evict the rest through the
//! `pods/eviction` subresource (retrying the 429 a PodDisruptionBudget answers until the timeout),
//! and wait until each evicted pod is gone; then deleting the Node object.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::KubeClient;
use crate::error::{KubeError, StuckPod};

/// The annotation the kubelet puts on the API copy of a static pod (`corev1.MirrorPodAnnotationKey`).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// How long a drain may take and how often it looks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// give up (naming the pods still there) after this long
    pub timeout: Duration,
    /// pause between rounds of eviction attempts and checks
    pub poll: Duration,
}

impl Default for DrainOptions {
    /// Five minutes, looking every second (kubectl waits forever by default and checks each
    /// second; a removal must end, so homelabctl bounds it).
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            poll: Duration::from_secs(1),
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// pods evicted and gone, as `namespace/name`
    pub evicted: Vec<String>,
    /// pods left alone (DaemonSet-owned and mirror pods), as `namespace/name`
    pub skipped: Vec<String>,
}

/// What kubectl's filters decide about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Evict,
    Skip,
    /// cannot be drained without `--force` (kubectl's error text, without the pod)
    Refuse(&'static str),
}

const UNMANAGED: &str = "Pods that declare no controller (kubectl drain needs --force for them)";
const DAEMONSET_GONE: &str = "Pods of a DaemonSet that no longer exists";

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// The owner reference with `controller: true`, if any (`metav1.GetControllerOf`).
fn controller_of(pod: &Value) -> Option<&Value> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// kubectl's `daemonSetFilter` compares the owner's kind only (any API group named
/// `DaemonSet` counts), then looks the DaemonSet up in apps/v1.
fn is_daemonset_ref(r: &Value) -> bool {
    r["kind"] == "DaemonSet"
}

/// kubectl's filter chain for `--ignore-daemonsets --delete-emptydir-data` without `--force`, in
/// its order: DaemonSet, mirror, local storage (allowed), unreplicated. `daemonset_exists` answers
/// for a DaemonSet-owned pod (kubectl refuses a pod whose DaemonSet is gone).
fn verdict(pod: &Value, daemonset_exists: Option<bool>) -> Verdict {
    if let Some(r) = controller_of(pod)
        && is_daemonset_ref(r)
        && !is_terminal(pod)
    {
        return match daemonset_exists {
            Some(false) => Verdict::Refuse(DAEMONSET_GONE),
            _ => Verdict::Skip,
        };
    }
    if pod["metadata"]["annotations"]
        .get(MIRROR_ANNOTATION)
        .is_some()
    {
        return Verdict::Skip;
    }
    // emptyDir volumes are deleted with the pod: --delete-emptydir-data allows it.
    if is_terminal(pod) || controller_of(pod).is_some() {
        Verdict::Evict
    } else {
        Verdict::Refuse(UNMANAGED)
    }
}

fn pod_key(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Escapes a query value (node names are DNS subdomains; anything else is escaped byte by byte).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A path segment must not smuggle a `/` or `?` into the URL.
fn check_name(what: &str, name: &str) -> Result<(), KubeError> {
    if name.is_empty() || name.contains(['/', '?', '#', '%']) || name == "." || name == ".." {
        return Err(KubeError::InvalidObject {
            reason: format!("{what} name {name:?} is not a valid object name"),
        });
    }
    Ok(())
}

/// One pod being drained.
struct Draining {
    key: String,
    namespace: String,
    name: String,
    uid: String,
    /// the eviction was accepted; now waiting for the pod to go
    evicted: bool,
    /// the PodDisruptionBudget that refused the last eviction, and its words
    budget: Option<String>,
    refusal: Option<String>,
}

/// The PDB name in a 429's `DisruptionBudget` cause ("The disruption budget web needs 2 healthy
/// pods and has 2 currently" / "The disruption budget web is still being processed by the server.").
fn budget_in(status: &Value) -> Option<(String, String)> {
    status["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "DisruptionBudget" || c["reason"] == "DisruptionBudget")
        .and_then(|c| {
            let message = c["message"].as_str()?;
            let name = message
                .strip_prefix("The disruption budget ")?
                .split_whitespace()
                .next()?;
            Some((name.to_owned(), message.to_owned()))
        })
}

fn namespace_terminating(status: &Value) -> bool {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "NamespaceTerminating" || c["reason"] == "NamespaceTerminating")
}

impl KubeClient {
    /// Marks the Node unschedulable (`spec.unschedulable: true`, a merge patch as `kubectl
    /// cordon` sends). `Ok(true)` when this call changed it; `Ok(false)` when it was already
    /// cordoned or the Node does not exist.
    pub async fn cordon(&self, node: &str) -> Result<bool, KubeError> {
        check_name("node", node)?;
        let path = format!("/api/v1/nodes/{node}");
        let live = match self.call(Method::GET, &path, None).await {
            Ok(v) => v,
            Err(KubeError::Api { code: 404, .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if live["spec"]["unschedulable"].as_bool() == Some(true) {
            return Ok(false);
        }
        let patch = json!({"spec": {"unschedulable": true}}).to_string();
        match self
            .call(
                Method::PATCH,
                &path,
                Some(("application/merge-patch+json", patch.into_bytes())),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(KubeError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the Node object; `Ok(false)` when it was already gone.
    pub async fn delete_node(&self, node: &str) -> Result<bool, KubeError> {
        check_name("node", node)?;
        match self
            .call(Method::DELETE, &format!("/api/v1/nodes/{node}"), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(KubeError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Cordons the node, then evicts its pods as `kubectl drain --ignore-daemonsets
    /// --delete-emptydir-data` does and waits until they are gone. Mirror pods and pods of a
    /// DaemonSet are skipped; pods no controller would recreate (or of a deleted DaemonSet) are
    /// refused before anything is evicted ([`KubeError::DrainRefused`]); evictions a
    /// PodDisruptionBudget refuses are retried until `options.timeout`
    /// ([`KubeError::DrainTimeout`] names the pods still there).
    pub async fn drain(
        &self,
        node: &str,
        options: &DrainOptions,
    ) -> Result<DrainReport, KubeError> {
        let deadline = Instant::now() + options.timeout;
        self.cordon(node).await?;
        let list = self
            .call(
                Method::GET,
                &format!(
                    "/api/v1/pods?fieldSelector={}",
                    query_escape(&format!("spec.nodeName={node}"))
                ),
                None,
            )
            .await?;
        let pods = list["items"].as_array().cloned().unwrap_or_default();
        let mut report = DrainReport::default();
        let mut refused: Vec<(&'static str, String)> = Vec::new();
        let mut draining = Vec::new();
        for pod in &pods {
            let daemonset_exists = match controller_of(pod) {
                Some(r) if is_daemonset_ref(r) && !is_terminal(pod) => {
                    Some(self.daemonset_exists(pod, r).await?)
                }
                _ => None,
            };
            match verdict(pod, daemonset_exists) {
                Verdict::Skip => report.skipped.push(pod_key(pod)),
                Verdict::Refuse(why) => refused.push((why, pod_key(pod))),
                Verdict::Evict => draining.push(Draining {
                    key: pod_key(pod),
                    namespace: pod["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    name: pod["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    uid: pod["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    evicted: false,
                    budget: None,
                    refusal: None,
                }),
            }
        }
        if !refused.is_empty() {
            let reason = refused[0].0;
            return Err(KubeError::DrainRefused {
                node: node.to_owned(),
                reason: reason.to_owned(),
                pods: refused.into_iter().map(|(_, p)| p).collect(),
            });
        }
        loop {
            let mut still = Vec::new();
            for mut pod in draining {
                if !pod.evicted {
                    self.evict(&mut pod).await?;
                }
                if pod.evicted && self.pod_gone(&pod).await? {
                    report.evicted.push(pod.key);
                } else {
                    still.push(pod);
                }
            }
            draining = still;
            if draining.is_empty() {
                report.evicted.sort();
                report.skipped.sort();
                return Ok(report);
            }
            if Instant::now() >= deadline {
                return Err(KubeError::DrainTimeout {
                    node: node.to_owned(),
                    timeout: options.timeout,
                    pods: draining
                        .into_iter()
                        .map(|p| StuckPod {
                            pod: p.key,
                            budget: p.budget,
                            reason: if p.evicted {
                                "evicted, still terminating".to_owned()
                            } else {
                                p.refusal.unwrap_or_else(|| "not evicted yet".to_owned())
                            },
                        })
                        .collect(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(options.poll.min(left)).await;
        }
    }

    async fn daemonset_exists(&self, pod: &Value, owner: &Value) -> Result<bool, KubeError> {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = owner["name"].as_str().unwrap_or_default();
        check_name("namespace", namespace)?;
        check_name("DaemonSet", name)?;
        let path = format!("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}");
        match self.call(Method::GET, &path, None).await {
            Ok(_) => Ok(true),
            Err(KubeError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One eviction attempt: accepted (or the pod is already gone) marks it evicted; a 429 keeps
    /// it for the next round with the budget that refused it; anything else fails the drain.
    async fn evict(&self, pod: &mut Draining) -> Result<(), KubeError> {
        check_name("namespace", &pod.namespace)?;
        check_name("pod", &pod.name)?;
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/eviction",
            pod.namespace, pod.name
        );
        let body = json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
        })
        .to_string();
        let (code, bytes) = self
            .send(
                Method::POST,
                &path,
                Some(("application/json", body.into_bytes())),
            )
            .await?;
        if code.is_success() || code.as_u16() == 404 {
            // 404: the pod went away meanwhile, which is what the eviction wanted.
            pod.evicted = true;
            return Ok(());
        }
        let status: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = status["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_owned,
        );
        match code.as_u16() {
            429 => {
                if let Some((budget, words)) = budget_in(&status) {
                    pod.budget = Some(format!("{}/{budget}", pod.namespace));
                    pod.refusal = Some(format!("{message} {words}"));
                } else {
                    pod.refusal = Some(message);
                }
                Ok(())
            }
            // An eviction in a terminating namespace is refused until the namespace's pods go:
            // kubectl retries it (and waits for a pod already being deleted).
            403 if namespace_terminating(&status) => {
                pod.refusal = Some(message);
                Ok(())
            }
            code => Err(KubeError::Api {
                method: "POST".into(),
                url: format!("{}{path}", self.server()),
                code,
                reason: status["reason"].as_str().unwrap_or_default().to_owned(),
                message,
            }),
        }
    }

    /// Whether an evicted pod is gone: not found, or replaced by a pod of the same name with
    /// another UID (a StatefulSet's next incarnation).
    async fn pod_gone(&self, pod: &Draining) -> Result<bool, KubeError> {
        let path = format!("/api/v1/namespaces/{}/pods/{}", pod.namespace, pod.name);
        match self.call(Method::GET, &path, None).await {
            Ok(live) => Ok(live["metadata"]["uid"].as_str() != Some(pod.uid.as_str())),
            Err(KubeError::Api { code: 404, .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(owner: Option<(&str, &str)>, annotations: Value, phase: &str) -> Value {
        let refs = owner.map_or(json!([]), |(api, kind)| {
            json!([{"apiVersion": api, "kind": kind, "name": "o", "controller": true}])
        });
        json!({"metadata": {"name": "p", "namespace": "n", "ownerReferences": refs,
                            "annotations": annotations},
               "status": {"phase": phase}})
    }

    #[test]
    fn filters_follow_kubectl() {
        let rs = Some(("apps/v1", "ReplicaSet"));
        let ds = Some(("apps/v1", "DaemonSet"));
        assert_eq!(
            verdict(&pod(rs, json!({}), "Running"), None),
            Verdict::Evict
        );
        assert_eq!(
            verdict(&pod(ds, json!({}), "Running"), Some(true)),
            Verdict::Skip
        );
        assert_eq!(
            verdict(&pod(ds, json!({}), "Running"), Some(false)),
            Verdict::Refuse(DAEMONSET_GONE)
        );
        // A finished DaemonSet pod is deleted like any other.
        assert_eq!(
            verdict(&pod(ds, json!({}), "Succeeded"), None),
            Verdict::Evict
        );
        let mirror = json!({MIRROR_ANNOTATION: "abc"});
        assert_eq!(verdict(&pod(None, mirror, "Running"), None), Verdict::Skip);
        assert_eq!(
            verdict(&pod(None, json!({}), "Running"), None),
            Verdict::Refuse(UNMANAGED)
        );
        assert_eq!(
            verdict(&pod(None, json!({}), "Failed"), None),
            Verdict::Evict
        );
        // kubectl compares the kind only: another group's DaemonSet is skipped too.
        assert!(is_daemonset_ref(
            &json!({"apiVersion": "example.com/v1", "kind": "DaemonSet"})
        ));
    }

    #[test]
    fn budget_name_comes_from_the_cause() {
        let status = json!({"code": 429, "details": {"causes": [{"reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]}});
        assert_eq!(budget_in(&status).map(|(n, _)| n), Some("web".to_owned()));
        assert_eq!(budget_in(&json!({"code": 429})), None);
    }

    #[test]
    fn field_selector_and_names_are_escaped_or_refused() {
        assert_eq!(query_escape("spec.nodeName=w-1"), "spec.nodeName%3Dw-1");
        assert!(check_name("node", "a/b").is_err());
        assert!(check_name("node", "..").is_err());
        assert!(check_name("node", "talos-w-01").is_ok());
    }
}
