//! Typed shapes of the PVE responses the client reads. Unknown fields are ignored; numbers and booleans are
//! decoded leniently (see `decode`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decode;

/// `GET /version`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Version {
    /// Full version, e.g. `9.1.3`.
    pub version: String,
    /// `major.minor`, e.g. `9.1`.
    pub release: String,
    #[serde(default)]
    pub repoid: Option<String>,
}

impl Version {
    /// The major version (8, 9, …), read from `release` (or `version`).
    pub fn major(&self) -> Option<u32> {
        let text = if self.release.is_empty() {
            &self.version
        } else {
            &self.release
        };
        text.split('.').next()?.trim().parse().ok()
    }

    /// `(major, minor)` from `release`.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        let mut parts = self.release.split('.');
        Some((
            parts.next()?.trim().parse().ok()?,
            parts.next()?.trim().parse().ok()?,
        ))
    }
}

/// One entry of `GET /nodes`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct NodeInfo {
    pub node: String,
    /// `online`, `offline` or `unknown`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub ssl_fingerprint: Option<String>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub maxcpu: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub maxmem: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub uptime: Option<i64>,
}

/// One entry of `GET /nodes/{node}/network`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct NetworkInterface {
    pub iface: String,
    /// `bridge`, `eth`, `bond`, `vlan`, `OVSBridge`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "decode::bool")]
    pub active: bool,
    #[serde(default, deserialize_with = "decode::bool")]
    pub bridge_vlan_aware: bool,
}

/// One entry of `GET /nodes/{node}/storage`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct StorageInfo {
    pub storage: String,
    /// Storage type: `dir`, `lvmthin`, `zfspool`, `nfs`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Comma-separated content types (`iso,vztmpl,images`).
    #[serde(default)]
    pub content: String,
    #[serde(default, deserialize_with = "decode::bool")]
    pub active: bool,
    #[serde(default, deserialize_with = "decode::bool")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "decode::bool")]
    pub shared: bool,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub avail: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub total: Option<i64>,
}

impl StorageInfo {
    /// True when `content` lists this content type.
    pub fn accepts(&self, content: &str) -> bool {
        self.content.split(',').any(|c| c.trim() == content)
    }
}

/// One entry of `GET /nodes/{node}/storage/{storage}/content`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct StorageVolume {
    /// `STORAGE:iso/NAME` for ISOs.
    pub volid: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub size: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub ctime: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub vmid: Option<i64>,
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct VmStatus {
    /// `running` or `stopped` (the QEMU process).
    pub status: String,
    #[serde(default)]
    pub qmpstatus: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    /// The agent is enabled in the config.
    #[serde(default, deserialize_with = "decode::bool")]
    pub agent: bool,
    #[serde(default, deserialize_with = "decode::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub vmid: Option<i64>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub uptime: Option<i64>,
    #[serde(default)]
    pub tags: Option<String>,
}

impl VmStatus {
    /// True when the QEMU process runs.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

/// One entry of `GET /nodes/{node}/qemu`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct VmListEntry {
    #[serde(deserialize_with = "decode::int")]
    pub vmid: i64,
    #[serde(default, deserialize_with = "decode::opt_text")]
    pub name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
}

/// `GET /nodes/{node}/qemu/{vmid}/config`: every key as PVE sent it, with accessors for the common ones.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct VmConfig(pub BTreeMap<String, Value>);

impl VmConfig {
    /// A key as text (numbers are rendered).
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The SHA-1 digest of the config file, for optimistic concurrency on updates.
    pub fn digest(&self) -> Option<String> {
        self.get("digest")
    }

    /// The `lock` property, if a task holds the VM.
    pub fn lock(&self) -> Option<String> {
        self.get("lock")
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TaskStatus {
    pub upid: String,
    #[serde(default)]
    pub node: String,
    /// `running` or `stopped`.
    pub status: String,
    /// Present when stopped: `OK`, `WARNINGS: N`, or the error text.
    #[serde(default)]
    pub exitstatus: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "decode::opt_text")]
    pub id: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

impl TaskStatus {
    /// True once the worker has exited.
    pub fn is_stopped(&self) -> bool {
        self.status == "stopped"
    }

