//! The Kubernetes upgrade, as talosctl `upgrade-k8s` does it (Talos' `pkg/cluster/kubernetes`
//! `talos_managed.go` and `kubelet.go`): check the path (one minor at a time, inside every node's Talos
//! range), then kube-apiserver, kube-controller-manager and kube-scheduler, each on every control plane in
//! turn (a machine config with the new image applied without a reboot, then a wait until that node's
//! static pod runs it and is Ready), then kube-proxy on the control planes, then the kubelet on every node
//! one at a time, waiting for its Node object to report the new version.
//!
//! The machine config sent is rendered from homelab.yaml and the secrets bundle, never read back from the
//! node: the components already upgraded (and the one being upgraded) name the new version, the others
//! the old one ([`StagedVersions`]). The last config of each node is exactly what homelab.yaml renders for
//! the new version, so the next plan finds nothing to change.
//!
//! Resumable: before each step the live state is observed and a step whose component already runs the
//! target on that node is skipped, so a run killed anywhere finishes on the next one without patching a
//! finished node again. A static pod whose mirror pod already names the new image (patched, then killed
//! before it was Ready) is waited for, not patched again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use homelab_config::Config;
use homelab_talos::machine_config::{self, RenderedConfig};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::events::{Event, EventSink};
use crate::ports::{KubeApi, PortError, PortResult, TalosApi};
use crate::talos_render::{TalosRenderer, machine_config_input};
use crate::versions::{self, Version, VersionRefusal};
use crate::wait;

/// A Kubernetes component whose image the machine config names, in the order the upgrade rolls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
    Proxy,
    Kubelet,
}

impl Component {
    /// Every component, in upgrade order.
    pub const ALL: [Component; 5] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Proxy,
        Component::Kubelet,
    ];

    /// The control plane's static pods, in upgrade order.
    pub const STATIC_PODS: [Component; 3] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
    ];

    /// The name Kubernetes and Talos use (`kube-apiserver`, …; the static pods' `k8s-app` label).
    pub fn name(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Proxy => "kube-proxy",
            Component::Kubelet => "kubelet",
        }
    }

    /// Where the v1alpha1 document names its image.
    pub fn image_pointer(self) -> &'static str {
        match self {
            Component::ApiServer => "/cluster/apiServer/image",
            Component::ControllerManager => "/cluster/controllerManager/image",
            Component::Scheduler => "/cluster/scheduler/image",
            Component::Proxy => "/cluster/proxy/image",
            Component::Kubelet => "/machine/kubelet/image",
        }
    }
}

/// Which Kubernetes version each component of a staged machine config names: `upgraded` ones `to`, the
/// others `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedVersions {
    pub from: Version,
    pub to: Version,
    pub upgraded: Vec<Component>,
}

impl StagedVersions {
    /// The version `component`'s image names at this stage.
    pub fn version_of(&self, component: Component) -> &Version {
        if self.upgraded.contains(&component) {
            &self.to
        } else {
            &self.from
        }
    }
}

/// Renders a node's machine config at a stage of the upgrade.
pub trait StagedRenderer: Send + Sync {
    /// The config of the node named `node` (as in homelab.yaml), with images as `versions` says.
    fn render_staged(
        &self,
        node: &str,
        versions: &StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String>;
}

/// [`StagedRenderer`] over homelab.yaml and the secrets bundle: the config homelab.yaml renders for the
/// target version, with the components not yet upgraded set back to the old version (their image
/// repository kept, only the tag changed, as talosctl patches them).
pub struct TalosStagedRenderer<'a> {
    pub renderer: &'a TalosRenderer,
    pub config: &'a Config,
    /// The installer image the nodes run (unchanged by a Kubernetes upgrade).
    pub installer_image: String,
}

