//! The Talos upgrade call: install the given installer image and reboot into it. Talos checks etcd
//! health and membership before it upgrades a control plane; this client never sends `force`, which
//! skips that check ("might lead to data loss").

use crate::client::ApidClient;
use crate::error::ApidError;
use crate::proto::machine;

/// What the node answered to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeAck {
    /// the acknowledgement text (`Upgrade request received`)
    pub ack: String,
    /// the id of the action the node runs (for its event stream)
    pub actor_id: String,
}

impl ApidClient {
    /// Asks the node to upgrade to `image` (`factory.talos.dev/<platform>-installer[-secureboot]/<schematic>:<version>`)
    /// and reboot. The answer only means the node accepted the request: the upgrade succeeded when the
    /// node answers again with the new version (an A/B rollback brings it back on the old one).
    pub async fn upgrade(&mut self, image: &str) -> Result<UpgradeAck, ApidError> {
        const M: &str = "Upgrade";
        let req = self.request(machine::UpgradeRequest {
            image: image.to_owned(),
            preserve: false,
            stage: false,
            force: false,
            reboot_mode: machine::upgrade_request::RebootMode::Default as i32,
        });
        let resp = self
            .inner
            .upgrade(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        Ok(UpgradeAck {
            ack: msg.ack,
            actor_id: msg.actor_id,
        })
    }
}
