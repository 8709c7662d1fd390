//! Proxmox as it really behaves, through the whole flow: a VM an interrupted apply left under `lock: create`
//! is waited for, never planned as a replacement; both image modes boot in the firmware model (pre-enrolled
//! keys are never sent); a VM's per-VM ACL dies with it, so destroy-then-apply with per-VM grants is refused
//! as on PVE and works with the grant `doctor` recommends.

use std::collections::BTreeSet;
use std::time::Duration;

use homelab_engine::events::Event;
use homelab_engine::plan::Action;
use homelab_proxmox::doctor::{self, CheckStatus, DoctorInput, DoctorVm};
use homelab_sim::lab::Lab;
use homelab_sim::proxmox::{Acl, AclEntry, SIDERO_SIGNER, SecureBoot, all_privileges};

use super::lab::{World, homelab_yaml};

/// Polls until `cond` holds; the lab's state, not the clock, ends the wait.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never reached: {what}");
}

fn infos(w: &World) -> Vec<String> {
    w.events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            Event::Info { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_left_under_a_create_lock_is_waited_for_not_replaced() {
    let w = World::start(60).await;
    w.lab.proxmox.hold_tasks("qmcreate");
    // An apply interrupted while the VM is being created: the future is dropped mid-create.
    let engine = w.engine();
    tokio::select! {
        r = engine.converge(false) => panic!("the create is held, apply cannot finish: {:?}", r.err()),
        () = until("the VM under lock: create", || {
            w.lab.proxmox.vm(100).and_then(|v| v.lock).as_deref() == Some("create")
        }) => {}
    }
    let qmcreate = w
        .lab
        .proxmox
        .tasks()
        .into_iter()
        .find(|(kind, _, _)| kind == "qmcreate")
        .expect("the create task");
    assert_eq!(qmcreate.2, None, "still running");

    let plan = w.engine().plan().await.expect("plan");
    let vm = plan
        .changes
        .iter()
        .find(|c| c.address == "vm.talos-cp-01")
        .expect("vm in the plan");
    assert_eq!(vm.action, Action::Wait, "{vm:?}");
    assert!(vm.fields.is_empty(), "nothing is compared yet: {vm:?}");
    let reason = vm.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("locked (create) by task UPID:") && reason.contains(":qmcreate:100:"),
        "{reason}"
    );
    assert!(!plan.changes.iter().any(|c| c.action == Action::Replace));

    // Apply again at once: it waits for the create (named), then goes on from there.
    let engine = w.engine();
    let (done, ()) = tokio::join!(engine.converge(false), async {
        until("apply says it waits for the lock", || {
            infos(&w)
                .iter()
                .any(|m| m.contains("is locked (create) by task") && m.contains("waiting"))
        })
        .await;
        w.lab.proxmox.release_tasks("qmcreate");
    });
    done.unwrap_or_else(|e| panic!("converge: {e}\n{:?}", w.events.lock().expect("lock")));
    assert_eq!(
        w.lab.proxmox.task_count("qmcreate"),
        1,
        "one create in the simulator's life"
    );
    assert_eq!(w.lab.proxmox.task_count("qmdestroy"), 0, "nothing replaced");
    let vm = w.lab.proxmox.vm(100).expect("vm");
    assert!(vm.running && vm.lock.is_none());
    // The SecureBoot ISO found the firmware in setup mode and enrolled Sidero's keys.
    assert_eq!(
        vm.firmware,
        SecureBoot::Enforcing {
            db: vec![SIDERO_SIGNER.to_string()]
        }
    );
    assert!(!w.engine().plan().await.expect("plan").has_changes());
}

fn plain_uefi_yaml(lab: &Lab, subnet: u8) -> String {
    homelab_yaml(lab, subnet)
        .replacen("image:\n", "image:\n  secureboot: false\n", 1)
        .replacen(
            "    vm_id: 100\n",
            "    vm_id: 100\n    encryption: none\n",
            1,
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_iso_boots_too_on_an_efi_disk_without_pre_enrolled_keys() {
    let w = World::start_with(61, plain_uefi_yaml).await;
    assert!(!w.config.image.secureboot);
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("converge: {e}\n{:?}", w.events.lock().expect("lock")));
    let vm = w.lab.proxmox.vm(100).expect("vm");
    assert!(
        vm.config
            .get("efidisk0")
            .is_some_and(|e| e.contains("pre-enrolled-keys=0")),
        "{:?}",
        vm.config
    );
    assert_eq!(vm.boot_refused, None);
    assert_eq!(
        vm.firmware,
        SecureBoot::SetupMode,
        "an unsigned ISO enrols nothing"
    );
    assert!(w.lab.node(100).is_some_and(|n| n.is_bootstrapped()));
}

/// Everything but the VM privileges on `/`; the VM privileges on `/vms/{vmid}` only.
fn per_vm_acl(w: &World, vmid: u32) -> Acl {
    let all = all_privileges(w.lab.proxmox.version());
    let not_vm: BTreeSet<String> = all
        .iter()
        .filter(|p| !p.starts_with("VM."))
        .cloned()
        .collect();
    Acl {
        entries: vec![
            AclEntry {
                path: "/".into(),
                privs: not_vm,
                propagate: true,
            },
            AclEntry {
                path: format!("/vms/{vmid}"),
                privs: all,
                propagate: true,
            },
        ],
    }
}

/// The path and privileges of the `pveum` grant a doctor fix names.
fn recommended_grant(fix: &str) -> (String, BTreeSet<String>) {
    let privs = fix
        .split("--privs \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the fix names the privileges");
    let path = fix
        .split("pveum acl modify ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the fix names the path");
    (
        path.to_string(),
        privs.split(',').map(str::to_string).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_then_apply_with_per_vm_grants_is_refused_as_on_pve_and_works_with_the_doctors_grant()
 {
    let w = World::start(62).await;
    w.lab.proxmox.set_acl(per_vm_acl(&w, 100));
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("first apply: {e}"));
    w.engine().destroy(false, false).await.expect("destroy");
    let left: Vec<String> = w
        .lab
        .proxmox
        .acl()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(left, vec!["/".to_string()], "the VM's ACL went with it");

    let Err(err) = w.engine().converge(false).await else {
        panic!("the token lost its rights on /vms/100, yet apply succeeded");
    };
    let text = err.to_string();
    assert!(
        text.contains("403") || text.contains("Permission check failed"),
        "{text}"
    );
    assert_eq!(w.lab.proxmox.task_count("qmcreate"), 1);

    let input = DoctorInput {
        node: w.lab.proxmox.node(),
        iso_storage: "local".into(),
        vms: vec![DoctorVm {
            vmid: 100,
            node: w.lab.proxmox.node(),
            storage: "local-lvm".into(),
            bridge: "vmbr0".into(),
            vlan: None,
        }],
    };
    let report = doctor::run(&w.proxmox.client, &input).await;
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "privileges /vms")
        .expect("doctor checks /vms");
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    let (path, privs) = recommended_grant(check.fix.as_deref().unwrap_or(""));
    assert_eq!(path, "/vms");
    // What `pveum acl modify /vms … --roles HomelabProvisioner` does to the token's rights.
    let mut acl = w.lab.proxmox.acl();
    acl.entries.push(AclEntry {
        path,
        privs,
        propagate: true,
    });
    w.lab.proxmox.set_acl(acl);
    w.engine()
        .converge(false)
        .await
        .unwrap_or_else(|e| panic!("apply with the recommended grant: {e}"));
    assert_eq!(w.lab.proxmox.task_count("qmcreate"), 2);
    // …and the grant survives the next destroy.
    w.engine().destroy(false, false).await.expect("destroy");
    assert!(w.lab.proxmox.acl().entries.iter().any(|e| e.path == "/vms"));
}