/// `registry.k8s.io/kube-apiserver:v1.35.0` with version `1.36.2` → `registry.k8s.io/kube-apiserver:v1.36.2`.
/// The tag is what follows the last `:v` (Talos' `KubernetesVersionFromImageRef`); a digest is dropped,
/// since it pinned the old version.
pub fn retag(image: &str, version: &Version) -> String {
    let repository = match image.rfind(":v") {
        Some(idx) => &image[..idx],
        None => image.split('@').next().unwrap_or(image),
    };
    format!("{repository}:v{version}")
}

/// The Kubernetes version an image reference names (`…/kube-apiserver:v1.36.2` → 1.36.2), as Talos reads it.
pub fn image_version(image: &str) -> Option<Version> {
    let idx = image.rfind(":v")?;
    let tag = image[idx + 2..].split('@').next()?;
    tag.parse().ok()
}

/// Sets each component's image in the v1alpha1 document to the version `versions` gives it; components
/// the document does not name (a worker's static pods) stay absent.
pub fn stage_documents(documents: &mut [Value], versions: &StagedVersions) {
    for doc in documents
        .iter_mut()
        .filter(|d| d.get("version").and_then(Value::as_str) == Some("v1alpha1"))
    {
        for component in Component::ALL {
            if let Some(Value::String(image)) = doc.pointer_mut(component.image_pointer()) {
                *image = retag(image, versions.version_of(component));
            }
        }
    }
}

impl StagedRenderer for TalosStagedRenderer<'_> {
    fn render_staged(
        &self,
        node: &str,
        versions: &StagedVersions,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let wanted = self
            .config
            .nodes
            .iter()
            .find(|n| n.name == node)
            .ok_or_else(|| format!("node {node} is not in homelab.yaml"))?;
        let mut config = self.config.clone();
        config.cluster.kubernetes_version = versions.to.clone();
        let input = machine_config_input(
            &config,
            wanted,
            &self.installer_image,
            &self.renderer.base_dir,
        )?;
        let rendered =
            machine_config::render(&input, &self.renderer.bundle).map_err(|e| e.to_string())?;
        let mut documents = rendered.documents().to_vec();
        stage_documents(&mut documents, versions);
        let yaml = RenderedConfig::from_documents(documents)
            .to_yaml()
            .map_err(|e| e.to_string())?;
        Ok(Zeroizing::new(yaml.as_bytes().to_vec()))
    }
}

/// A node the upgrade goes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeNode {
    /// Its name in homelab.yaml: its hostname and Node name.
    pub name: String,
    pub control_plane: bool,
    /// Where its apid answers once installed.
    pub apid: SocketAddr,
}

/// How long each wait may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeTimeouts {
    /// Until a static pod runs the new image and is Ready (talosctl: 5 minutes).
    pub static_pod: Duration,
    /// Until a Node reports the new kubelet version and is Ready (talosctl: 3 minutes).
    pub kubelet: Duration,
    /// The longest pause between two polls.
    pub poll: Duration,
}

impl Default for UpgradeTimeouts {
    fn default() -> Self {
        Self {
            static_pod: Duration::from_secs(300),
            kubelet: Duration::from_secs(180),
            poll: Duration::from_secs(2),
        }
    }
}

/// One Kubernetes upgrade: the nodes (control planes first is not required: they are taken in homelab.yaml
/// order, control planes before workers), the kubeconfig, and the versions.
#[derive(Debug, Clone)]
pub struct KubernetesUpgrade<'a> {
    pub nodes: &'a [UpgradeNode],
    pub kubeconfig: &'a [u8],
    /// What runs now (the oldest component, for a resumed upgrade).
    pub from: Version,
    pub to: Version,
    pub timeouts: UpgradeTimeouts,
}

/// What the upgrade did, step by step: each `(node, component)` it patched and each it found done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    pub patched: Vec<(String, Component)>,
    pub already: Vec<(String, Component)>,
}

