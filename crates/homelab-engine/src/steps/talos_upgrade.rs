//! The Talos upgrade step: how homelabctl upgrades a node. A change of `image.talos_version` or of the
//! schematic plans, per installed node, an upgrade in place (never a VM replacement), refused at plan time
//! when Talos would refuse the path. Apply rolls them one node at a time, control planes first:
//!
//! 1. before the first upgrade, an encrypted etcd snapshot (its file is named in the output);
//! 2. before a control plane, etcd healthy with every control plane a voting member;
//! 3. MachineService.Upgrade with the installer image of the target version and schematic, never `force`
//!    (Talos checks etcd itself and refuses while it is unhealthy: that answer is waited out);
//! 4. the node must reboot (its boot ID, read before step 3, changes) and answer with the new version: one
//!    that comes back on the old version rolled back (Talos' A/B boot) and stops the roll with an error
//!    naming it, nothing else touched;
//! 5. a control plane votes in etcd again, the node's config is brought to the new installer image (no
//!    reboot: `machine.install.image` only matters at the next install), and the node is Ready.
//!
//! A rerun after SIGKILL never upgrades a node twice: a node answering the target version is done, and the
//! upgrade is journaled (with the boot ID) before the node is asked, so the rerun waits for its outcome once
//! the node rebooted, and asks again only while it still runs the boot it was asked in (Talos runs one
//! upgrade sequence at a time: a request arriving while one prepares starts nothing).

use std::sync::atomic::{AtomicBool, Ordering};

use homelab_config::{Node, Role};

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::journal::{self, AppliedConfig, Journal, UpgradeRequested};
use crate::plan::{Action, Disruption, FieldChange, ResourceChange, Step};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, PortError, TalosApi};
use crate::steps::image::ImageFacts;
use crate::versions::{self, Version};

/// The tag of an image reference (`…/installer-secureboot/<schematic>:v1.12.4` → `v1.12.4`).
pub(crate) fn image_tag(image: &str) -> Option<&str> {
    let (_, tag) = image.rsplit_once(':')?;
    // A colon before the last path segment is a registry port, not a tag.
    (!tag.contains('/')).then_some(tag)
}

/// `image` with its tag replaced by `version`.
pub(crate) fn retag(image: &str, version: &str) -> String {
    match image_tag(image) {
        Some(tag) => format!("{}{version}", &image[..image.len() - tag.len()]),
        None => format!("{image}:{version}"),
    }
}

