//! A simulated node's durable state — what a real Talos node keeps on its disk: the applied machine config
//! and whether etcd was bootstrapped — and bringing a node back from it.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Installed, NodeError, NodeOptions, NodeSim};
use crate::talos::cluster::registry;
use crate::talos::config::NodeConfig;
use crate::talos::schema::ConfigSchema;

/// What survives a power cycle of the node's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The applied machine config (YAML, as the client sent it).
    pub config: String,
    /// Whether etcd was bootstrapped (the Kubernetes API comes up with the node).
    pub bootstrapped: bool,
}

impl NodeSim {
    /// The node's durable state, `None` while it has no config (maintenance mode: nothing to keep).
    pub fn snapshot(&self) -> Option<NodeSnapshot> {
        let st = self.inner.lock();
        let inst = st.installed.as_ref()?;
        Some(NodeSnapshot {
            config: String::from_utf8_lossy(&inst.config.raw).into_owned(),
            bootstrapped: inst.bootstrapped,
        })
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
            registry().record_os_ca_key(&config.os_ca_pem, ca.key_pem());
        }
        let node = Self::new(opts, schema)?;
        node.inner.lock().installed = Some(Installed {
            addr: node.inner.opts.maintenance_addr,
            config,
            bootstrapped: snap.bootstrapped,
            kube: None,
        });
        Ok(node)
    }
}
