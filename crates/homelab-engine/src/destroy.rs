//! `destroy`: the cluster's VMs removed in reverse order (Talos reset first when asked), optionally the
//! ISO; a VM that is not ours is refused; things already gone are fine. The journal is emptied.

use crate::desired;
use crate::flow::{Engine, EngineError};
use crate::journal::Journal;
use crate::ports::{Hypervisor, ImageFactory, KubeApi, TalosApi};
use crate::steps::vm::refuse_foreign;

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// Removes the cluster's VMs (optionally resetting Talos first) and, if asked, the ISO. Things already
    /// gone are fine.
    pub async fn destroy(&self, reset_talos: bool, remove_iso: bool) -> Result<(), EngineError> {
        for node in self.config.nodes.iter().rev() {
            let resource = format!("vm.{}", node.name);
            let Some(live) = self.vm_live(&resource, node).await? else {
                self.events.info(&resource, "already gone");
                continue;
            };
            if live.name.as_deref().is_some_and(|n| n != node.name) {
                return Err(refuse_foreign(
                    &resource,
                    node.vm_id,
                    live.name.as_deref(),
                    &node.name,
                ));
            }
            let since = self.started(&resource, "destroy");
            if reset_talos
                && live.running
                && self
                    .talos
                    .installed_version(desired::installed_address(node))
                    .await
                    .unwrap_or(None)
                    .is_some()
                && let Err(e) = self.talos.reset(desired::installed_address(node)).await
            {
                self.events.warn(
                    &resource,
                    format!("Talos reset failed ({}); removing the VM anyway", e.message),
                );
            }
            self.remove_vm(&resource, node, live.running).await?;
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
        journal.last_step = None;
        let _ = journal.save(&self.state_dir);
        Ok(())
    }
}