/// The installer image a node running `running` was installed or upgraded with: the one the journal
/// recorded when its tag is that version (it carries the schematic), else the wanted image at that version
/// (no record: a schematic change cannot be told then, only a version change).
pub(crate) fn running_image(
    wanted: &str,
    running: &str,
    applied: Option<&AppliedConfig>,
) -> String {
    match applied.and_then(|a| a.installer_image.as_deref()) {
        Some(image) if image_tag(image) == Some(running) => image.to_string(),
        _ => retag(wanted, running),
    }
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// The upgrade step's diff for `node`, which runs `installed`: an upgrade in place when it runs another
    /// version or schematic than homelab.yaml wants; none for a node not installed (it installs the
    /// wanted image). Refuses a path Talos refuses, before anything is touched.
    pub(crate) fn plan_upgrade(
        &self,
        node: &Node,
        image: &ImageFacts,
        installed: Option<&str>,
        kubernetes: Option<&Version>,
        journal: &Journal,
    ) -> Result<Option<Step>, EngineError> {
        let Some(running) = installed else {
            return Ok(None);
        };
        let wanted = self.factory.installer_image(&image.schematic);
        let current = running_image(&wanted, running, journal.machine_configs.get(&node.name));
        if current == wanted {
            return Ok(None);
        }
        let to = self.config.image.talos_version.with_v();
        let resource = format!("talos_upgrade.{}", node.name);
        let refused = |message: String| EngineError::Refused {
            resource: resource.clone(),
            message,
            hint: format!(
                "set image.talos_version to a release {running} can be upgraded to (one minor step at a \
                 time, e.g. the newest patch of the next minor), apply, then go on to {to}"
            ),
        };
        let target = &self.config.image.talos_version;
        if running != to {
            let from: Version = running
                .parse()
                .map_err(|e| refused(format!("{} runs Talos {running:?}: {e}", node.name)))?;
            versions::talos_upgrade_path(&from, target).map_err(|r| refused(r.to_string()))?;
        }
        // The Kubernetes the cluster runs during the roll (its own upgrade comes after) must run on the
        // target Talos.
        let kubernetes = kubernetes.unwrap_or(&self.config.cluster.kubernetes_version);
        versions::kubernetes_supported(kubernetes, target).map_err(|r| refused(r.to_string()))?;
        let reason = if running == to {
            format!("{running}, new schematic, reboots one node at a time")
        } else {
            format!("{running} → {to}, reboots one node at a time")
        };
        let mut step = ResourceChange::new(resource, Action::Upgrade).because(reason);
        step.disruption = Disruption::RebootOneAtATime;
        step.fields.push(FieldChange::new(
            "talos_version",
            Some(running.to_string()),
            Some(to),
        ));
        step.fields.push(FieldChange::new(
            "installer_image",
            Some(current.clone()),
            Some(wanted),
        ));
        Ok(Some(
            step.requires("talos_version", running)
                .requires("installer_image", current),
        ))
    }

    /// The upgrade step for one node (see the module's documentation for the procedure).
    pub(crate) async fn apply_upgrade(
        &self,
        node: &Node,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let resource = planned.address.as_str();
        let at = desired::installed_address(node);
        let schematic = match &run.image {
            Some(i) => i.schematic.clone(),
            None => self.image_facts().await?.schematic,
        };
        let wanted = self.factory.installer_image(&schematic);
        let to = self.config.image.talos_version.with_v();
        let running = self
            .awaited(
                resource,
                &format!("{} to answer", node.name),
                "it may still be rebooting from an earlier run",
                self.timeouts.install,
                || async { self.talos.installed_version(at).await },
            )
            .await?;
        let requested = run
            .journal
            .upgrades
            .get(&node.name)
            .filter(|r| r.image == wanted)
            .cloned();
        let current = running_image(
            &wanted,
            &running,
            run.journal.machine_configs.get(&node.name),
        );
        let done = current == wanted
            || requested
                .as_ref()
                .is_some_and(|r| r.from != to && running == to);
        if done {
            self.events.info(
                resource,
                format!("{} already runs {to}: not upgraded again", node.name),
            );
            return self.settle_upgraded(node, resource, &wanted, run).await;
        }
        let planned_from = planned
            .preconditions
            .iter()
            .find(|p| p.fact == "talos_version")
            .map(|p| p.value.as_str());
        if requested.is_none() && planned_from != Some(running.as_str()) {
            return Err(EngineError::Stale {
                resource: resource.to_string(),
                message: format!(
                    "talos_version was {} when planned, is {running} now",
                    planned_from.unwrap_or("unknown")
                ),
            });
        }
        let since = self.started(resource, "upgrade");
        let (from, boot_id) = match requested {
            Some(r) => {
                let now = match r.boot_id {
                    Some(_) => Some(self.current_boot(node, resource).await?),
                    None => None,
                };
                if r.boot_id.is_some() && now == r.boot_id && running == r.from {
                    // The earlier run may have been cut off before the node took the request. Asking
                    // again is safe: Talos runs one upgrade sequence at a time, so a second request
                    // while the first prepares starts nothing.
                    self.events.info(
                        resource,
                        format!(
                            "an earlier run meant to upgrade {} to {to} and it has not rebooted since; asking again",
                            node.name
                        ),
                    );
                    self.request_upgrade(node, resource, &wanted, &to).await?;
                } else {
                    self.events.info(
                        resource,
                        format!(
                            "an earlier run asked {} to upgrade to {to}; waiting for that outcome instead of asking again",
                            node.name
                        ),
                    );
                }
                (r.from, r.boot_id)
            }
            None => {
                self.snapshot_first(resource, run).await?;
                if node.role == Role::Controlplane {
                    self.etcd_gate(resource).await?;
                }
                let boot_id = self.current_boot(node, resource).await?;
                // Journaled before asking: a run killed once the node took the request waits for it.
                run.journal.upgrades.insert(
                    node.name.clone(),
                    UpgradeRequested {
                        from: running.clone(),
                        image: wanted.clone(),
                        boot_id: Some(boot_id.clone()),
                    },
                );
                let _ = run.journal.save(&self.state_dir);
                self.request_upgrade(node, resource, &wanted, &to).await?;
                (running, Some(boot_id))
            }
        };
        let outcome = self
            .await_reboot(node, resource, &from, &to, boot_id.as_deref())
            .await;
        // Seen through either way: a rerun decides afresh from the version the node answers with.
        run.journal.upgrades.remove(&node.name);
        let _ = run.journal.save(&self.state_dir);
        outcome?;
        self.events
            .info(resource, format!("{} answers with {to}", node.name));
        self.settle_upgraded(node, resource, &wanted, run).await?;
        self.finished(resource, "upgrade", since);
        Ok(())
    }

    /// Takes the encrypted etcd snapshot every upgrade starts with, once per run, and names its file.
    async fn snapshot_first(&self, resource: &str, run: &mut Run<'_>) -> Result<(), EngineError> {
        if run.snapshot.is_some() {
            return Ok(());
        }
        let Some(taker) = run.options.snapshot else {
            return Err(EngineError::Refused {
                resource: resource.to_string(),
                message: "an upgrade starts with an etcd snapshot, and this run cannot take one"
                    .into(),
                hint: "run `homelabctl apply`, which writes the snapshot encrypted under backups/"
                    .into(),
            });
        };
        self.events.info(
            resource,
            "taking an encrypted etcd snapshot before the first upgrade",
        );
        let path = taker.take().await.map_err(|message| EngineError::Refused {
            resource: resource.to_string(),
            message: format!("the etcd snapshot before the upgrade failed: {message}"),
            hint: "check `homelabctl etcd members` and `homelabctl status`; nothing was upgraded"
                .into(),
        })?;
        self.events
            .info(resource, format!("etcd snapshot written to {path}"));
        run.snapshot = Some(path);
        Ok(())
    }

    /// Before a control plane goes down: etcd answers and every control plane is a voting member.
    async fn etcd_gate(&self, resource: &str) -> Result<(), EngineError> {
        self.awaited(
            resource,
            "etcd to be healthy with every control plane a voting member",
            "a control plane is upgraded only while the others keep quorum",
            self.timeouts.kubernetes,
            || async {
                let members = self.members().await;
                let missing = self.missing_members(&members);
                if missing.is_empty() {
                    Ok(Some(()))
                } else {
                    Err(PortError::transient(format!(
                        "not voting members: {}",
                        missing.join(", ")
                    )))
                }
            },
        )
        .await
    }

    /// Sends Upgrade; Talos refuses while etcd is unhealthy (waited out). A call whose answer was lost is
    /// not sent again once the node answers with the target version.
    async fn request_upgrade(
        &self,
        node: &Node,
        resource: &str,
        image: &str,
        to: &str,
    ) -> Result<(), EngineError> {
        let at = desired::installed_address(node);
        let sent = AtomicBool::new(false);
        self.awaited(
            resource,
            &format!("{} to accept the upgrade to {image}", node.name),
            "Talos checks etcd's health and membership before it upgrades a control plane",
            self.timeouts.kubernetes,
            || async {
                if sent.load(Ordering::Relaxed)
                    && self.talos.installed_version(at).await?.as_deref() == Some(to)
                {
                    return Ok(Some(()));
                }
                sent.store(true, Ordering::Relaxed);
                self.talos.upgrade(at, image).await.map(Some)
            },
        )
        .await?;
        self.events.info(
            resource,
            format!(
                "{} accepted the upgrade to {to}; it reboots into it",
                node.name
            ),
        );
        Ok(())
    }

    /// The boot ID `node` runs now, read before it is asked to upgrade.
    async fn current_boot(&self, node: &Node, resource: &str) -> Result<String, EngineError> {
        let at = desired::installed_address(node);
        self.awaited(
            resource,
            &format!("{} to tell its boot ID", node.name),
            "the boot ID tells the reboot into the new version from the boot before it",
            self.timeouts.kubernetes,
            || async { self.talos.boot_id(at).await },
        )
        .await
    }

    /// Waits for the node to reboot into `to`: it answers with a boot ID other than `before` (or, for a
    /// journal from before boot IDs, after it went away). Coming back on another version is a rollback
    /// (Talos' A/B boot): an error naming the node.
    async fn await_reboot(
        &self,
        node: &Node,
        resource: &str,
        from: &str,
        to: &str,
        before: Option<&str>,
    ) -> Result<(), EngineError> {
        let at = desired::installed_address(node);
        let went_away = AtomicBool::new(false);
        let seen = self
            .awaited(
                resource,
                &format!("{} to reboot into {to}", node.name),
                "Talos writes the new image to its other boot slot, then reboots",
                self.timeouts.install,
                || async {
                    let rebooted = match before {
                        Some(before) => match self.talos.boot_id(at).await? {
                            Some(now) => now != before,
                            None => return Err(PortError::transient("not answering: rebooting")),
                        },
                        None => went_away.load(Ordering::Relaxed),
                    };
                    match self.talos.installed_version(at).await? {
                        Some(v) if rebooted => Ok(Some(v)),
                        Some(v) if before.is_none() && v == to && from != to => Ok(Some(v)),
                        Some(v) => Err(PortError::transient(format!(
                            "still answering with {v} from the boot before the upgrade: not rebooted yet"
                        ))),
                        None => {
                            went_away.store(true, Ordering::Relaxed);
                            Err(PortError::transient("not answering: rebooting"))
                        }
                    }
                },
            )
            .await?;
        if seen != to {
            return Err(EngineError::Refused {
                resource: resource.to_string(),
                message: format!(
                    "{} came back on {seen}, not {to}: Talos rolled the upgrade back (A/B boot); the roll \
                     stopped here and no other node was touched",
                    node.name
                ),
                hint: format!(
                    "look at why {to} did not boot on {} (console, `talosctl dmesg`), then run apply again",
                    node.name
                ),
            });
        }
        Ok(())
    }

    /// After the node runs the wanted image: a control plane votes in etcd again, its config names the new
    /// installer image (applied without a reboot), and it is Ready.
    async fn settle_upgraded(
        &self,
        node: &Node,
        resource: &str,
        image: &str,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let at = desired::installed_address(node);
        if node.role == Role::Controlplane {
            self.etcd_gate(resource).await?;
        }
        let rendered = self.render_running(node, image, run.kubernetes_running.as_ref())?;
        let digest = journal::digest(&rendered.config);
        if run
            .journal
            .machine_configs
            .get(&node.name)
            .is_none_or(|a| a.sha256 != digest)
        {
            self.retried(
                resource,
                "apply the config naming the new installer image",
                || self.talos.apply_installed(at, &rendered.config),
            )
            .await?;
        }
        run.journal.machine_configs.insert(
            node.name.clone(),
            AppliedConfig {
                sha256: digest,
                redacted: rendered.redacted.clone(),
                installer_image: Some(image.to_string()),
            },
        );
        let _ = run.journal.save(&self.state_dir);
        let kubeconfig = match &run.kubeconfig {
            Some(k) => k.clone(),
            None => zeroize::Zeroizing::new(self.port(resource, self.kubeconfig().await)?),
        };
        self.await_ready(
            resource,
            &kubeconfig,
            &node.name,
            "the kubelet starts again after the reboot and registers",
        )
        .await?;
        run.kubeconfig = Some(kubeconfig);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_image_keeps_the_recorded_schematic_for_its_version() {
        let wanted = "factory.talos.dev/nocloud-installer-secureboot/abc:v1.12.11";
        assert_eq!(
            running_image(wanted, "v1.12.4", None),
            "factory.talos.dev/nocloud-installer-secureboot/abc:v1.12.4"
        );
        let applied = AppliedConfig {
            installer_image: Some(
                "factory.talos.dev/nocloud-installer-secureboot/old:v1.12.11".into(),
            ),
            ..AppliedConfig::default()
        };
        assert_eq!(
            running_image(wanted, "v1.12.11", Some(&applied)),
            "factory.talos.dev/nocloud-installer-secureboot/old:v1.12.11",
            "a schematic change is seen through the journal"
        );
        assert_eq!(
            retag("127.0.0.1:5000/installer", "v1.2.3"),
            "127.0.0.1:5000/installer:v1.2.3"
        );
    }
}
