//! `doctor` logic against the simulator: a healthy setup passes; each broken piece fails with a fix.

use homelab_proxmox::doctor::{CheckStatus, DoctorInput, DoctorVm, run, vm_privileges};
use std::collections::BTreeSet;

use homelab_sim::proxmox::{Acl, AclEntry, PveVersion, SimOptions, all_privileges};

use crate::support::start;

fn input() -> DoctorInput {
    DoctorInput {
        node: "pve".into(),
        iso_storage: "local".into(),
        vms: vec![DoctorVm {
            vmid: 100,
            node: "pve".into(),
            storage: "local-lvm".into(),
            bridge: "vmbr0".into(),
            vlan: None,
        }],
    }
}

#[tokio::test]
async fn a_healthy_simulator_passes_every_check_on_both_versions() {
    for version in [PveVersion::V8_4, PveVersion::V9_1] {
        let (_sim, client) = start(SimOptions {
            version,
            ..SimOptions::fast()
        })
        .await;
        let report = run(&client, &input()).await;
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.pve_version.as_deref(), Some(version.full()));
        assert!(report.checks.iter().any(|c| c.name == "privileges /vms"));
    }
}

#[tokio::test]
async fn a_missing_privilege_is_named_with_the_grant_to_fix_it() {
    let (_sim, client) = start(SimOptions::fast().without_privilege("VM.Allocate")).await;
    let report = run(&client, &input()).await;
    assert!(!report.ok());
    let check = report
        .checks
        .iter()
        .find(|c| c.status == CheckStatus::Fail)
        .expect("a failure");
    assert_eq!(check.name, "privileges /vms");
    assert!(
        check.detail.contains("lacks VM.Allocate on /vms"),
        "{}",
        check.detail
    );
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("pveum acl modify /vms --tokens")),
        "{check:?}"
    );
}

#[tokio::test]
async fn the_guest_agent_privilege_depends_on_the_major_version() {
    assert!(vm_privileges(8).contains(&"VM.Monitor"));
    assert!(vm_privileges(9).contains(&"VM.GuestAgent.Audit"));
    let (_sim, client) = start(
        SimOptions {
            version: PveVersion::V8_4,
            ..SimOptions::fast()
        }
        .without_privilege("VM.Monitor"),
    )
    .await;
    let report = run(&client, &input()).await;
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Fail && c.detail.contains("VM.Monitor")),
        "{report:#?}"
    );
}

#[tokio::test]
async fn wrong_node_storages_and_bridge_each_fail_with_a_fix() {
    let (_sim, client) = start(SimOptions::fast()).await;
    let bad = DoctorInput {
        node: "pve".into(),
        iso_storage: "local-lvm".into(),
        vms: vec![
            DoctorVm {
                vmid: 100,
                node: "pve".into(),
                storage: "local".into(),
                bridge: "vmbr7".into(),
                vlan: None,
            },
            DoctorVm {
                vmid: 101,
                node: "pve2".into(),
                storage: "local-lvm".into(),
                bridge: "vmbr0".into(),
                vlan: None,
            },
        ],
    };
    let report = run(&client, &bad).await;
    let failed = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name && c.status == CheckStatus::Fail)
            .cloned()
    };
    let iso = failed("iso storage local-lvm").expect("iso storage fails");
    assert!(
        iso.detail.contains("not configured for content-type 'iso'"),
        "{iso:?}"
    );
    assert!(
        iso.fix
            .as_deref()
            .is_some_and(|f| f.contains("pvesm set local-lvm --content"))
    );
    let vm = failed("vm storage local").expect("vm storage fails");
    assert!(vm.detail.contains("does not support vm images"), "{vm:?}");
    let bridge = failed("bridge vmbr7").expect("bridge fails");
    assert!(bridge.fix.as_deref().is_some_and(|f| f.contains("vmbr0")));
    let node = failed("node pve2").expect("node fails");
    assert!(node.fix.as_deref().is_some_and(|f| f.contains("pve")));
}

#[tokio::test]
async fn an_unreachable_or_unauthorised_api_stops_with_one_failure() {
    let (sim, _) = start(SimOptions::fast()).await;
    let token =
        homelab_proxmox::ApiToken::new(sim.token_id(), "bad".to_string().into()).expect("id");
    let mut opts = homelab_proxmox::ClientOptions::new(sim.endpoint(), token);
    opts.trust = homelab_proxmox::TlsTrust::Insecure;
    let client = homelab_proxmox::Client::new(opts).expect("client");
    let report = run(&client, &input()).await;
    assert_eq!(report.checks.len(), 1);
    assert_eq!(report.checks[0].name, "connection");
    assert!(
        report.checks[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("token"))
    );
}

/// The token's rights as many guides set them up: everything but the VM privileges on `/`, and the VM
/// privileges on the VM's own path only.
fn per_vm_acl(version: PveVersion, vmid: u32) -> Acl {
    let all = all_privileges(version);
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

#[tokio::test]
async fn grants_on_the_vms_own_path_warn_that_they_die_with_the_vm_and_name_the_lasting_grant() {
    let (sim, client) = start(SimOptions::fast()).await;
    sim.set_acl(per_vm_acl(sim.version(), 100));
    let report = run(&client, &input()).await;
    assert!(report.ok(), "a warning, not a failure: {report:#?}");
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "privileges /vms")
        .expect("the /vms check");
    assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
    assert!(check.detail.contains("only on /vms/100"), "{check:?}");
    let fix = check.fix.as_deref().unwrap_or("");
    assert!(
        fix.contains(
            "pveum acl modify /vms --tokens 'homelab@pve!homelabctl' --roles HomelabProvisioner"
        ) && fix.contains("pveum acl modify /vms --users 'homelab@pve'"),
        "{fix}"
    );

    // After the VM's entries are gone (a destroy), the same setup fails.
    sim.set_acl(per_vm_acl(sim.version(), 999));
    let report = run(&client, &input()).await;
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "privileges /vms")
        .expect("the /vms check");
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
}

#[tokio::test]
async fn a_missing_datastore_allocate_on_the_iso_storage_warns_for_remove_iso() {
    let (_sim, client) = start(SimOptions::fast().without_privilege("Datastore.Allocate")).await;
    let report = run(&client, &input()).await;
    assert!(report.ok(), "{report:#?}");
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "privileges /storage/local (destroy --remove-iso)")
        .expect("the ISO delete check");
    assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
    assert!(check.detail.contains("Datastore.Allocate"), "{check:?}");
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("pveum acl modify /storage/local")),
        "{check:?}"
    );
}
