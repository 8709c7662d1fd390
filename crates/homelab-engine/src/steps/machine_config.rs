//! The machine-config step: each node's Talos config. A fresh node gets it in maintenance mode and installs
//! (awaited later, so installs run side by side); an installed node gets a changed config applied in place.
//! The installer image an installed node's config names is the one it runs: moving it is the upgrade step's
//! business ([`crate::steps::talos_upgrade`]).

use std::net::SocketAddr;
use std::time::Instant;

use homelab_config::Node;
use zeroize::Zeroizing;

use crate::desired::{self, RenderedNode};
use crate::flow::{Engine, EngineError, Run};
use crate::journal::{self, AppliedConfig, Journal};
use crate::plan::{Action, ResourceChange, Step, line_diff};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, PortError, TalosApi};
use crate::steps::image::ImageFacts;
use crate::steps::talos_upgrade::running_image;
use crate::versions::Version;

/// A node whose config was applied in maintenance mode and that is installing (its step still open).
pub(crate) struct Installing {
    since: Instant,
    /// The config was applied by an earlier run: if the node is back in maintenance mode (reset, or the
    /// answer was lost before the apply), it is applied again while waiting.
    reapply: Option<Zeroizing<Vec<u8>>>,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// The installer image `node`'s machine config names: the wanted one for a node still to install; for
    /// an installed node the one it runs. Only the upgrade step moves a running node to another version or
    /// schematic: a config naming a new installer image upgrades nothing (`machine.install.image` is read
    /// at the next install), so the config step must not plan that as an update.
    pub(crate) fn config_image(
        &self,
        node: &Node,
        schematic: &str,
        installed: Option<&str>,
        journal: &Journal,
    ) -> String {
        let wanted = self.factory.installer_image(schematic);
        match installed {
            None => wanted,
            Some(version) => {
                running_image(&wanted, version, journal.machine_configs.get(&node.name))
            }
        }
    }

    /// The machine-config step's diff for `node`, which runs `installed` (None: not answering installed).
    /// It relies on the Talos version the node runs and on the config last applied to it.
    pub(crate) fn plan_config(
        &self,
        node: &Node,
        image: &ImageFacts,
        installed: Option<&str>,
        kubernetes: Option<&Version>,
        journal: &Journal,
    ) -> Result<Step, EngineError> {
        let rendered = self.render_running(
            node,
            &self.config_image(node, &image.schematic, installed, journal),
            kubernetes,
        )?;
        let applied = journal.machine_configs.get(&node.name);
        Ok(config_step(node, &rendered, installed, applied))
    }

    /// The machine-config step: apply in maintenance mode (the install is awaited by a later step, so
    /// installs run side by side) or to the installed node.
    pub(crate) async fn apply_config(
        &self,
        node: &Node,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let schematic = match &run.image {
            Some(i) => i.schematic.clone(),
            None => self.image_facts().await?.schematic,
        };
        if let Some(i) = self
            .ensure_config(
                node,
                planned,
                &schematic,
                run.kubernetes_running.as_ref(),
                &mut run.journal,
            )
            .await?
        {
            run.installing.insert(node.name.clone(), i);
        }
        Ok(())
    }

    /// Applies the node's config: to an installed node when it changed, or in maintenance mode to a fresh one
    /// (which then installs: the returned [`Installing`] is awaited later, so installs run side by side).
    async fn ensure_config(
        &self,
        node: &Node,
        planned: &Step,
        schematic: &str,
        kubernetes: Option<&Version>,
        journal: &mut Journal,
    ) -> Result<Option<Installing>, EngineError> {
        let resource = format!("machine_config.{}", node.name);
        let at = desired::installed_address(node);
        let installed = self.talos.installed_version(at).await.unwrap_or(None);
        let installer_image = self.config_image(node, schematic, installed.as_deref(), journal);
        let rendered = self.render_running(node, &installer_image, kubernetes)?;
        let now = config_step(
            node,
            &rendered,
            installed.as_deref(),
            journal.machine_configs.get(&node.name),
        );
        // A node not answering now is installing or rebooting: the install path below waits for it. A node
        // answering with another version, or a config that changed when none was planned, is not what the
        // plan was made for.
        let version_moved = installed.is_some()
            && planned.action != Action::Create
            && planned
                .changed_since(&now)
                .is_some_and(|m| m.starts_with("talos_version"));
        if version_moved || (planned.action == Action::NoChange && now.action == Action::Update) {
            return Err(EngineError::Stale {
                resource,
                message: planned.changed_since(&now).unwrap_or_default(),
            });
        }
        let digest = journal::digest(&rendered.config);
        let record = AppliedConfig {
            sha256: digest.clone(),
            redacted: rendered.redacted.clone(),
            installer_image: Some(installer_image.clone()),
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
    pub(crate) async fn await_installed(
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
}

/// [`config_change`] with what it relies on: the Talos version the node runs and the config last applied.
fn config_step(
    node: &Node,
    rendered: &RenderedNode,
    installed: Option<&str>,
    applied: Option<&AppliedConfig>,
) -> Step {
    config_change(node, rendered, installed.is_some(), applied)
        .requires("talos_version", installed.unwrap_or("not installed"))
        .requires(
            "applied_config_sha256",
            applied.map_or("none", |a| a.sha256.get(..16).unwrap_or_default()),
        )
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
