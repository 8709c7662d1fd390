//! A plan for people: one block per step with its action symbol, the changed fields (drift and forced
//! replacement marked), the redacted document diff, a loud notice for data-destroying changes (saying which
//! flag apply needs: --allow-replace for a VM replacement, --allow-remove for a node removal), a summary
//! (upgrades in place counted apart, as they reboot nodes one at a time).

use homelab_engine::plan::{Action, Plan};

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn action_color(action: Action) -> &'static str {
    match action {
        Action::Create => "32",
        Action::Update | Action::Wait => "33",
        Action::Upgrade => "36",
        Action::Replace | Action::Delete => "1;31",
        Action::NoChange => "2",
    }
}

pub fn text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    for change in &plan.changes {
        let symbol = paint(color, action_color(change.action), change.action.symbol());
        match (&change.reason, change.action) {
            // An upgrade says on its line what it goes from and to, and that it reboots.
            (Some(reason), Action::Upgrade) => out.push_str(&format!(
                "{symbol:>3} {} — {} ({reason})\n",
                change.address,
                change.action.verb()
            )),
            (reason, _) => {
                out.push_str(&format!(
                    "{symbol:>3} {} — {}\n",
                    change.address,
                    change.action.verb()
                ));
                if let Some(reason) = reason {
                    out.push_str(&format!("      {reason}\n"));
                }
            }
        }
        for f in &change.fields {
            let before = f.before.as_deref().unwrap_or("(none)");
            let after = f.after.as_deref().unwrap_or("(none)");
            let mut notes = Vec::new();
            if f.forces_replacement {
                notes.push(paint(color, "1;31", "forces replacement"));
            }
            if f.drift {
                notes.push(paint(color, "33", "drift: changed outside homelabctl"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  # {}", notes.join(", "))
            };
            if f.before.is_none() {
                out.push_str(&format!("      {:<10} = {after}{notes}\n", f.field));
            } else {
                out.push_str(&format!(
                    "      {:<10} {before} → {after}{notes}\n",
                    f.field
                ));
            }
        }
        if let Some(diff) = &change.document_diff {
            for line in diff.lines() {
                let code = if line.starts_with('+') { "32" } else { "31" };
                out.push_str(&format!("        {}\n", paint(color, code, line)));
            }
        }
    }
    // A VM replaced because its firmware must change needs --allow-replace; a node removal --allow-remove;
    // a replacement asked for with `homelabctl replace` was consented to already.
    let destructive: Vec<&str> = plan
        .destructive()
        .filter(|c| c.address.starts_with("vm."))
        .map(|c| c.address.as_str())
        .collect();
    let removed: Vec<&str> = plan
        .destructive()
        .filter_map(|c| c.address.strip_prefix("remove."))
        .collect();
    let replaced: Vec<&str> = plan
        .destructive()
        .filter_map(|c| c.address.strip_prefix("replace."))
        .collect();
    if !removed.is_empty() {
        out.push_str(&paint(
            color,
            "1;31",
            &format!(
                "\n!! {} will be REMOVED: drained, reset and {} deleted (disk and TPM state are lost).\n!! apply refuses this unless you pass --allow-remove.\n",
                removed.join(", "),
                if removed.len() == 1 { "its VM" } else { "their VMs" }
            ),
        ));
    }
    if !replaced.is_empty() {
        out.push_str(&paint(
            color,
            "1;31",
            &format!(
                "\n!! {} will be REPLACED as `homelabctl replace` asked: its VM is deleted and created anew.\n",
                replaced.join(", ")
            ),
        ));
    }
    if !destructive.is_empty() {
        out.push_str(&paint(
            color,
            "1;31",
            &format!(
                "\n!! {} will be DESTROYED and recreated: its disk, EFI vars and TPM state (and the data sealed by it) are lost.\n!! apply refuses this unless you pass --allow-replace.\n",
                destructive.join(", ")
            ),
        ));
    }
    let (create, update, replace, delete) = plan.summary();
    let locked = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Wait)
        .count();
    if plan.has_changes() {
        let upgrades = plan.upgrades();
        let update = update - upgrades;
        out.push_str(&format!("\nPlan: {create} to create, {update} to update, {replace} to replace, {delete} to delete"));
        if upgrades > 0 {
            out.push_str(&format!(
                "; {upgrades} node(s) to upgrade in place, one at a time"
            ));
        }
        if locked > 0 {
            out.push_str(&format!(
                "; {locked} locked by a running task (apply waits for it, then compares)"
            ));
        }
        out.push_str(".\n");
    } else {
        out.push_str("\nNo changes: the homelab matches homelab.yaml.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use homelab_engine::plan::{FieldChange, ResourceChange};

    use super::*;

    #[test]
    fn plan_text_marks_drift_replacement_and_summarises() {
        let mut vm = ResourceChange::new("vm.cp", Action::Replace);
        vm.fields.push(
            FieldChange::new("tpmstate0", Some("v1.2".into()), Some("v2.0".into())).replacing(),
        );
        vm.fields
            .push(FieldChange::new("cores", Some("1".into()), Some("4".into())).drifted());
        let plan = Plan {
            changes: vec![vm, ResourceChange::new("image", Action::NoChange)],
            origin: None,
        };
        let text = text(&plan, false);
        assert!(text.contains("-/+ vm.cp — replace"), "{text}");
        assert!(
            text.contains("tpmstate0  v1.2 → v2.0  # forces replacement"),
            "{text}"
        );
        assert!(text.contains("drift: changed outside homelabctl"));
        assert!(text.contains("DESTROYED"));
        assert!(text.contains("Plan: 0 to create, 0 to update, 1 to replace, 0 to delete."));
    }

    fn step(
        address: &str,
        action: Action,
        fields: &[(&str, Option<&str>, &str)],
    ) -> ResourceChange {
        let mut step = ResourceChange::new(address, action);
        for (field, before, after) in fields {
            step.fields.push(FieldChange::new(
                *field,
                before.map(str::to_string),
                Some((*after).to_string()),
            ));
        }
        step
    }

    fn unchanged(addresses: &[&str]) -> Vec<ResourceChange> {
        addresses
            .iter()
            .map(|a| ResourceChange::new(*a, Action::NoChange))
            .collect()
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            changes,
            origin: None,
        }
    }

    const IMAGE: &str = "factory.talos.dev/nocloud-installer-secureboot/376567988ad3";

    #[test]
    fn snapshot_create_from_nothing() {
        let plan = plan(vec![
            step(
                "image",
                Action::Create,
                &[
                    (
                        "iso",
                        None,
                        "local:iso/talos-v1.12.4-nocloud-amd64-secureboot-376567988ad3.iso",
                    ),
                    (
                        "url",
                        None,
                        "https://factory.talos.dev/image/376567988ad3/v1.12.4/nocloud-amd64-secureboot.iso",
                    ),
                ],
            ),
            step(
                "vm.talos-cp-01",
                Action::Create,
                &[
                    ("name", None, "talos-cp-01"),
                    ("cores", None, "4"),
                    ("memory", None, "16384"),
                ],
            ),
            ResourceChange::new("machine_config.talos-cp-01", Action::Create)
                .because("apply in maintenance mode, then Talos installs and reboots"),
            ResourceChange::new("bootstrap", Action::Create)
                .because("bootstrap etcd on talos-cp-01"),
            ResourceChange::new("kubernetes", Action::Create)
                .because("wait for the API server and every node to be Ready"),
        ]);
        insta::assert_snapshot!(text(&plan, false));
    }

    #[test]
    fn snapshot_update_in_place_with_drift_and_a_config_diff() {
        let mut vm = step(
            "vm.talos-cp-01",
            Action::Update,
            &[("memory", Some("2048"), "16384")],
        )
        .because("changed outside homelabctl (drift)");
        vm.fields[0] = vm.fields[0].clone().drifted();
        let mut config = ResourceChange::new("machine_config.talos-cp-01", Action::Update)
            .because("the rendered config changed (secrets redacted)");
        config.document_diff = Some("-     - 10.244.0.0/16\n+     - 10.245.0.0/16\n".into());
        let mut changes = vec![ResourceChange::new("image", Action::NoChange), vm, config];
        changes.extend(unchanged(&["bootstrap", "kubernetes"]));
        insta::assert_snapshot!(text(&plan(changes), false));
    }

    #[test]
    fn snapshot_talos_upgrade_in_place_one_node_at_a_time() {
        let mut changes = unchanged(&[
            "image",
            "vm.talos-cp-01",
            "vm.talos-worker-01",
            "machine_config.talos-cp-01",
            "machine_config.talos-worker-01",
            "bootstrap",
            "kubernetes",
        ]);
        for node in ["talos-cp-01", "talos-worker-01"] {
            let mut up = step(
                &format!("talos_upgrade.{node}"),
                Action::Upgrade,
                &[
                    ("talos_version", Some("v1.12.11"), "v1.13.9"),
                    (
                        "installer_image",
                        Some(&format!("{IMAGE}:v1.12.11")),
                        &format!("{IMAGE}:v1.13.9"),
                    ),
                ],
            )
            .because("v1.12.11 → v1.13.9, reboots one node at a time");
            up.disruption = homelab_engine::plan::Disruption::RebootOneAtATime;
            changes.push(up);
        }
        insta::assert_snapshot!(text(&plan(changes), false));
    }

    #[test]
    fn snapshot_removal_of_a_worker_and_a_control_plane() {
        let mut changes = unchanged(&[
            "image",
            "vm.talos-cp-01",
            "vm.talos-cp-02",
            "machine_config.talos-cp-01",
            "machine_config.talos-cp-02",
            "bootstrap",
            "etcd",
            "kubernetes",
        ]);
        let removal = |name: &str, vm_id: u32, fields: &[&str], reason: &str| {
            let mut step =
                ResourceChange::new(format!("remove.{name}"), Action::Delete).because(reason);
            for f in fields {
                let before = match *f {
                    "vm" => format!("{vm_id} on pve, running"),
                    _ => name.to_string(),
                };
                step.fields.push(FieldChange::new(*f, Some(before), None));
            }
            step
        };
        changes.push(removal(
            "talos-worker-01",
            121,
            &["node", "vm"],
            "remove node talos-worker-01 (worker, not in homelab.yaml): cordon and drain it (evictions honour \
             PodDisruptionBudgets), delete its Node, then reset Talos (graceful), then delete VM 121",
        ));
        changes.push(removal(
            "talos-cp-03",
            113,
            &["etcd_member", "node", "vm"],
            "remove node talos-cp-03 (control plane, not in homelab.yaml): leave etcd, then cordon and drain \
             it (evictions honour PodDisruptionBudgets), delete its Node, then reset Talos (graceful), then \
             delete VM 113; what remains (2 control planes) tolerates no further failure",
        ));
        insta::assert_snapshot!(text(&plan(changes), false));
    }

    #[test]
    fn snapshot_no_change() {
        let plan = plan(unchanged(&[
            "image",
            "vm.talos-cp-01",
            "machine_config.talos-cp-01",
            "bootstrap",
            "kubernetes",
        ]));
        insta::assert_snapshot!(text(&plan, false));
    }
}
