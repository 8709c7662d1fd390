//! etcd operations of the apid client: members with their learner flag, the member's status (leader,
//! versions), leaving the cluster or removing another member, streaming a snapshot out, and the disaster
//! recovery path (upload a snapshot with EtcdRecover, then Bootstrap with `recover_etcd`).

use tonic::codegen::tokio_stream::{Stream, StreamExt as _};
use zeroize::Zeroizing;

use crate::client::{ApidClient, Bootstrapped, check_metadata};
use crate::error::ApidError;
use crate::proto::common::Data;
use crate::proto::machine;

/// What one member says about itself (`EtcdStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdStatus {
    /// this member's id
    pub member_id: u64,
    /// the id of the member it follows as leader (its own id when it leads)
    pub leader: u64,
    /// the etcd server version, e.g. `3.6.7`
    pub protocol_version: String,
    /// the storage (cluster) version, e.g. `3.6.0`
    pub storage_version: String,
    /// the database size in bytes
    pub db_size: i64,
    /// whether this member is a learner
    pub is_learner: bool,
    /// alarms and errors the member reports
    pub errors: Vec<String>,
}

/// A snapshot being streamed from a member (`EtcdSnapshot`). The chunks hold every Secret of the
/// cluster: they come in zeroizing buffers and must only ever be written encrypted.
pub struct SnapshotStream {
    client: ApidClient,
    inner: tonic::Streaming<Data>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("endpoint", &self.client.endpoint())
            .finish_non_exhaustive()
    }
}

impl SnapshotStream {
    /// The next chunk of the snapshot, `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, ApidError> {
        const M: &str = "EtcdSnapshot";
        match self.inner.message().await {
            Ok(Some(chunk)) => {
                check_metadata(M, chunk.metadata.as_ref(), self.client.node_name())?;
                Ok(Some(Zeroizing::new(chunk.bytes)))
            }
            Ok(None) => Ok(None),
            Err(status) => Err(self.client.fail(M, &status)),
        }
    }
}

impl ApidClient {
    /// This member's etcd status: its id, the leader's id, versions and learner flag.
    pub async fn etcd_status(&mut self) -> Result<EtcdStatus, ApidError> {
        const M: &str = "EtcdStatus";
        let req = self.request(());
        let resp = self
            .inner
            .etcd_status(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        let status = msg.member_status.ok_or(ApidError::EmptyResponse {
            endpoint: self.endpoint(),
            method: M,
        })?;
        Ok(EtcdStatus {
            member_id: status.member_id,
            leader: status.leader,
            protocol_version: status.protocol_version,
            storage_version: status.storage_version,
            db_size: status.db_size,
            is_learner: status.is_learner,
            errors: status.errors,
        })
    }

    /// Makes this node's etcd member leave the cluster (before a reset or removal of the node).
    pub async fn etcd_leave_cluster(&mut self) -> Result<(), ApidError> {
        const M: &str = "EtcdLeaveCluster";
        let req = self.request(machine::EtcdLeaveClusterRequest {});
        let resp = self
            .inner
            .etcd_leave_cluster(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        self.first(M, resp.messages, |m| m.metadata.as_ref())
            .map(|_| ())
    }

    /// Removes another member by id, through this node (for a member whose node is already gone).
    pub async fn etcd_remove_member_by_id(&mut self, member_id: u64) -> Result<(), ApidError> {
        const M: &str = "EtcdRemoveMemberByID";
        let req = self.request(machine::EtcdRemoveMemberByIdRequest { member_id });
        let resp = self
            .inner
            .etcd_remove_member_by_id(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        self.first(M, resp.messages, |m| m.metadata.as_ref())
            .map(|_| ())
    }

    /// Starts streaming a consistent snapshot of etcd from this member.
    pub async fn etcd_snapshot(&mut self) -> Result<SnapshotStream, ApidError> {
        const M: &str = "EtcdSnapshot";
        let req = self.request(machine::EtcdSnapshotRequest {});
        let inner = self
            .inner
            .etcd_snapshot(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        Ok(SnapshotStream {
            client: self.clone(),
            inner,
        })
    }

    /// Uploads a snapshot to a control plane whose etcd is not running (after a reset), ready for
    /// [`Self::bootstrap_recover`]. The chunks are sent as they come.
    pub async fn etcd_recover<S>(&mut self, chunks: S) -> Result<(), ApidError>
    where
        S: Stream<Item = Zeroizing<Vec<u8>>> + Send + 'static,
    {
        const M: &str = "EtcdRecover";
        let stream = chunks.map(|chunk| Data {
            metadata: None,
            bytes: chunk.to_vec(),
        });
        let req = self.request(stream);
        let resp = self
            .inner
            .etcd_recover(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        self.first(M, resp.messages, |m| m.metadata.as_ref())
            .map(|_| ())
    }

    /// Bootstraps a one-member etcd from the snapshot uploaded with [`Self::etcd_recover`]
    /// (`recover_etcd`); `skip_hash_check` accepts a snapshot copied from the data directory rather
    /// than taken with EtcdSnapshot.
    pub async fn bootstrap_recover(
        &mut self,
        skip_hash_check: bool,
    ) -> Result<Bootstrapped, ApidError> {
        self.bootstrap_request(machine::BootstrapRequest {
            recover_etcd: true,
            recover_skip_hash_check: skip_hash_check,
        })
        .await
    }
}
