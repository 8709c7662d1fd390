//! The simulated token's privileges: ACL entries (path, privileges, propagate), effective privileges on a
//! path, and evaluation of the schema's `permissions.check` expressions with PVE's 403 texts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::schema::PveVersion;

/// One ACL entry of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub path: String,
    pub privs: BTreeSet<String>,
    pub propagate: bool,
}

/// Every privilege PVE knows in that version (the `Administrator` role).
pub fn all_privileges(version: PveVersion) -> BTreeSet<String> {
    let mut p: BTreeSet<String> = [
        "Datastore.Allocate",
        "Datastore.AllocateSpace",
        "Datastore.AllocateTemplate",
        "Datastore.Audit",
        "Group.Allocate",
        "Mapping.Audit",
        "Mapping.Modify",
        "Mapping.Use",
        "Permissions.Modify",
        "Pool.Allocate",
        "Pool.Audit",
        "Realm.Allocate",
        "Realm.AllocateUser",
        "SDN.Allocate",
        "SDN.Audit",
        "SDN.Use",
        "Sys.AccessNetwork",
        "Sys.Audit",
        "Sys.Console",
        "Sys.Incoming",
        "Sys.Modify",
        "Sys.PowerMgmt",
        "Sys.Syslog",
        "User.Modify",
        "VM.Allocate",
        "VM.Audit",
        "VM.Backup",
        "VM.Clone",
        "VM.Config.CDROM",
        "VM.Config.CPU",
        "VM.Config.Cloudinit",
        "VM.Config.Disk",
        "VM.Config.HWType",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.Options",
        "VM.Console",
        "VM.Migrate",
        "VM.PowerMgmt",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match version {
        PveVersion::V8_4 => {
            p.insert("VM.Monitor".into());
        }
        PveVersion::V9_1 => {
            p.insert("VM.GuestAgent.Audit".into());
            p.insert("VM.GuestAgent.FileRead".into());
            p.insert("VM.GuestAgent.FileWrite".into());
            p.insert("VM.GuestAgent.FileSystemMgmt".into());
            p.insert("VM.GuestAgent.Unrestricted".into());
            p.insert("VM.Replicate".into());
        }
    }
    p
}

/// The ACL of the simulated token.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    pub entries: Vec<AclEntry>,
}

impl Acl {
    /// Every privilege on `/`, propagated.
    pub fn administrator(version: PveVersion) -> Self {
        Acl {
            entries: vec![AclEntry {
                path: "/".into(),
                privs: all_privileges(version),
                propagate: true,
            }],
        }
    }

    /// Removes a privilege everywhere.
    pub fn revoke(&mut self, privilege: &str) {
        for e in &mut self.entries {
            e.privs.remove(privilege);
        }
    }

    /// The privileges effective on `path` (the most specific entry on the path or an ancestor wins, as in PVE).
    pub fn effective(&self, path: &str) -> BTreeSet<String> {
        let mut best: Option<&AclEntry> = None;
        for e in &self.entries {
            let applies = e.path == path || (e.propagate && is_ancestor(&e.path, path));
            if applies && best.is_none_or(|b| e.path.len() > b.path.len()) {
                best = Some(e);
            }
        }
        best.map(|e| e.privs.clone()).unwrap_or_default()
    }

    /// `GET /access/permissions` data: one path or every ACL path.
    pub fn dump(&self, path: Option<&str>) -> BTreeMap<String, BTreeMap<String, u8>> {
        let paths: Vec<String> = match path {
            Some(p) => vec![p.to_string()],
            None => self.entries.iter().map(|e| e.path.clone()).collect(),
        };
        paths
            .into_iter()
            .map(|p| {
                let privs = self.effective(&p).into_iter().map(|k| (k, 1u8)).collect();
                (p, privs)
            })
            .collect()
    }

    /// Evaluates a schema `check` expression with path parameters filled in. `Err` is the 403 text.
    pub fn check(&self, expr: &Value, params: &BTreeMap<String, String>) -> Result<(), String> {
        let Some(items) = expr.as_array() else {
            return Ok(());
        };
        match items.first().and_then(Value::as_str) {
            Some("perm") => {
                let path = fill(items.get(1).and_then(Value::as_str).unwrap_or("/"), params);
                let privs: Vec<String> = items
                    .get(2)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let any = items.get(3).and_then(Value::as_str) == Some("any");
                self.require(&path, &privs, any)
            }
            Some("and") => {
                for sub in &items[1..] {
                    self.check(sub, params)?;
                }
                Ok(())
            }
            Some("or") => {
                let mut last = Err("Permission check failed".to_string());
                for sub in &items[1..] {
                    last = self.check(sub, params);
                    if last.is_ok() {
                        return Ok(());
                    }
                }
                last.map_err(|_| "Permission check failed".to_string())
            }
            _ => Ok(()),
        }
    }

    /// Requires all (or any) of `privs` on `path`.
    pub fn require(&self, path: &str, privs: &[String], any: bool) -> Result<(), String> {
        let have = self.effective(path);
        if any {
            if privs.iter().any(|p| have.contains(p)) {
                return Ok(());
            }
            return Err(format!(
                "Permission check failed ({path}, {})",
                privs.join("|")
            ));
        }
        match privs.iter().find(|p| !have.contains(*p)) {
            Some(missing) => Err(format!("Permission check failed ({path}, {missing})")),
            None => Ok(()),
        }
    }
}

fn is_ancestor(ancestor: &str, path: &str) -> bool {
    ancestor == "/"
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn fill(template: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in params {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_privilege_is_named_in_the_403_text() {
        let mut acl = Acl::administrator(PveVersion::V9_1);
        acl.revoke("VM.Allocate");
        let check = serde_json::json!(["perm", "/vms/{vmid}", ["VM.Allocate"]]);
        let params = BTreeMap::from([("vmid".to_string(), "9001".to_string())]);
        assert_eq!(
            acl.check(&check, &params),
            Err("Permission check failed (/vms/9001, VM.Allocate)".into())
        );
    }

    #[test]
    fn the_most_specific_entry_wins() {
        let mut acl = Acl::administrator(PveVersion::V9_1);
        acl.entries.push(AclEntry {
            path: "/vms/100".into(),
            privs: BTreeSet::from(["VM.Audit".to_string()]),
            propagate: true,
        });
        assert!(acl.effective("/vms/100").contains("VM.Audit"));
        assert!(!acl.effective("/vms/100").contains("VM.Allocate"));
        assert!(acl.effective("/vms/1000").contains("VM.Allocate"));
    }
}
