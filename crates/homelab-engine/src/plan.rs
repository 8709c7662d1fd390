//! A plan: for each resource, what will happen (create, update in place, replace, nothing) and which fields
//! differ between live state and homelab.yaml. Secret values never appear: sensitive fields carry a marker.

use serde::Serialize;

/// What applying the plan does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoChange,
    Create,
    Update,
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
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Wait => "locked: wait, then compare",
        }
    }
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The planned change of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// `image`, `vm.talos-cp-01`, `machine_config.talos-cp-01`, `bootstrap`, `kubeconfig`.
    pub address: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Why, in a sentence, when the fields alone do not say it.
    pub reason: Option<String>,
    /// A redacted unified diff of a document (machine config), when there is one.
    pub document_diff: Option<String>,
}

impl ResourceChange {
    pub fn new(address: impl Into<String>, action: Action) -> Self {
        Self {
            address: address.into(),
            action,
            fields: Vec::new(),
            reason: None,
            document_diff: None,
        }
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

/// The whole plan, in apply order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<ResourceChange>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoChange)
    }

    pub fn destructive(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.destroys_data())
    }

    /// Counts per action: (create, update, replace, delete).
    pub fn summary(&self) -> (usize, usize, usize, usize) {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        (
            count(Action::Create),
            count(Action::Update),
            count(Action::Replace),
            count(Action::Delete),
        )
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
        };
        assert!(plan.has_changes());
        assert_eq!(plan.summary(), (0, 0, 1, 0));
        assert_eq!(plan.destructive().count(), 1);
    }
}
