//! Reading workloads as an upgrade watches them: the pods of a label selector (a control plane's static
//! pods carry `k8s-app=<component>`) with their node, images and readiness, and a DaemonSet's images.

use reqwest::Method;
use serde_json::Value;

use crate::client::{KubeClient, conditions_of};
use crate::error::KubeError;

/// A pod as an upgrade checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// pod name
    pub name: String,
    /// `spec.nodeName`
    pub node_name: String,
    /// `status.hostIP`, if reported
    pub host_ip: Option<String>,
    /// the images of its containers (`spec.containers[].image`), in order
    pub images: Vec<String>,
    /// the Ready condition is True
    pub ready: bool,
}

/// `k8s-app=kube-apiserver,tier=control-plane` → the query-string form (only `=` and `,` need escaping
/// in the selectors homelabctl sends; anything else outside the unreserved set is refused).
fn encode_selector(selector: &str) -> Result<String, KubeError> {
    let mut out = String::with_capacity(selector.len() + 8);
    for c in selector.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '/' => out.push(c),
            '=' => out.push_str("%3D"),
            ',' => out.push_str("%2C"),
            '!' => out.push_str("%21"),
            _ => {
                return Err(KubeError::InvalidObject {
                    reason: format!(
                        "label selector {selector:?} has a character homelabctl does not send ({c:?})"
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect()
}

impl KubeClient {
    /// The pods of `namespace` that match `label_selector` (`k8s-app=kube-apiserver`).
    pub async fn pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<PodInfo>, KubeError> {
        let path = format!(
            "/api/v1/namespaces/{namespace}/pods?labelSelector={}",
            encode_selector(label_selector)?
        );
        let list = self.call(Method::GET, &path, None).await?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| PodInfo {
                name: p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                node_name: p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                host_ip: p["status"]["hostIP"].as_str().map(str::to_owned),
                images: strings_at(p, "/spec/containers"),
                ready: conditions_of(p)
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
            })
            .collect())
    }

    /// The container images of a DaemonSet's pod template; `None` when it does not exist.
    pub async fn daemonset_images(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, KubeError> {
        let path = format!("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}");
        match self.call(Method::GET, &path, None).await {
            Ok(ds) => Ok(Some(strings_at(&ds, "/spec/template/spec/containers"))),
            Err(KubeError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_escaped_and_odd_characters_refused() {
        assert_eq!(
            encode_selector("k8s-app=kube-apiserver,tier=control-plane").ok(),
            Some("k8s-app%3Dkube-apiserver%2Ctier%3Dcontrol-plane".to_owned())
        );
        assert!(encode_selector("a=b&c=d").is_err());
    }
}
