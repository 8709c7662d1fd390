//! A simulated node's durable state — what a real Talos node keeps on its disk: the applied machine config
//! whether etcd was bootstrapped and etcd's data — and bringing a node back from it.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Installed, NodeError, NodeOptions, NodeSim};
use crate::kube::StoreSnapshot;
use crate::talos::config::NodeConfig;
use crate::talos::schema::ConfigSchema;

/// What survives a power cycle of the node's disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The applied machine config (YAML, as the client sent it).
    pub config: String,
    /// Whether etcd was bootstrapped (the Kubernetes API comes up with the node).
    pub bootstrapped: bool,
    /// Which etcd data the node holds; equal versions mean equal data.
    #[serde(default)]
    pub etcd: Option<EtcdVersion>,
    /// The Talos version the node runs (an upgrade changes it); `None` in states saved before upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talos_version: Option<String>,
    /// etcd's objects: not part of the snapshot's serialised form (they can be large; see
    /// [`NodeSim::etcd_data`]), filled in by whoever restores the node.
    #[serde(skip)]
    pub etcd_data: Option<StoreSnapshot>,
}

/// `(id, revision)` of a node's etcd data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdVersion {
    pub id: String,
    pub revision: u64,
}

impl NodeSim {
    /// The node's durable state, `None` while it has no config (maintenance mode: nothing to keep).
    pub fn snapshot(&self) -> Option<NodeSnapshot> {
        let st = self.inner.lock();
        let inst = st.installed.as_ref()?;
        let etcd = match (&inst.kube, &inst.etcd) {
            (Some(kube), _) => Some(kube.data_version()),
            (None, Some(data)) => Some((data.id.clone(), data.revision)),
            (None, None) => None,
        };
        Some(NodeSnapshot {
            config: String::from_utf8_lossy(&inst.config.raw).into_owned(),
            bootstrapped: inst.bootstrapped,
            etcd: etcd.map(|(id, revision)| EtcdVersion { id, revision }),
            talos_version: Some(st.talos_version.clone()),
            etcd_data: None,
        })
    }

    /// etcd's objects, when the node has any (from the running Kubernetes API, or kept while it is down).
    pub fn etcd_data(&self) -> Option<StoreSnapshot> {
        let kube = {
            let st = self.inner.lock();
            let inst = st.installed.as_ref()?;
            match &inst.kube {
                Some(kube) => kube.clone(),
                None => return inst.etcd.clone(),
            }
        };
        Some(kube.data())
    }

    /// Where apid listens in maintenance mode (the VM's DHCP address).
    pub fn maintenance_addr(&self) -> SocketAddr {
        self.inner.opts.maintenance_addr
    }

    /// A powered-off node with a snapshot's config installed: [`NodeSim::power_on`] brings it up on its
    /// static address with its apid certificate from the config's OS CA (and the Kubernetes API, if it was
    /// bootstrapped). The config is checked against the schema again.
    pub fn restore(
        opts: NodeOptions,
        schema: Arc<ConfigSchema>,
        snap: &NodeSnapshot,
    ) -> Result<Self, NodeError> {
        let raw = snap.config.as_bytes();
        let docs = schema.validate(raw).map_err(NodeError::Restore)?;
        let config = NodeConfig::from_documents(&docs, raw).map_err(NodeError::Restore)?;
        if let Some(ip) = config.static_ip.filter(|ip| !ip.is_loopback()) {
            return Err(NodeError::Restore(format!(
                "the static address {ip} is not in 127.0.0.0/8"
            )));
        }
        if let Some(ca) = config.os_ca.as_ref() {
            opts.clusters
                .record_os_ca_key(&config.os_ca_pem, ca.key_pem());
        }
        let node = Self::new(opts, schema)?;
        let mut st = node.inner.lock();
        if let Some(version) = &snap.talos_version {
            st.talos_version = version.clone();
        }
        st.installed = Some(Installed {
            addr: node.inner.opts.maintenance_addr,
            config,
            bootstrapped: snap.bootstrapped,
            // etcd data on its disk: a member (bootstrapped here or joined).
            etcd_member: snap.bootstrapped || snap.etcd.is_some() || snap.etcd_data.is_some(),
            kube: None,
            etcd: snap.etcd_data.clone(),
            vip: None,
            trustd_route: None,
            booted_at: None,
            settled: true,
            recovery: None,
        });
        drop(st);
        Ok(node)
    }
}
