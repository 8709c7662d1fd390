//! Cluster- and node-level calls: version, nodes, node network, next free VMID, effective permissions.

use crate::client::Client;
use crate::error::{ErrorKind, Result};
use crate::types::{NetworkInterface, NodeInfo, Permissions, Version};

impl Client {
    /// `GET /version`.
    pub async fn version(&self) -> Result<Version> {
        self.get(&["version"], vec![]).await
    }

    /// `GET /nodes`.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.get(&["nodes"], vec![]).await
    }

    /// `GET /nodes/{node}/network`, optionally only one interface type (`bridge`, `any_bridge`, …).
    pub async fn node_network(
        &self,
        node: &str,
        kind: Option<&str>,
    ) -> Result<Vec<NetworkInterface>> {
        let query = kind
            .map(|k| vec![("type".to_string(), k.to_string())])
            .unwrap_or_default();
        self.get(&["nodes", node, "network"], query).await
    }

    /// `GET /cluster/nextid`: the next free VMID (not a reservation).
    pub async fn next_vmid(&self) -> Result<u32> {
        let v: serde_json::Value = self.get(&["cluster", "nextid"], vec![]).await?;
        parse_vmid(&v, "/cluster/nextid")
    }

    /// `GET /cluster/nextid?vmid=N`: whether `vmid` is free cluster-wide.
    pub async fn vmid_is_free(&self, vmid: u32) -> Result<bool> {
        match self
            .get::<serde_json::Value>(
                &["cluster", "nextid"],
                vec![("vmid".into(), vmid.to_string())],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /access/permissions`: the token's effective privileges, for one path or the whole tree.
    pub async fn permissions(&self, path: Option<&str>) -> Result<Permissions> {
        let query = path
            .map(|p| vec![("path".to_string(), p.to_string())])
            .unwrap_or_default();
        self.get(&["access", "permissions"], query).await
    }
}

fn parse_vmid(v: &serde_json::Value, path: &str) -> Result<u32> {
    crate::decode::json_int(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| crate::error::Error::Decode {
            method: "GET".into(),
            path: path.into(),
            detail: format!("expected a VMID, got {v}"),
        })
}
