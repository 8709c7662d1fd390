//! Guest-agent calls: the interfaces the QEMU guest agent reports, and waiting until the NIC with our MAC has
//! an IPv4 address.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::events::ClientEvent;
use crate::types::{GuestInterface, ipv4_for_mac};

#[derive(serde::Deserialize)]
struct AgentResult<T> {
    result: T,
}

/// How long and how often to ask the guest agent.
#[derive(Debug, Clone)]
pub struct AgentWait {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for AgentWait {
    fn default() -> Self {
        AgentWait {
            timeout: Duration::from_secs(600),
            interval: Duration::from_secs(3),
        }
    }
}

impl Client {
    /// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
    pub async fn agent_network_interfaces(
        &self,
        node: &str,
        vmid: u32,
    ) -> Result<Vec<GuestInterface>> {
        let r: AgentResult<Vec<GuestInterface>> = self
            .get(
                &[
                    "nodes",
                    node,
                    "qemu",
                    &vmid.to_string(),
                    "agent",
                    "network-get-interfaces",
                ],
                vec![],
            )
            .await?;
        Ok(r.result)
    }

    /// Polls the guest agent until the interface with `mac` (any case) reports an IPv4 address. "Agent not
    /// running" answers and 400s are waited out; permission errors end the wait at once.
    pub async fn wait_agent_ipv4(
        &self,
        node: &str,
        vmid: u32,
        mac: &str,
        wait: &AgentWait,
    ) -> Result<Ipv4Addr> {
        let started = Instant::now();
        loop {
            let last = match self.agent_network_interfaces(node, vmid).await {
                Ok(ifs) => match ipv4_for_mac(&ifs, mac) {
                    Some(ip) => return Ok(ip),
                    None => format!("no IPv4 on the interface with MAC {mac} yet"),
                },
                Err(e) if matches!(e.kind(), ErrorKind::AgentNotReady | ErrorKind::Transient) => {
                    e.to_string()
                }
                Err(e @ Error::BadRequest { .. }) => e.to_string(),
                Err(e @ Error::Api { .. }) if e.to_string().contains("got timeout") => {
                    e.to_string()
                }
                Err(e) => return Err(e),
            };
            if started.elapsed() >= wait.timeout {
                return Err(Error::AgentTimeout {
                    vmid,
                    mac: mac.to_string(),
                    timeout: wait.timeout,
                    last,
                });
            }
            self.events().emit(&ClientEvent::Waiting {
                what: format!("guest agent of VM {vmid}"),
                elapsed: started.elapsed(),
                timeout: wait.timeout,
                last,
            });
            tokio::time::sleep(
                wait.interval
                    .min(wait.timeout.saturating_sub(started.elapsed()))
                    .max(Duration::from_millis(1)),
            )
            .await;
        }
    }
}
