//! The Kubernetes side of an applied machine config as a Talos node sees it: the images of the kubelet,
//! the control-plane static pods, kube-proxy and the installer, and Talos' refusal of a config whose
//! Kubernetes images a given Talos release does not run (`ValidateKubernetesVersions` in Talos'
//! `v1alpha1_validation.go`: the kubelet image on every node, kube-apiserver, kube-controller-manager and
//! kube-scheduler on control planes, each checked with `compatibility.ValidateKubernetesImageTag`).

use std::collections::HashMap;

use serde_json::Value;

use super::config::MachineType;

/// Per cluster: what each control plane's static pods run, and who restarts them (kept in the lab's
/// cluster registry).
#[derive(Debug, Default)]
pub(crate) struct StaticPods {
    /// (node, pod) → the image it runs
    pub(crate) running: HashMap<(String, &'static str), String>,
    /// control planes with a static pod restarting now, with how many of their pods are
    pub(crate) restarting: HashMap<String, usize>,
    /// the most control planes restarting static pods at the same moment
    pub(crate) max_restarting: usize,
    /// restarts per node since the lab started
    pub(crate) restarts: HashMap<String, u32>,
}

/// The images an applied config names (full references, as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigImages {
    /// `machine.install.image`: what an install from maintenance mode writes to disk
    pub installer: Option<String>,
    /// `machine.kubelet.image`
    pub kubelet: Option<String>,
    /// `cluster.apiServer.image`
    pub apiserver: Option<String>,
    /// `cluster.controllerManager.image`
    pub controller_manager: Option<String>,
    /// `cluster.scheduler.image`
    pub scheduler: Option<String>,
    /// `cluster.proxy.image`
    pub proxy: Option<String>,
}

/// The control-plane static pods, in the order Talos' upgrade-k8s rolls them, with their config image.
pub(crate) const STATIC_PODS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

impl ConfigImages {
    /// Reads the images from the v1alpha1 document.
    pub(crate) fn from_v1alpha1(v: &Value) -> Self {
        let at = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            installer: at("/machine/install/image"),
            kubelet: at("/machine/kubelet/image"),
            apiserver: at("/cluster/apiServer/image"),
            controller_manager: at("/cluster/controllerManager/image"),
            scheduler: at("/cluster/scheduler/image"),
            proxy: at("/cluster/proxy/image"),
        }
    }

    /// The image of a static pod by its name (see [`STATIC_PODS`]).
    pub(crate) fn static_pod(&self, pod: &str) -> Option<&str> {
        match pod {
            "kube-apiserver" => self.apiserver.as_deref(),
            "kube-controller-manager" => self.controller_manager.as_deref(),
            "kube-scheduler" => self.scheduler.as_deref(),
            _ => None,
        }
        .filter(|_| STATIC_PODS.contains(&pod))
    }
}

type Minor = (u32, u32);
type Triple = (u32, u32, u32);

/// Kubernetes versions each Talos minor runs (`pkg/machinery/compatibility/talos1xx`): the minimum and
/// the exclusive maximum `1.N.99`.
const KUBERNETES_RANGES: &[(Minor, Triple, Triple)] = &[
    ((1, 10), (1, 28, 0), (1, 33, 99)),
    ((1, 11), (1, 29, 0), (1, 34, 99)),
    ((1, 12), (1, 30, 0), (1, 35, 99)),
    ((1, 13), (1, 31, 0), (1, 36, 99)),
    ((1, 14), (1, 32, 0), (1, 37, 99)),
];

fn parse(v: &str) -> Option<Triple> {
    super::day2::parse_version(v)
}

fn show((a, b, c): Triple) -> String {
    format!("{a}.{b}.{c}")
}

