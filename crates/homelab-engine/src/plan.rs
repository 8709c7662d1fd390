//! A plan as data: the ordered steps apply executes, each with its resource, what happens to it (create,
//! update in place, upgrade in place, replace, nothing), why, which fields differ between live state and
//! homelab.yaml, how disruptive it is, and the facts observed at plan time it relies on (preconditions),
//! which apply observes again just before acting. Secret values never appear: sensitive fields carry a
//! marker, and a saved plan (`plan --out`) holds digests, never a secret.

use serde::{Deserialize, Serialize};

/// What applying the plan does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoChange,
    Create,
    Update,
    /// A new Talos version or schematic installed on the running node (MachineService.Upgrade), which
    /// reboots it; its disks stay.
    Upgrade,
    /// Destroy and create again; data on it is lost.
    Replace,
    Delete,
    /// Held by a running task on the hypervisor (a VM under `lock: create`): apply waits for it to end and
    /// only then compares; nothing is known to change.
    Wait,
}

impl Action {
    pub fn symbol(&self) -> &'static str {
        match self {
            Action::NoChange => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Upgrade => "↑",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Wait => "…",
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Action::NoChange => "no change",
            Action::Create => "create",
            Action::Update => "update in place",
            Action::Upgrade => "upgrade in place",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Wait => "locked: wait, then compare",
        }
    }
}

/// How much a step disturbs the running cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disruption {
    /// Nothing running restarts.
    #[default]
    None,
    /// The node reboots; apply takes nodes one at a time, health-gated.
    RebootOneAtATime,
    /// The VM is destroyed and created again: its data is lost.
    Replace,
}

/// A fact observed at plan time that a step relies on (`talos_version` = `v1.12.4`, `vm_digest` = …).
/// Apply observes it again just before acting and stops, naming the step, when it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precondition {
    pub fact: String,
    pub value: String,
}

impl Precondition {
    pub fn new(fact: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            fact: fact.into(),
            value: value.into(),
        }
    }
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// Live value; None when absent.
    pub before: Option<String>,
    /// Desired value; None when it will be removed.
    pub after: Option<String>,
    /// The change cannot be made in place: the resource must be replaced.
    pub forces_replacement: bool,
    /// The live value was changed outside homelabctl.
    pub drift: bool,
}

impl FieldChange {
    pub fn new(field: impl Into<String>, before: Option<String>, after: Option<String>) -> Self {
        Self {
            field: field.into(),
            before,
            after,
            forces_replacement: false,
            drift: false,
        }
    }

    pub fn replacing(mut self) -> Self {
        self.forces_replacement = true;
        self
    }

    pub fn drifted(mut self) -> Self {
        self.drift = true;
        self
    }
}

/// The planned change of one resource: one step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `image`, `vm.talos-cp-01`, `machine_config.talos-cp-01`, `bootstrap`, `kubeconfig`.
    pub address: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why, in a sentence, when the fields alone do not say it.
    pub reason: Option<String>,
    /// A redacted unified diff of a document (machine config), when there is one.
    pub document_diff: Option<String>,
    /// How much applying it disturbs the cluster.
    #[serde(default)]
    pub disruption: Disruption,
    /// What was observed at plan time and must still hold when apply reaches this step.
    #[serde(default)]
    pub preconditions: Vec<Precondition>,
}

/// A step of the plan (the same thing, named for what apply does with it).
pub type Step = ResourceChange;

impl ResourceChange {
    pub fn new(address: impl Into<String>, action: Action) -> Self {
        Self {
            address: address.into(),
            action,
            fields: Vec::new(),
            reason: None,
            document_diff: None,
            disruption: if action == Action::Replace {
                Disruption::Replace
            } else {
                Disruption::None
            },
            preconditions: Vec::new(),
        }
    }

    /// Records a fact the step relies on.
    pub fn requires(mut self, fact: &str, value: impl Into<String>) -> Self {
        self.preconditions.push(Precondition::new(fact, value));
        self
    }

    /// The first precondition of `self` (planned) that `now` (observed again) does not share, as
    /// `fact: planned → now`.
    pub fn changed_since(&self, now: &ResourceChange) -> Option<String> {
        self.preconditions.iter().find_map(|p| {
            let seen = now
                .preconditions
                .iter()
                .find(|q| q.fact == p.fact)
                .map(|q| q.value.as_str());
            (seen != Some(p.value.as_str())).then(|| {
                format!(
                    "{} was {} when planned, is {} now",
                    p.fact,
                    p.value,
                    seen.unwrap_or("unknown")
                )
            })
        })
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Whether this change destroys data (a replacement of a VM loses its disks, EFI vars and TPM state).
    pub fn destroys_data(&self) -> bool {
        matches!(self.action, Action::Replace | Action::Delete)
    }
}

/// What a saved plan was made from: digests, so `apply FILE` can refuse a plan made for another
/// homelab.yaml or another secrets bundle. Never the content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOrigin {
    /// SHA-256 of homelab.yaml's bytes.
    pub homelab_yaml_sha256: String,
    /// SHA-256 of the encrypted secrets file (`talos-secrets.enc.yaml`), `absent` before the first apply.
    pub secrets_sha256: String,
}

/// The whole plan: its steps, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<ResourceChange>,
    /// Set when the plan is saved (`plan --out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<PlanOrigin>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoChange)
    }

    pub fn destructive(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.destroys_data())
    }

    /// Counts per action: (create, update, replace, delete); an upgrade counts as an update in place.
    pub fn summary(&self) -> (usize, usize, usize, usize) {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        (
            count(Action::Create),
            count(Action::Update) + count(Action::Upgrade),
            count(Action::Replace),
            count(Action::Delete),
        )
    }

    /// The upgrades in place among the steps.
    pub fn upgrades(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Upgrade)
            .count()
    }
}

/// Compares desired and live field lists (name, value) into field changes, in desired order.
pub fn diff_fields(
    desired: &[(&str, String)],
    live: &[(&str, Option<String>)],
) -> Vec<FieldChange> {
    desired
        .iter()
        .filter_map(|(name, want)| {
            let have = live
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone());
            (have.as_deref() != Some(want.as_str()))
                .then(|| FieldChange::new(*name, have, Some(want.clone())))
        })
        .collect()
}

/// A small line diff (longest common subsequence) in unified style without hunks, for redacted documents.
pub fn line_diff(before: &str, after: &str) -> Option<String> {
    if before == after {
        return None;
    }
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_diff_reports_only_what_differs() {
        let desired = [("cores", "4".to_string()), ("memory", "8192".to_string())];
        let live = [
            ("cores", Some("4".to_string())),
            ("memory", Some("4096".to_string())),
        ];
        let changes = diff_fields(&desired, &live);
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "memory",
                Some("4096".into()),
                Some("8192".into())
            )]
        );
    }

    #[test]
    fn line_diff_marks_added_and_removed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n").expect("differs");
        assert_eq!(d, "- b\n+ B\n");
        assert!(line_diff("x\n", "x\n").is_none());
    }

    #[test]
    fn plan_counts_and_flags_destruction() {
        let plan = Plan {
            changes: vec![
                ResourceChange::new("vm.a", Action::Replace),
                ResourceChange::new("image", Action::NoChange),
            ],
            origin: None,
        };
        assert!(plan.has_changes());
        assert_eq!(plan.summary(), (0, 0, 1, 0));
        assert_eq!(plan.destructive().count(), 1);
    }
}