    /// True when stopped with `OK` or `WARNINGS: N` (PVE's own `status_is_error` rule).
    pub fn succeeded(&self) -> bool {
        match self.exitstatus.as_deref() {
            Some("OK") => true,
            Some(s) => s.starts_with("WARNINGS: "),
            None => false,
        }
    }
}

/// One entry of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TaskListEntry {
    pub upid: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "decode::opt_text")]
    pub id: Option<String>,
    /// Absent or `running` while the task runs; the exit status once it ended.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub starttime: Option<i64>,
}

/// The task holding a VM's `lock`, as far as the node's task list tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// The `lock` property: `create`, `clone`, `backup`, `migrate`, `destroyed`, …
    pub lock: String,
    /// The running task that holds it; `None` when no running task on the VM explains it (a stale lock
    /// left by a worker that died).
    pub task: Option<String>,
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TaskLogLine {
    #[serde(deserialize_with = "decode::int")]
    pub n: i64,
    pub t: String,
}

/// One interface from `agent/network-get-interfaces` (QGA `GuestNetworkInterface`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct GuestInterface {
    pub name: String,
    #[serde(rename = "hardware-address", default)]
    pub hardware_address: Option<String>,
    #[serde(rename = "ip-addresses", default)]
    pub ip_addresses: Vec<GuestIpAddress>,
}

/// One address of a [`GuestInterface`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct GuestIpAddress {
    #[serde(rename = "ip-address")]
    pub ip_address: String,
    /// `ipv4` or `ipv6`.
    #[serde(rename = "ip-address-type")]
    pub ip_address_type: String,
    #[serde(default, deserialize_with = "decode::opt_int")]
    pub prefix: Option<i64>,
}

/// Picks the first usable IPv4 (not loopback, not link-local) of the interface whose MAC matches,
/// comparing case-insensitively.
pub fn ipv4_for_mac(interfaces: &[GuestInterface], mac: &str) -> Option<std::net::Ipv4Addr> {
    interfaces
        .iter()
        .filter(|i| {
            i.hardware_address
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(mac))
        })
        .flat_map(|i| i.ip_addresses.iter())
        .filter(|a| a.ip_address_type == "ipv4")
        .filter_map(|a| a.ip_address.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_link_local() && !ip.is_unspecified())
}

/// `GET /access/permissions`: path → privilege → propagate flag.
pub type Permissions = BTreeMap<String, BTreeMap<String, Value>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_major_comes_from_release() {
        let v = Version {
            version: "9.1.3".into(),
            release: "9.1".into(),
            repoid: None,
        };
        assert_eq!(v.major(), Some(9));
        assert_eq!(v.major_minor(), Some((9, 1)));
    }

    #[test]
    fn warnings_count_as_success() {
        let t: TaskStatus = serde_json::from_str(
            r#"{"upid":"u","status":"stopped","exitstatus":"WARNINGS: 1","type":"qmstart","id":9001}"#,
        )
        .expect("decodes");
        assert!(t.succeeded());
        assert_eq!(t.id.as_deref(), Some("9001"));
    }

    #[test]
    fn the_address_is_taken_from_the_interface_with_our_mac() {
        let ifs: Vec<GuestInterface> = serde_json::from_str(
            r#"[{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},
                {"name":"ens18","hardware-address":"bc:24:11:ca:fe:01","ip-addresses":[{"ip-address":"fe80::1","ip-address-type":"ipv6","prefix":64},{"ip-address":"192.0.2.50","ip-address-type":"ipv4","prefix":24}]}]"#,
        )
        .expect("decodes");
        assert_eq!(
            ipv4_for_mac(&ifs, "BC:24:11:CA:FE:01"),
            Some("192.0.2.50".parse().expect("ip"))
        );
        assert_eq!(ipv4_for_mac(&ifs, "BC:24:11:CA:FE:02"), None);
    }
}