/// `compatibility.KubernetesVersion.SupportedWith`: an error text as Talos words it, or `None`.
fn unsupported(image: &str, talos: &str) -> Option<String> {
    // KubernetesVersionFromImageRef: the text after the last `:v`, up to a digest.
    let Some(idx) = image.rfind(":v") else {
        return Some(format!(
            "failed to parse Kubernetes version from image reference {image:?}: invalid image reference: {image:?}"
        ));
    };
    let tag = image[idx + 2..].split('@').next().unwrap_or_default();
    let Some(k8s) = parse(tag) else {
        return Some(format!(
            "failed to parse Kubernetes version from image reference {image:?}: invalid version {tag:?}"
        ));
    };
    let t = parse(talos)?;
    let Some((_, min, max)) = KUBERNETES_RANGES
        .iter()
        .find(|(minor, _, _)| *minor == (t.0, t.1))
    else {
        return Some(format!(
            "compatibility with version {} is not supported",
            show(t)
        ));
    };
    if k8s < *min {
        Some(format!(
            "version of Kubernetes {} is too old to be used with Talos {}",
            show(k8s),
            show(t)
        ))
    } else if k8s >= *max {
        Some(format!(
            "version of Kubernetes {} is too new to be used with Talos {}",
            show(k8s),
            show(t)
        ))
    } else {
        None
    }
}

/// Refuses a config naming Kubernetes images Talos `talos` does not run, with Talos' error text.
pub(crate) fn check_versions(
    images: &ConfigImages,
    machine_type: MachineType,
    talos: &str,
) -> Result<(), String> {
    let mut errors = Vec::new();
    if let Some(e) = images
        .kubelet
        .as_deref()
        .and_then(|i| unsupported(i, talos))
    {
        errors.push(format!("kubelet image is not valid: {e}"));
    }
    if machine_type == MachineType::ControlPlane {
        for pod in STATIC_PODS {
            if let Some(e) = images.static_pod(pod).and_then(|i| unsupported(i, talos)) {
                errors.push(format!("{pod} image is not valid: {e}"));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let mut text = format!(
        "{} error{} occurred:\n",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        text.push_str(&format!("\t* {e}\n"));
    }
    Err(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(k8s: &str) -> ConfigImages {
        ConfigImages {
            installer: None,
            kubelet: Some(format!("ghcr.io/siderolabs/kubelet:v{k8s}")),
            apiserver: Some(format!("registry.k8s.io/kube-apiserver:v{k8s}")),
            controller_manager: Some(format!("registry.k8s.io/kube-controller-manager:v{k8s}")),
            scheduler: Some(format!("registry.k8s.io/kube-scheduler:v{k8s}")),
            proxy: Some(format!("registry.k8s.io/kube-proxy:v{k8s}")),
        }
    }

    #[test]
    fn talos_1_13_runs_1_31_to_1_36() {
        let cp = MachineType::ControlPlane;
        assert!(check_versions(&images("1.36.2"), cp, "v1.13.9").is_ok());
        assert!(check_versions(&images("1.31.0"), cp, "v1.13.9").is_ok());
        let err = check_versions(&images("1.37.0"), cp, "v1.13.9").expect_err("too new");
        assert!(err.starts_with("4 errors occurred:"), "{err}");
        assert!(
            err.contains(
                "kubelet image is not valid: version of Kubernetes 1.37.0 is too new to be used with Talos 1.13.9"
            ),
            "{err}"
        );
        let err =
            check_versions(&images("1.30.5"), MachineType::Worker, "v1.13.9").expect_err("too old");
        assert!(err.starts_with("1 error occurred:"), "{err}");
    }

    #[test]
    fn talos_1_12_refuses_1_36() {
        let err = check_versions(&images("1.36.0"), MachineType::ControlPlane, "v1.12.11")
            .expect_err("1.36 on 1.12");
        assert!(
            err.contains("kube-scheduler image is not valid: version of Kubernetes 1.36.0 is too new to be used with Talos 1.12.11"),
            "{err}"
        );
        assert!(check_versions(&images("1.35.98"), MachineType::ControlPlane, "v1.12.4").is_ok());
    }
}