/// Why the upgrade stopped. The messages say what failed, on which node, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesUpgradeError {
    #[error(transparent)]
    Refused(#[from] VersionRefusal),
    #[error(
        "cannot read the Talos version of {node} ({at}): {reason}; check that the node is up, then run \
         again"
    )]
    TalosVersion {
        node: String,
        at: SocketAddr,
        reason: String,
    },
    #[error(
        "cannot render the machine config of {node} for {component} {to}: {message}; fix homelab.yaml and \
         run again"
    )]
    Render {
        node: String,
        component: &'static str,
        to: Version,
        message: String,
    },
    #[error(
        "upgrading {component} to {to} on {node}: {what} failed: {source}; run again: the upgrade resumes \
         with what is not done yet"
    )]
    Step {
        node: String,
        component: &'static str,
        to: Version,
        what: &'static str,
        source: PortError,
    },
    #[error(
        "reading {what} from the Kubernetes API failed: {source}; check that the API answers, then run again"
    )]
    Observe {
        what: &'static str,
        source: PortError,
    },
}

fn resource(node: &str) -> String {
    format!("kubernetes.{node}")
}

/// Checks the path against every node's running Talos.
async fn preflight(
    talos: &impl TalosApi,
    upgrade: &KubernetesUpgrade<'_>,
) -> Result<(), KubernetesUpgradeError> {
    let mut talos_versions = Vec::new();
    for node in upgrade.nodes {
        let failed = |reason: String| KubernetesUpgradeError::TalosVersion {
            node: node.name.clone(),
            at: node.apid,
            reason,
        };
        let tag = talos
            .installed_version(node.apid)
            .await
            .map_err(|e| failed(e.message))?
            .ok_or_else(|| failed("it does not answer with mutual TLS".into()))?;
        let version: Version = tag
            .parse()
            .map_err(|e| failed(format!("its version {tag:?} is not understood: {e}")))?;
        talos_versions.push(version);
    }
    versions::kubernetes_upgrade_path(&upgrade.from, &upgrade.to, &talos_versions)?;
    Ok(())
}

/// Whether a reported version string (`v1.36.2`) is `to`.
fn is(version: &str, to: &Version) -> bool {
    version
        .parse::<Version>()
        .is_ok_and(|v| (v.major, v.minor, v.patch) == (to.major, to.minor, to.patch))
}

fn image_is(image: &str, to: &Version) -> bool {
    image_version(image)
        .is_some_and(|v| (v.major, v.minor, v.patch) == (to.major, to.minor, to.patch))
}

/// The oldest Kubernetes version any component runs (every Node's kubelet, every control plane's static
/// pods): the `from` of an upgrade, also of one resumed after a kill. `None` when nothing reports one.
pub async fn oldest_running(kube: &impl KubeApi, kubeconfig: &[u8]) -> PortResult<Option<Version>> {
    let mut versions: Vec<Version> = kube
        .nodes(kubeconfig)
        .await?
        .into_iter()
        .filter_map(|n| n.kubelet_version.parse().ok())
        .collect();
    for component in Component::STATIC_PODS {
        let pods = kube.static_pods(kubeconfig, component.name()).await?;
        versions.extend(pods.iter().filter_map(|p| image_version(&p.image)));
    }
    Ok(versions
        .into_iter()
        .min_by_key(|v| (v.major, v.minor, v.patch)))
}

