//! The VM step: one Proxmox VM per node. Its diff (create, refuse a VM that is not ours, replace on
//! firmware/TPM changes, update in place with drift marked, start when stopped) and its action (create
//! without ever re-sending a create blindly, replace only when allowed, update, start) live here.

use homelab_config::Node;

use crate::desired;
use crate::flow::{Engine, EngineError, Run};
use crate::journal::{self, Journal};
use crate::plan::{Action, FieldChange, ResourceChange, Step};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, TalosApi, VmLive, VmWanted};
use crate::steps::image::ImageFacts;

/// What the VM step relies on: the VM as observed (absent, or a digest of its config and power state).
pub(crate) fn vm_digest(live: Option<&VmLive>) -> String {
    match live {
        None => "absent".into(),
        Some(l) => journal::digest(serde_json::to_string(l).unwrap_or_default().as_bytes())
            .get(..16)
            .unwrap_or_default()
            .to_string(),
    }
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    /// Stops (when `running`) and deletes VM `vm_id` on `proxmox_node`: a replace, a removal and a destroy
    /// end a VM the same way.
    pub(crate) async fn remove_vm(
        &self,
        resource: &str,
        proxmox_node: &str,
        vm_id: u32,
        running: bool,
    ) -> Result<(), EngineError> {
        if running {
            self.port(resource, self.hypervisor.stop_vm(proxmox_node, vm_id).await)?;
        }
        self.port(
            resource,
            self.hypervisor.delete_vm(proxmox_node, vm_id).await,
        )
    }

    /// The VM step's diff for `node`, with the VM as observed (for the machine-config step).
    pub(crate) async fn plan_vm(
        &self,
        node: &Node,
        image: &ImageFacts,
        journal: &Journal,
    ) -> Result<(Step, Option<VmLive>), EngineError> {
        let wanted = desired::vm_wanted(self.config, node, &image.volume);
        let live = self.port(
            &format!("vm.{}", node.name),
            self.hypervisor.vm(&node.proxmox_node, node.vm_id).await,
        )?;
        let change = planned_vm(&wanted, live.as_ref(), journal.vms.get(&node.name))?;
        Ok((change, live))
    }

    /// The VM step's diff for a node whose VM a replacement deletes first: a create.
    pub(crate) fn plan_fresh_vm(
        &self,
        node: &Node,
        image: &ImageFacts,
        journal: &Journal,
    ) -> Result<Step, EngineError> {
        let wanted = desired::vm_wanted(self.config, node, &image.volume);
        planned_vm(&wanted, None, journal.vms.get(&node.name))
    }

    /// The VM step. A VM locked by a running task is waited for first (the plan said so). Otherwise the
    /// VM must be as planned: a VM that changed since stops apply, unless it needs nothing now.
    pub(crate) async fn apply_vm(
        &self,
        node: &Node,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let image = match run.image.take() {
            Some(i) => i,
            None => self.image_facts().await?,
        };
        let r = self
            .ensure_vm(
                node,
                &image,
                planned,
                run.options.allow_replace,
                &mut run.journal,
            )
            .await;
        run.image = Some(image);
        r
    }

    async fn ensure_vm(
        &self,
        node: &Node,
        image: &ImageFacts,
        planned: &Step,
        allow_replace: bool,
        journal: &mut Journal,
    ) -> Result<(), EngineError> {
        let resource = format!("vm.{}", node.name);
        let wanted = desired::vm_wanted(self.config, node, &image.volume);
        let live = self.vm_unlocked(&resource, node).await?;
        let change = planned_vm(&wanted, live.as_ref(), journal.vms.get(&node.name))?;
        if planned.action != Action::Wait
            && change.action != Action::NoChange
            && let Some(what) = planned.changed_since(&change)
        {
            return Err(EngineError::Stale {
                resource,
                message: what,
            });
        }
        match change.action {
            Action::Create => {
                let since = self.started(&resource, "create");
                // A new VM has a blank disk: whatever config an earlier VM of this name took is gone.
                journal.machine_configs.remove(&node.name);
                self.create_vm(&resource, &wanted).await?;
                self.finished(&resource, "create", since);
            }
            Action::Replace if !allow_replace => {
                let fields: Vec<&str> = change
                    .fields
                    .iter()
                    .filter(|f| f.forces_replacement)
                    .map(|f| f.field.as_str())
                    .collect();
                return Err(EngineError::Refused {
                    resource,
                    message: format!(
                        "replacing the VM would destroy its disk, EFI vars and TPM state (changed: {})",
                        fields.join(", ")
                    ),
                    hint: "run again with --allow-replace if losing the node's data is intended"
                        .into(),
                });
            }
            Action::Replace => {
                let since = self.started(&resource, "replace");
                self.remove_vm(&resource, &node.proxmox_node, node.vm_id, true)
                    .await?;
                journal.machine_configs.remove(&node.name);
                self.create_vm(&resource, &wanted).await?;
                self.finished(&resource, "replace", since);
            }
            Action::Update => {
                let fields: Vec<String> = change
                    .fields
                    .iter()
                    .filter(|f| f.field != "running")
                    .map(|f| f.field.clone())
                    .collect();
                if !fields.is_empty() {
                    let since = self.started(&resource, "update");
                    self.retried(&resource, "update the VM", || {
                        self.hypervisor.update_vm(&wanted, &fields)
                    })
                    .await?;
                    self.events.info(
                        &resource,
                        format!(
                            "updated {}; hardware changes take effect when the VM restarts",
                            fields.join(", ")
                        ),
                    );
                    self.finished(&resource, "update", since);
                }
            }
            Action::NoChange | Action::Delete | Action::Wait | Action::Upgrade => {}
        }
        journal
            .vms
            .insert(node.name.clone(), journal::vm_record(&wanted));
        journal
            .nodes
            .insert(node.name.clone(), journal::node_record(node));
        let _ = journal.save(&self.state_dir);
        // A VM made just now is stopped; otherwise the state read above still holds (an update does not
        // change the power state). Reading it again would only repeat the same two GETs.
        let running = match change.action {
            Action::Create | Action::Replace => false,
            _ => live.as_ref().is_some_and(|l| l.running),
        };
        if !running {
            let since = self.started(&resource, "start");
            self.retried(&resource, "start the VM", || {
                self.hypervisor.start_vm(&node.proxmox_node, node.vm_id)
            })
            .await?;
            self.finished(&resource, "start", since);
        }
        Ok(())
    }

    pub(crate) async fn vm_live(
        &self,
        resource: &str,
        node: &Node,
    ) -> Result<Option<VmLive>, EngineError> {
        self.retried(resource, "read the VM", || {
            self.hypervisor.vm(&node.proxmox_node, node.vm_id)
        })
        .await
    }

    /// The VM once no task holds it: a locked VM (a create an interrupted run left running) is waited for,
    /// naming the task, and read again; its config before that is not what the VM will be.
    async fn vm_unlocked(
        &self,
        resource: &str,
        node: &Node,
    ) -> Result<Option<VmLive>, EngineError> {
        let mut live = self.vm_live(resource, node).await?;
        for _ in 0..3 {
            let Some(lock) = live.as_ref().and_then(|l| l.lock.clone()) else {
                break;
            };
            self.events.info(
                resource,
                match &lock.task {
                    Some(task) => format!(
                        "VM {} is locked ({}) by task {task}; waiting for it to end before comparing",
                        node.vm_id, lock.kind
                    ),
                    None => format!(
                        "VM {} is locked ({}) and no running task holds the lock",
                        node.vm_id, lock.kind
                    ),
                },
            );
            self.retried(resource, "wait for the VM's lock to clear", || {
                self.hypervisor
                    .wait_unlocked(&node.proxmox_node, node.vm_id)
            })
            .await?;
            live = self.vm_live(resource, node).await?;
        }
        Ok(live)
    }

    /// Creates the VM; a create is never re-sent blindly: after a failure the VM is looked up first.
    async fn create_vm(&self, resource: &str, wanted: &VmWanted) -> Result<(), EngineError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.hypervisor.create_vm(wanted).await {
                Ok(()) => return Ok(()),
                Err(e) if e.transient && attempt < self.timeouts.retries => {
                    self.events.info(
                        resource,
                        format!(
                            "create failed ({}); checking whether the VM exists before retrying",
                            e.message
                        ),
                    );
                    tokio::time::sleep(self.timeouts.poll / 5).await;
                    if self
                        .hypervisor
                        .vm(&wanted.proxmox_node, wanted.vm_id)
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                    {
                        return Ok(());
                    }
                }
                Err(e) => return Err(EngineError::step(resource, e)),
            }
        }
    }
}

