//! Plan, converge and destroy on the fake world.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use homelab_config::Config;
use homelab_engine::events::{Event, EventSink};
use homelab_engine::flow::{Engine, Timeouts};
use homelab_engine::plan::Action;

use super::fake::{Fake, FakeRenderer};

fn config() -> Config {
    let source = "proxmox: {endpoint: 'https://127.0.0.1:8006', token_id: 'a@pve!b'}\n\
                  nodes:\n  - name: talos-cp-01\n    vm_id: 100\n    network: {mac: 'BC:24:11:CA:FE:01', address: 127.0.20.100/24, gateway: 127.0.20.1}\n";
    homelab_config::parse(source, None).expect("valid").config
}

fn timeouts() -> Timeouts {
    Timeouts {
        agent: Duration::from_millis(200),
        install: Duration::from_millis(500),
        kubernetes: Duration::from_millis(500),
        drain: Duration::from_millis(500),
        bootstrap: Duration::from_millis(500),
        poll: Duration::from_millis(5),
        retries: 3,
    }
}

struct Harness {
    config: Config,
    fake: Fake,
    renderer: FakeRenderer,
    state: tempfile::TempDir,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Harness {
    fn new() -> Self {
        Self::with_config(config())
    }

    fn with_config(config: Config) -> Self {
        Self {
            fake: Fake::new(&config),
            config,
            renderer: FakeRenderer {
                revision: Mutex::new(1),
            },
            state: tempfile::tempdir().expect("tempdir"),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn engine(&self) -> Engine<'_, Fake, Fake, Fake, Fake> {
        self.engine_for(&self.config)
    }

    /// An engine over the same world and journal for another homelab.yaml (nodes added or dropped).
    fn engine_for<'a>(&'a self, config: &'a Config) -> Engine<'a, Fake, Fake, Fake, Fake> {
        let sink = self.events.clone();
        Engine {
            config,
            hypervisor: &self.fake,
            factory: &self.fake,
            talos: &self.fake,
            kube: &self.fake,
            renderer: &self.renderer,
            state_dir: self.state.path().to_path_buf(),
            events: EventSink::new(move |e| sink.lock().expect("lock").push(e.clone())),
            timeouts: timeouts(),
        }
    }

    fn event_text(&self) -> String {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .map(|e| format!("{e:?}\n"))
            .collect()
    }
}

#[tokio::test]
async fn apply_from_nothing_converges_and_a_second_plan_has_no_changes() {
    let h = Harness::new();
    let plan = h.engine().plan().await.expect("plan");
    let actions: Vec<(String, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.clone(), c.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("image".into(), Action::Create),
            ("vm.talos-cp-01".into(), Action::Create),
            ("machine_config.talos-cp-01".into(), Action::Create),
            ("bootstrap".into(), Action::Create),
            ("kubernetes".into(), Action::Create),
        ]
    );
    let done = h.engine().converge(false).await.expect("converge");
    assert_eq!(done.vm_ids, vec![("talos-cp-01".to_string(), 100)]);
    assert!(!done.kubeconfig.is_empty());
    let counts = {
        let world = h.fake.world.lock().expect("lock");
        (world.creates, world.bootstraps, world.vms.len())
    };
    assert_eq!(counts, (1, 1, 1));
    let again = h.engine().plan().await.expect("plan");
    assert!(!again.has_changes(), "{again:?}");
    h.engine().converge(false).await.expect("second apply");
    assert_eq!(h.fake.world.lock().expect("lock").creates, 1);
    assert!(h.event_text().contains("from the guest agent"));
}

#[tokio::test]
async fn killed_at_every_step_boundary_the_next_apply_converges_to_one_vm_and_one_bootstrap() {
    // Kill at every boundary between two mutating calls of an uncut apply (7 today). A fixed range
    // would let later "kills" land after the run's end and test nothing, so each run below must
    // also prove it was cut.
    let uncut = Harness::new();
    uncut.engine().converge(false).await.expect("uncut apply");
    let total = uncut.fake.world.lock().expect("lock").mutations;
    assert!(total > 1, "an uncut apply makes {total} mutating calls");
    for kill_after in 0..total {
        let h = Harness::new();
        h.fake.world.lock().expect("lock").crash_after = Some(kill_after);
        let first = h.engine().converge(false).await;
        let (done, kills) = {
            let mut world = h.fake.world.lock().expect("lock");
            world.crash_after = None;
            (world.mutations, world.kills)
        };
        // The run was cut: it failed, a mutating call was refused, and only `kill_after` went through.
        assert!(
            first.is_err(),
            "kill at {kill_after}: the first apply was not cut"
        );
        assert!(kills > 0, "kill at {kill_after}: no call was refused");
        assert_eq!(
            done, kill_after,
            "kill at {kill_after}: mutations before the cut"
        );
        h.engine().converge(false).await.unwrap_or_else(|e| {
            panic!(
                "resume after kill at {kill_after} (first: {:?}): {e}",
                first.is_ok()
            )
        });
        let counts = {
            let world = h.fake.world.lock().expect("lock");
            (world.vms.len(), world.creates, world.bootstraps)
        };
        assert_eq!(
            counts,
            (1, 1, 1),
            "kill at {kill_after}: one VM, created once, bootstrapped once"
        );
        assert!(
            !h.engine().plan().await.expect("plan").has_changes(),
            "kill at {kill_after}"
        );
    }
}

#[tokio::test]
async fn vm_changed_outside_homelabctl_shows_as_drift_and_apply_fixes_it() {
    let h = Harness::new();
    h.engine().converge(false).await.expect("converge");
    h.fake
        .world
        .lock()
        .expect("lock")
        .vms
        .get_mut(&100)
        .expect("vm")
        .live
        .cores = Some(1);
    let plan = h.engine().plan().await.expect("plan");
    let vm = plan
        .changes
        .iter()
        .find(|c| c.address == "vm.talos-cp-01")
        .expect("vm change");
    assert_eq!(vm.action, Action::Update);
    let cores = vm
        .fields
        .iter()
        .find(|f| f.field == "cores")
        .expect("cores");
    assert!(cores.drift);
    assert_eq!(
        (cores.before.as_deref(), cores.after.as_deref()),
        (Some("1"), Some("4"))
    );
    h.engine().converge(false).await.expect("converge");
    assert!(!h.engine().plan().await.expect("plan").has_changes());
}

#[tokio::test]
async fn a_changed_config_is_an_update_with_a_redacted_diff() {
    let h = Harness::new();
    h.engine().converge(false).await.expect("converge");
    *h.renderer.revision.lock().expect("lock") = 2;
    let plan = h.engine().plan().await.expect("plan");
    let change = plan
        .changes
        .iter()
        .find(|c| c.address == "machine_config.talos-cp-01")
        .expect("config");
    assert_eq!(change.action, Action::Update);
    let diff = change.document_diff.as_deref().expect("diff");
    assert!(
        diff.contains("-   revision: 1") && diff.contains("+   revision: 2"),
        "{diff}"
    );
    let all = format!("{plan:?}");
    assert!(!all.contains("s3cr3t-token"), "plans never carry secrets");
    h.engine().converge(false).await.expect("converge");
    assert!(!h.engine().plan().await.expect("plan").has_changes());
}

#[tokio::test]
async fn firmware_changes_need_allow_replace() {
    let h = Harness::new();
    h.engine().converge(false).await.expect("converge");
    h.fake
        .world
        .lock()
        .expect("lock")
        .vms
        .get_mut(&100)
        .expect("vm")
        .live
        .tpm_version = Some("v1.2".into());
    let plan = h.engine().plan().await.expect("plan");
    assert_eq!(plan.destructive().count(), 1);
    let err = converge_error(&h, false).await.expect("refused");
    assert!(
        err.to_string().contains("destroy")
            && err.hint().is_some_and(|h| h.contains("--allow-replace"))
    );
    assert_eq!(
        h.fake.world.lock().expect("lock").creates,
        1,
        "nothing was touched"
    );
    h.engine().converge(true).await.expect("replace");
    assert_eq!(h.fake.world.lock().expect("lock").creates, 2);
}

#[tokio::test]
async fn a_silent_guest_agent_and_no_node_at_the_reserved_address_fail_naming_both() {
    let h = Harness::new();
    h.fake.world.lock().expect("lock").agent_silent = true;
    // The fake node is not in maintenance mode at its static address (no reservation), so the apply cannot
    // succeed: the engine must say which addresses it tried and fail inside its timeout.
    let err = converge_error(&h, false).await.expect("fails");
    assert!(
        err.to_string().contains("machine_config.talos-cp-01"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not in maintenance mode at 127.0.20.100:50000")
            && err.to_string().contains("guest agent"),
        "the error names the reserved address tried and the agent: {err}"
    );
    assert!(
        h.event_text()
            .contains("the reserved address is tried alongside it"),
        "{}",
        h.event_text()
    );
}

#[tokio::test]
async fn a_foreign_vm_with_our_id_is_never_touched() {
    let h = Harness::new();
    {
        let mut w = h.fake.world.lock().expect("lock");
        let mut vm = super::fake::Vm::default();
        vm.live.name = Some("someone-elses-vm".into());
        w.vms.insert(100, vm);
    }
    let err = h.engine().plan().await.expect_err("refused");
    assert!(err.to_string().contains("not ours"), "{err}");
    let err = converge_error(&h, false).await.expect("refused");
    assert!(err.to_string().contains("not ours"));
    assert_eq!(
        h.fake.world.lock().expect("lock").vms[&100]
            .live
            .name
            .as_deref(),
        Some("someone-elses-vm")
    );
}

#[tokio::test]
async fn destroy_removes_everything_and_succeeds_when_already_gone() {
    let h = Harness::new();
    h.engine().converge(false).await.expect("converge");
    h.engine().destroy(true, true).await.expect("destroy");
    {
        let w = h.fake.world.lock().expect("lock");
        assert!(w.vms.is_empty() && w.isos.is_empty());
    }
    h.engine().destroy(true, true).await.expect("destroy again");
    h.engine().converge(false).await.expect("apply again");
    assert_eq!(h.fake.world.lock().expect("lock").vms.len(), 1);
}

async fn converge_error(
    h: &Harness,
    allow_replace: bool,
) -> Option<homelab_engine::flow::EngineError> {
    h.engine().converge(allow_replace).await.err()
}

#[tokio::test]
async fn a_talos_upgrade_path_talos_refuses_is_refused_at_plan_time_before_anything_is_touched() {
    let h = Harness::new();
    h.engine().converge(false).await.expect("converge");
    // The node answers with a release 1.12 cannot be installed over (1.12 only from 1.10.0 on).
    h.fake.world.lock().expect("lock").running_version = Some("v1.9.6".into());
    let mutations = h.fake.world.lock().expect("lock").mutations;
    let Err(err) = h.engine().plan().await else {
        panic!("the plan must refuse the path");
    };
    let said = err.to_string();
    assert!(said.starts_with("talos_upgrade.talos-cp-01: "), "{said}");
    assert!(said.contains("upgrades only from v1.10.0"), "{said}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("one minor step at a time"))
    );
    let Err(again) = h.engine().converge(false).await else {
        panic!("apply plans first and refuses too");
    };
    assert_eq!(again.to_string(), said);
    assert_eq!(
        h.fake.world.lock().expect("lock").mutations,
        mutations,
        "nothing touched"
    );
}

/// homelab.yaml with a control plane and the workers named (`talos-worker-01` is VM 121, `-02` VM 122).
fn config_with_workers(workers: &[u8]) -> Config {
    let mut source = "proxmox: {endpoint: 'https://127.0.0.1:8006', token_id: 'a@pve!b'}\n\
                      nodes:\n  - name: talos-cp-01\n    vm_id: 100\n    network: {mac: 'BC:24:11:CA:FE:01', address: 127.0.20.100/24, gateway: 127.0.20.1}\n"
        .to_string();
    for w in workers {
        source.push_str(&format!(
            "  - name: talos-worker-0{w}\n    role: worker\n    vm_id: 12{w}\n    network: {{mac: 'BC:24:11:CA:FE:2{w}', address: 127.0.20.12{w}/24, gateway: 127.0.20.1}}\n"
        ));
    }
    homelab_config::parse(&source, None).expect("valid").config
}

#[tokio::test]
async fn a_dropped_worker_is_removed_after_its_replacement_is_built_and_only_with_allow_remove() {
    // The world knows every address either homelab.yaml names.
    let h = Harness::with_config(config_with_workers(&[1, 2]));
    let before = config_with_workers(&[1]);
    let after = config_with_workers(&[2]);
    let converged = h.engine_for(&before).plan().await.expect("plan");
    h.engine_for(&before)
        .apply(&converged, Default::default())
        .await
        .expect("apply");
    let plan = h.engine_for(&after).plan().await.expect("plan");
    let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    let at = |a: &str| order.iter().position(|o| *o == a).expect(a);
    assert!(
        at("vm.talos-worker-02") < at("kubernetes")
            && at("kubernetes") < at("remove.talos-worker-01"),
        "the new capacity first, the removal once it is Ready: {order:?}"
    );
    let removal = &plan.changes[at("remove.talos-worker-01")];
    assert_eq!(removal.action, Action::Delete);
    assert!(
        removal.reason.as_deref().is_some_and(|r| r
            .contains("remove node talos-worker-01 (worker, not in homelab.yaml)")
            && r.contains("delete VM 121")),
        "{removal:?}"
    );
    let mutations = h.fake.world.lock().expect("lock").mutations;
    let Err(err) = h.engine_for(&after).apply(&plan, Default::default()).await else {
        panic!("applied without allow_remove");
    };
    assert!(
        err.to_string().contains("talos-worker-01"),
        "names the node: {err}"
    );
    assert!(
        err.hint().is_some_and(|h| h.contains("--allow-remove")),
        "{err:?}"
    );
    let w = h.fake.world.lock().expect("lock");
    assert_eq!(w.mutations, mutations, "refused before acting on anything");
    assert!(w.vms.contains_key(&121) && !w.vms.contains_key(&122));
}