/// Runs the upgrade. Each step emits StepStarted/StepFinished on `kubernetes.<node>` with the component
/// and the target in the action; a step found done emits an Info.
pub async fn upgrade_kubernetes(
    talos: &impl TalosApi,
    kube: &impl KubeApi,
    renderer: &impl StagedRenderer,
    upgrade: &KubernetesUpgrade<'_>,
    events: &EventSink,
) -> Result<UpgradeReport, KubernetesUpgradeError> {
    preflight(talos, upgrade).await?;
    let mut report = UpgradeReport::default();
    let control_planes: Vec<&UpgradeNode> =
        upgrade.nodes.iter().filter(|n| n.control_plane).collect();
    let workers = upgrade.nodes.iter().filter(|n| !n.control_plane);
    let run = Run {
        talos,
        kube,
        renderer,
        upgrade,
        events,
    };
    for (i, component) in Component::STATIC_PODS.into_iter().enumerate() {
        let upgraded = Component::STATIC_PODS[..=i].to_vec();
        for node in &control_planes {
            run.static_pod(node, component, &upgraded, &mut report)
                .await?;
        }
    }
    run.proxy(&control_planes, &mut report).await?;
    for node in control_planes.iter().copied().chain(workers) {
        run.kubelet(node, &mut report).await?;
    }
    let served = kube
        .server_version(upgrade.kubeconfig)
        .await
        .map_err(|source| KubernetesUpgradeError::Observe {
            what: "the API server's version",
            source,
        })?;
    events.info(
        "kubernetes",
        format!(
            "Kubernetes {} runs everywhere (the API server answers {served})",
            upgrade.to
        ),
    );
    Ok(report)
}

/// The ports and inputs of one run.
struct Run<'a, T, K, R> {
    talos: &'a T,
    kube: &'a K,
    renderer: &'a R,
    upgrade: &'a KubernetesUpgrade<'a>,
    events: &'a EventSink,
}