pub(crate) fn refuse_foreign(
    resource: &str,
    vm_id: u32,
    found: Option<&str>,
    ours: &str,
) -> EngineError {
    EngineError::Refused {
        resource: resource.to_string(),
        message: format!(
            "VM {vm_id} exists but is named `{}`, not `{ours}`; it is not ours",
            found.unwrap_or("?")
        ),
        hint: "choose a free vm_id in homelab.yaml, or rename/remove that VM in Proxmox".into(),
    }
}

/// The planned change of one VM: create, refuse a foreign VM, replace on firmware/TPM changes, update in
/// place (marked as drift when the live value differs from what homelabctl last set), start if stopped.
pub fn vm_change(
    wanted: &VmWanted,
    live: Option<&VmLive>,
    last_applied: Option<&journal::VmRecord>,
) -> Result<ResourceChange, EngineError> {
    let address = format!("vm.{}", wanted.name);
    let Some(live) = live else {
        let mut change = ResourceChange::new(&address, Action::Create);
        for (field, value) in journal::vm_record(wanted).fields() {
            change
                .fields
                .push(FieldChange::new(field, None, Some(value)));
        }
        return Ok(change);
    };
    if let Some(lock) = &live.lock {
        // A locked VM's config is not final (under `lock: create` it holds nothing but the lock): it says
        // nothing about drift, and a replacement planned from it would destroy a VM that is merely not
        // finished.
        let reason = match &lock.task {
            Some(task) => format!(
                "locked ({}) by task {task}: apply waits for that task to end, then compares",
                lock.kind
            ),
            None => format!(
                "locked ({}) and no running task holds the lock (left by a task that died): apply stops here; remove the VM if it is half-made, or `qm unlock {}`",
                lock.kind, wanted.vm_id
            ),
        };
        return Ok(ResourceChange::new(&address, Action::Wait).because(reason));
    }
    if live.name.as_deref().is_some_and(|n| n != wanted.name) {
        return Err(refuse_foreign(
            &address,
            wanted.vm_id,
            live.name.as_deref(),
            &wanted.name,
        ));
    }
    let mut fields = Vec::new();
    let replacing = [
        ("bios", live.bios.clone(), "ovmf".to_string()),
        ("machine", live.machine.clone(), "q35".to_string()),
        (
            "efidisk0",
            live.efidisk
                .as_ref()
                .map(|(t, k)| format!("efitype={t},pre-enrolled-keys={}", u8::from(*k))),
            // Setup mode in both image modes (see the Proxmox adapter's `vm_spec`).
            "efitype=4m,pre-enrolled-keys=0".to_string(),
        ),
        ("tpmstate0", live.tpm_version.clone(), "v2.0".to_string()),
    ];
    for (field, have, want) in replacing {
        if have.as_deref() != Some(want.as_str()) {
            fields.push(FieldChange::new(field, have, Some(want)).replacing());
        }
    }
    let record = journal::vm_record(wanted);
    let live_fields = [
        ("cores", live.cores.map(|v| v.to_string())),
        ("memory", live.memory_mib.map(|v| v.to_string())),
        ("mac", live.mac.as_ref().map(|m| m.to_ascii_uppercase())),
        ("bridge", live.bridge.clone()),
        (
            "vlan",
            Some(live.vlan.map(|v| v.to_string()).unwrap_or_default()),
        ),
    ];
    for (field, have) in live_fields {
        let want = record.get(field);
        if have.as_deref() != Some(want.as_str()) {
            let last = last_applied.map(|r| r.get(field));
            let mut change = FieldChange::new(field, have, Some(want.clone()));
            if last.as_deref() == Some(want.as_str()) {
                change = change.drifted();
            }
            fields.push(change);
        }
    }
    // Cloud-init address, extra disks and NICs: in-place updates (see `hardware`).
    fields.extend(crate::hardware::changes(wanted, live));
    if !live.running {
        fields.push(FieldChange::new(
            "running",
            Some("false".into()),
            Some("true".into()),
        ));
    }
    let action = if fields.iter().any(|f| f.forces_replacement) {
        Action::Replace
    } else if fields.is_empty() {
        Action::NoChange
    } else {
        Action::Update
    };
    let mut change = ResourceChange::new(address, action);
    if action == Action::Replace {
        change = change.because(
            "firmware, EFI vars or TPM state differ: the VM must be recreated and its data is lost",
        );
    } else if fields.iter().any(|f| f.drift) {
        change = change.because("changed outside homelabctl (drift)");
    }
    change.fields = fields;
    Ok(change)
}

/// [`vm_change`] with what it relies on: the VM as observed (none while a task holds it locked: its config
/// is not final).
fn planned_vm(
    wanted: &VmWanted,
    live: Option<&VmLive>,
    last_applied: Option<&journal::VmRecord>,
) -> Result<Step, EngineError> {
    let change = vm_change(wanted, live, last_applied)?;
    Ok(if change.action == Action::Wait {
        change
    } else {
        change.requires("vm_digest", vm_digest(live))
    })
}
