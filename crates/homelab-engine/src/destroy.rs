//! `destroy`: the cluster's VMs removed in reverse order (Talos reset first when asked), optionally the
//! ISO. Only what homelabctl created is deleted: a VM must carry its name and either the `homelabctl` tag set
//! at create or a journal record; anything else is refused, naming it. Nodes homelab.yaml no longer names but
//! the journal still records (a removal never applied) go too. Things already gone are fine. The journal is
//! emptied.

use std::net::SocketAddr;

use crate::desired;
use crate::flow::{Engine, EngineError};
use crate::journal::Journal;
use crate::ports::{Hypervisor, ImageFactory, KubeApi, OWNER_TAG, TalosApi};
use crate::steps::remove::refuse_not_ours;
use crate::steps::vm::refuse_foreign;

/// A VM destroy deletes: homelab.yaml's nodes, then the journal's that homelab.yaml no longer names.
struct Target {
    name: String,
    proxmox_node: String,
    vm_id: u32,
    at: SocketAddr,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// Removes the cluster's VMs (optionally resetting Talos first) and, if asked, the ISO. Things already
    /// gone are fine; a VM homelabctl did not create is refused before anything is deleted.
    pub async fn destroy(&self, reset_talos: bool, remove_iso: bool) -> Result<(), EngineError> {
        let journal = Journal::load(&self.state_dir);
        let mut targets: Vec<Target> = self
            .config
            .nodes
            .iter()
            .rev()
            .map(|n| Target {
                name: n.name.clone(),
                proxmox_node: n.proxmox_node.clone(),
                vm_id: n.vm_id,
                at: desired::installed_address(n),
            })
            .collect();
        for (name, record) in &journal.nodes {
            if !targets.iter().any(|t| &t.name == name) {
                targets.push(Target {
                    name: name.clone(),
                    proxmox_node: record.proxmox_node.clone(),
                    vm_id: record.vm_id,
                    at: SocketAddr::new(record.address, desired::APID_PORT),
                });
            }
        }
        // Every VM is checked before any is deleted: a refusal leaves the cluster whole.
        let mut doomed = Vec::new();
        for t in targets {
            let resource = format!("vm.{}", t.name);
            let live = self
                .retried(&resource, "read the VM", || {
                    self.hypervisor.vm(&t.proxmox_node, t.vm_id)
                })
                .await?;
            let Some(live) = live else {
                self.events.info(&resource, "already gone");
                continue;
            };
            if live.name.as_deref() != Some(t.name.as_str()) {
                return Err(refuse_foreign(
                    &resource,
                    t.vm_id,
                    live.name.as_deref(),
                    &t.name,
                ));
            }
            if !live.tags.iter().any(|tag| tag == OWNER_TAG) && !journal.vms.contains_key(&t.name) {
                return Err(refuse_not_ours(&resource, t.vm_id));
            }
            doomed.push((resource, t, live.running));
        }
        for (resource, t, running) in doomed {
            let since = self.started(&resource, "destroy");
            if reset_talos
                && running
                && self
                    .talos
                    .installed_version(t.at)
                    .await
                    .unwrap_or(None)
                    .is_some()
                && let Err(e) = self.talos.reset(t.at).await
            {
                self.events.warn(
                    &resource,
                    format!("Talos reset failed ({}); removing the VM anyway", e.message),
                );
            }
            self.remove_vm(&resource, &t.proxmox_node, t.vm_id, running)
                .await?;
            self.finished(&resource, "destroy", since);
        }
        if remove_iso {
            // Every copy: one per host that ran a node, or the one on a shared storage.
            let image = self.image_facts().await?;
            let targets = self.port(
                "image",
                crate::placement::iso_targets(self.config, self.hypervisor).await,
            )?;
            for target in targets.iter().filter(|t| !image.missing.contains(t)) {
                self.port(
                    "image",
                    self.hypervisor
                        .delete_iso(&target.proxmox_node, &target.storage, &image.file)
                        .await,
                )?;
                self.events.info(
                    "image",
                    format!("removed {} on {}", image.volume, target.proxmox_node),
                );
            }
        }
        let mut journal = Journal::load(&self.state_dir);
        journal.machine_configs.clear();
        journal.vms.clear();
        journal.nodes.clear();
        journal.replacing.clear();
        journal.upgrades.clear();
        journal.last_step = None;
        let _ = journal.save(&self.state_dir);
        Ok(())
    }
}