impl<T: TalosApi, K: KubeApi, R: StagedRenderer> Run<'_, T, K, R> {
    fn step_error(
        &self,
        node: &UpgradeNode,
        component: Component,
        what: &'static str,
    ) -> impl FnOnce(PortError) -> KubernetesUpgradeError {
        let (name, to) = (node.name.clone(), self.upgrade.to.clone());
        move |source| KubernetesUpgradeError::Step {
            node: name,
            component: component.name(),
            to,
            what,
            source,
        }
    }

    fn started(&self, node: &UpgradeNode, component: Component) -> Instant {
        self.events.emit(Event::StepStarted {
            resource: resource(&node.name),
            action: format!("upgrade {} to {}", component.name(), self.upgrade.to),
        });
        Instant::now()
    }

    fn finished(&self, node: &UpgradeNode, component: Component, since: Instant) {
        self.events.emit(Event::StepFinished {
            resource: resource(&node.name),
            action: format!("upgrade {} to {}", component.name(), self.upgrade.to),
            elapsed: since.elapsed(),
        });
    }

    fn already(&self, node: &UpgradeNode, component: Component, report: &mut UpgradeReport) {
        self.events.info(
            &resource(&node.name),
            format!("{} already runs {}", component.name(), self.upgrade.to),
        );
        report.already.push((node.name.clone(), component));
    }

    /// Renders the node's staged config and applies it without a reboot.
    async fn patch(
        &self,
        node: &UpgradeNode,
        component: Component,
        upgraded: &[Component],
    ) -> Result<(), KubernetesUpgradeError> {
        let staged = StagedVersions {
            from: self.upgrade.from.clone(),
            to: self.upgrade.to.clone(),
            upgraded: upgraded.to_vec(),
        };
        let config = self
            .renderer
            .render_staged(&node.name, &staged)
            .map_err(|message| KubernetesUpgradeError::Render {
                node: node.name.clone(),
                component: component.name(),
                to: self.upgrade.to.clone(),
                message,
            })?;
        self.talos
            .apply_no_reboot(node.apid, &config)
            .await
            .map_err(self.step_error(node, component, "applying the machine config"))
    }

    /// One static-pod step on one control plane: its mirror pod must run the target image and be Ready.
    async fn static_pod(
        &self,
        node: &UpgradeNode,
        component: Component,
        upgraded: &[Component],
        report: &mut UpgradeReport,
    ) -> Result<(), KubernetesUpgradeError> {
        let observe = || async {
            let pods = self
                .kube
                .static_pods(self.upgrade.kubeconfig, component.name())
                .await?;
            PortResult::Ok(
                pods.into_iter()
                    .find(|p| p.node == node.name || p.host_ip == Some(node.apid.ip()))
                    .map(|p| (p.image, p.ready)),
            )
        };
        let check = Check {
            reading: "its static pod",
            waiting: format!("{} to run {}", component.name(), self.upgrade.to),
            timeout: self.upgrade.timeouts.static_pod,
            at_target: |image: &str| image_is(image, &self.upgrade.to),
        };
        self.roll(node, component, upgraded, &check, observe, report)
            .await
    }

    /// One step: observe; skip when the component runs the target and is Ready; patch unless what runs
    /// already names the target (patched by a run that was killed before it was Ready); wait until it runs
    /// the target and is Ready. `observe` yields `(version or image, ready)`, `None` while absent.
    async fn roll<F, Fut>(
        &self,
        node: &UpgradeNode,
        component: Component,
        upgraded: &[Component],
        check: &Check<impl Fn(&str) -> bool>,
        observe: F,
        report: &mut UpgradeReport,
    ) -> Result<(), KubernetesUpgradeError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = PortResult<Option<(String, bool)>>>,
    {
        let now = wait::retry(
            self.events,
            &resource(&node.name),
            check.reading,
            4,
            self.upgrade.timeouts.poll / 4,
            &observe,
        )
        .await
        .map_err(self.step_error(node, component, check.reading))?;
        let named = now
            .as_ref()
            .is_some_and(|(what, _)| (check.at_target)(what));
        if named && now.as_ref().is_some_and(|(_, ready)| *ready) {
            self.already(node, component, report);
            return Ok(());
        }
        let since = self.started(node, component);
        if !named {
            self.patch(node, component, upgraded).await?;
            report.patched.push((node.name.clone(), component));
        }
        wait::until(
            self.events,
            &resource(&node.name),
            &check.waiting,
            check.timeout,
            self.upgrade.timeouts.poll,
            || async {
                Ok(observe()
                    .await?
                    .filter(|(what, ready)| *ready && (check.at_target)(what))
                    .map(|_| ()))
            },
        )
        .await
        .map_err(self.step_error(
            node,
            component,
            "waiting for it to run the new version",
        ))?;
        self.finished(node, component, since);
        Ok(())
    }

    /// kube-proxy: `cluster.proxy.image` on every control plane (Talos renders the DaemonSet from it);
    /// nothing to do when the DaemonSet already runs the target. Not waited for, as talosctl does not.
    async fn proxy(
        &self,
        control_planes: &[&UpgradeNode],
        report: &mut UpgradeReport,
    ) -> Result<(), KubernetesUpgradeError> {
        let to = &self.upgrade.to;
        let image = self
            .kube
            .daemonset_image(self.upgrade.kubeconfig, "kube-system", "kube-proxy")
            .await
            .map_err(|source| KubernetesUpgradeError::Observe {
                what: "the kube-proxy DaemonSet",
                source,
            })?;
        let done = image.as_deref().is_some_and(|i| image_is(i, to));
        let upgraded = [
            Component::ApiServer,
            Component::ControllerManager,
            Component::Scheduler,
            Component::Proxy,
        ];
        for node in control_planes {
            if done {
                self.already(node, Component::Proxy, report);
                continue;
            }
            let since = self.started(node, Component::Proxy);
            self.patch(node, Component::Proxy, &upgraded).await?;
            report.patched.push((node.name.clone(), Component::Proxy));
            self.finished(node, Component::Proxy, since);
        }
        Ok(())
    }

    /// The kubelet of one node: the final config, then its Node reports the version and is Ready.
    async fn kubelet(
        &self,
        node: &UpgradeNode,
        report: &mut UpgradeReport,
    ) -> Result<(), KubernetesUpgradeError> {
        let observe = || async {
            let nodes = self.kube.nodes(self.upgrade.kubeconfig).await?;
            PortResult::Ok(
                nodes
                    .into_iter()
                    .find(|n| n.name == node.name || n.internal_ip == Some(node.apid.ip()))
                    .map(|n| (n.kubelet_version, n.ready)),
            )
        };
        let check = Check {
            reading: "its Node",
            waiting: format!(
                "the Node to report kubelet {} and be Ready",
                self.upgrade.to
            ),
            timeout: self.upgrade.timeouts.kubelet,
            at_target: |version: &str| is(version, &self.upgrade.to),
        };
        self.roll(
            node,
            Component::Kubelet,
            &Component::ALL,
            &check,
            observe,
            report,
        )
        .await
    }
}

