//! `doctor` logic against the simulator: a healthy setup passes; each broken piece fails with a fix.

use homelab_proxmox::doctor::{CheckStatus, DoctorInput, DoctorVm, run, vm_privileges};
use homelab_sim::proxmox::{PveVersion, SimOptions};

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
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.name == "privileges /vms/100")
        );
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
    assert_eq!(check.name, "privileges /vms/100");
    assert!(
        check.detail.contains("lacks VM.Allocate on /vms/100"),
        "{}",
        check.detail
    );
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("pveum acl modify /vms/100")),
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