/// How one step reads and waits for its component.
struct Check<P> {
    /// What is read (`its static pod`), for errors.
    reading: &'static str,
    /// What is waited for, for the Waiting events.
    waiting: String,
    timeout: Duration,
    /// Whether a reported image or version is the target.
    at_target: P,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(s: &str) -> Version {
        s.parse().expect("version")
    }

    #[test]
    fn retag_keeps_the_repository_and_drops_a_pinned_digest() {
        let to = v("1.36.2");
        assert_eq!(
            retag("registry.k8s.io/kube-apiserver:v1.35.0", &to),
            "registry.k8s.io/kube-apiserver:v1.36.2"
        );
        assert_eq!(
            retag("127.0.0.1:5000/kubelet:v1.35.0@sha256:ab", &to),
            "127.0.0.1:5000/kubelet:v1.36.2"
        );
        assert_eq!(
            retag("mirror.local/kube-proxy", &to),
            "mirror.local/kube-proxy:v1.36.2"
        );
        assert_eq!(
            image_version("127.0.0.1:5000/kubelet:v1.36.1@sha256:ab"),
            Some(v("1.36.1"))
        );
        assert_eq!(image_version("registry.k8s.io/pause:3.10"), None);
    }

    #[test]
    fn a_stage_names_the_new_version_only_for_the_upgraded_components() {
        let mut docs = vec![
            json!({"version": "v1alpha1",
                   "machine": {"kubelet": {"image": "ghcr.io/siderolabs/kubelet:v1.36.2"}},
                   "cluster": {"apiServer": {"image": "registry.k8s.io/kube-apiserver:v1.36.2"},
                               "controllerManager": {"image": "registry.k8s.io/kube-controller-manager:v1.36.2"},
                               "scheduler": {"image": "registry.k8s.io/kube-scheduler:v1.36.2"},
                               "proxy": {"image": "registry.k8s.io/kube-proxy:v1.36.2"}}}),
            json!({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": "cp1"}),
        ];
        let stage = StagedVersions {
            from: v("1.35.0"),
            to: v("1.36.2"),
            upgraded: vec![Component::ApiServer, Component::ControllerManager],
        };
        stage_documents(&mut docs, &stage);
        let image = |c: Component| docs[0].pointer(c.image_pointer()).cloned();
        assert_eq!(
            image(Component::ApiServer),
            Some(json!("registry.k8s.io/kube-apiserver:v1.36.2"))
        );
        assert_eq!(
            image(Component::ControllerManager),
            Some(json!("registry.k8s.io/kube-controller-manager:v1.36.2"))
        );
        assert_eq!(
            image(Component::Scheduler),
            Some(json!("registry.k8s.io/kube-scheduler:v1.35.0"))
        );
        assert_eq!(
            image(Component::Proxy),
            Some(json!("registry.k8s.io/kube-proxy:v1.35.0"))
        );
        assert_eq!(
            image(Component::Kubelet),
            Some(json!("ghcr.io/siderolabs/kubelet:v1.35.0"))
        );
        assert_eq!(docs[1]["hostname"], "cp1", "other documents untouched");

        // A worker's document names no static pods: none appear.
        let mut worker = vec![json!({"version": "v1alpha1",
            "machine": {"kubelet": {"image": "ghcr.io/siderolabs/kubelet:v1.36.2"}}, "cluster": {}})];
        stage_documents(&mut worker, &stage);
        assert_eq!(worker[0]["cluster"], json!({}));
    }
}
