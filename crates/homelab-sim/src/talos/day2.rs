//! The simulated day-2 calls of apid: Upgrade (an installer image becomes the running version after a
//! reboot, refused without healthy etcd as Talos refuses it, or rolled back by fault injection), etcd
//! snapshots and their recovery, leaving etcd or removing a member, and a member's status. Also the
//! simulator's snapshot format: a header line, the Kubernetes store's objects as JSON, and a SHA-256 of
//! both at the end (the integrity hash `recover_skip_hash_check` skips, as etcd's does).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::codegen::tokio_stream;
use tonic::{Response, Status, Streaming};

use homelab_apid::proto::common::{Data, Metadata};
use homelab_apid::proto::machine;

use super::cluster::{ETCD_MEMBER_NOT_FOUND, ETCD_NO_LEADER, member_id};
use super::config::MachineType;
use super::node::{Inner, node_name};
use crate::kube::{Store, StoreSnapshot};

/// The first line of every snapshot the simulator streams.
const SNAPSHOT_HEADER: &[u8] = b"homelab-sim etcd snapshot v1\n";
/// Chunk size of the EtcdSnapshot stream.
const CHUNK: usize = 64 * 1024;
/// The largest snapshot EtcdRecover accepts.
const MAX_SNAPSHOT: usize = 256 << 20;
/// The etcd version Talos v1.12.4 runs when the config names no etcd image.
const DEFAULT_ETCD: &str = "3.6.7";

/// `v1.12.4` → (1, 12, 4).
pub(crate) fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.strip_prefix('v').unwrap_or(v).splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.split(['-', '+']).next()?.parse().ok()?;
    Some((major, minor, patch))
}

/// The version an installer image installs: its tag (`…/installer-secureboot/<schematic>:v1.12.11`).
pub(crate) fn installer_version(image: &str) -> Option<String> {
    let tag = super::config::image_tag(Some(image))?;
    parse_version(&tag).map(|_| tag)
}

/// Talos' upgrade compatibility (pkg/machinery/compatibility): a 1.x release installs over 1.(x-2) or newer.
fn upgrade_path_supported(from: &str, to: &str) -> Result<(), String> {
    let (Some(f), Some(t)) = (parse_version(from), parse_version(to)) else {
        return Err(format!("cannot compare versions {from} and {to}"));
    };
    if t.0 == f.0 && t.1 >= 2 && f.1 + 2 < t.1 {
        return Err(format!(
            "upgrade from {from} to {to} is not supported: Talos {}.{} can be upgraded to only from {}.{}.0 or newer",
            t.0,
            t.1,
            t.0,
            t.1 - 2
        ));
    }
    Ok(())
}

/// Encodes the store as a snapshot: header, JSON, SHA-256 of both.
pub(crate) fn encode_snapshot(data: &StoreSnapshot) -> Result<Vec<u8>, String> {
    let mut out = SNAPSHOT_HEADER.to_vec();
    serde_json::to_writer(&mut out, data).map_err(|e| e.to_string())?;
    let hash = Sha256::digest(&out);
    out.extend_from_slice(&hash);
    Ok(out)
}

/// Decodes a snapshot; without `skip_hash_check` its SHA-256 trailer must match.
pub(crate) fn decode_snapshot(
    bytes: &[u8],
    skip_hash_check: bool,
) -> Result<StoreSnapshot, String> {
    let Some(rest) = bytes.strip_prefix(SNAPSHOT_HEADER) else {
        return Err("not an etcd snapshot (unknown header)".into());
    };
    let hashed = bytes.len() >= SNAPSHOT_HEADER.len() + 32 && {
        let (body, hash) = bytes.split_at(bytes.len() - 32);
        Sha256::digest(body).as_slice() == hash
    };
    let json = if hashed {
        &rest[..rest.len() - 32]
    } else if skip_hash_check {
        rest
    } else {
        return Err(
            "snapshot integrity check failed: its SHA-256 does not match (a copy of the data directory needs recover_skip_hash_check)"
                .into(),
        );
    };
    serde_json::from_slice(json).map_err(|e| format!("corrupt etcd snapshot: {e}"))
}

/// What the day-2 calls need of the serving node, after authorization.
pub(crate) struct Call<'a> {
    pub(crate) node: &'a Arc<Inner>,
    pub(crate) metadata: Option<Metadata>,
}

impl Call<'_> {
    /// The node's OS CA (its cluster's key in the registry) and name, when etcd runs on it.
    fn etcd_member(&self) -> Result<(String, String), Status> {
        let st = self.node.lock();
        match st.installed.as_ref() {
            Some(inst) if inst.etcd_member => Ok((inst.config.os_ca_pem.clone(), node_name(inst))),
            _ => Err(Status::failed_precondition(
                "etcd is not running on this node",
            )),
        }
    }

    pub(crate) fn upgrade(
        self,
        req: machine::UpgradeRequest,
    ) -> Result<Response<machine::UpgradeResponse>, Status> {
        if req.stage {
            return Err(Status::unimplemented("staged upgrades are not simulated"));
        }
        let target = installer_version(&req.image).ok_or_else(|| {
            Status::invalid_argument(format!(
                "invalid installer image {:?}: expected <registry>/<path>:<version>",
                req.image
            ))
        })?;
        let (current, ca, control_plane, etcd_member) = {
            let st = self.node.lock();
            let Some(inst) = st.installed.as_ref() else {
                return Err(Status::unavailable("the node is rebooting"));
            };
            (
                st.talos_version.clone(),
                inst.config.os_ca_pem.clone(),
                inst.config.machine_type == MachineType::ControlPlane,
                inst.etcd_member,
            )
        };
        upgrade_path_supported(&current, &target).map_err(Status::failed_precondition)?;
        if control_plane && !req.force {
            if !etcd_member {
                return Err(Status::failed_precondition(
                    "error validating etcd for upgrade: etcd is not running on this node",
                ));
            }
            self.node
                .opts
                .clusters
                .etcd_healthy_for_upgrade(&ca)
                .map_err(Status::failed_precondition)?;
        }
        // Talos acknowledges the request, then runs the upgrade sequence in the background; while
        // another sequence runs that one is not started ("sequence not started: locked").
        let locked = {
            let mut st = self.node.lock();
            std::mem::replace(&mut st.upgrading, true) || st.resetting
        };
        if locked {
            self.node
                .counters
                .sequences_locked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("upgrade: sequence not started: locked");
        } else {
            self.node
                .reboot_into(self.node.opts.upgrade_delay, move |st| {
                    if std::mem::take(&mut st.rollback_next_upgrade) {
                        st.rollbacks += 1;
                    } else {
                        st.talos_version = target;
                        st.upgrades += 1;
                    }
                });
        }
        Ok(Response::new(machine::UpgradeResponse {
            messages: vec![machine::Upgrade {
                metadata: self.metadata,
                ack: "Upgrade request received".into(),
                actor_id: "homelab-sim".into(),
            }],
        }))
    }

    pub(crate) fn snapshot(self) -> Result<Vec<Result<Data, Status>>, Status> {
        let (ca, _) = self.etcd_member()?;
        let Some(kube) = self.node.opts.clusters.live_kube(&ca) else {
            return Err(Status::unavailable("etcd is not serving (no quorum)"));
        };
        let bytes = encode_snapshot(&kube.data())
            .map_err(|e| Status::internal(format!("encoding the snapshot: {e}")))?;
        Ok(bytes
            .chunks(CHUNK)
            .map(|c| {
                Ok(Data {
                    metadata: self.metadata.clone(),
                    bytes: c.to_vec(),
                })
            })
            .collect())
    }

    pub(crate) async fn recover(
        self,
        mut stream: Streaming<Data>,
    ) -> Result<Response<machine::EtcdRecoverResponse>, Status> {
        {
            let st = self.node.lock();
            // The reset sequence unmounted EPHEMERAL, where the recovery snapshot is written.
            if st.resetting {
                return Err(Status::failed_precondition(
                    "etcd service is not ready for recovery yet",
                ));
            }
            match st.installed.as_ref() {
                Some(inst) if inst.config.machine_type != MachineType::ControlPlane => {
                    return Err(Status::failed_precondition(
                        "etcd recovery is only possible on control plane nodes",
                    ));
                }
                Some(inst) if inst.etcd_member => {
                    return Err(Status::failed_precondition(
                        "etcd is already running: a snapshot can only be recovered before bootstrap (reset EPHEMERAL first)",
                    ));
                }
                Some(_) => {}
                None => return Err(Status::unavailable("the node is rebooting")),
            }
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend_from_slice(&chunk.bytes);
            if bytes.len() > MAX_SNAPSHOT {
                return Err(Status::resource_exhausted(format!(
                    "snapshot larger than {MAX_SNAPSHOT} bytes"
                )));
            }
        }
        if bytes.is_empty() {
            return Err(Status::invalid_argument("empty snapshot"));
        }
        let mut st = self.node.lock();
        let Some(inst) = st.installed.as_mut() else {
            return Err(Status::unavailable("the node is rebooting"));
        };
        inst.recovery = Some(bytes);
        Ok(Response::new(machine::EtcdRecoverResponse {
            messages: vec![machine::EtcdRecover {
                metadata: self.metadata,
            }],
        }))
    }

    /// The node's OS CA and name, when it is a control plane (Talos' `CheckControlplane`).
    fn control_plane(&self, api: &str) -> Result<(String, String, bool), Status> {
        let st = self.node.lock();
        let Some(inst) = st.installed.as_ref() else {
            return Err(Status::unavailable("the node is rebooting"));
        };
        super::service::control_plane_only(inst, api)?;
        Ok((
            inst.config.os_ca_pem.clone(),
            node_name(inst),
            inst.etcd_member,
        ))
    }

    /// `EtcdLeaveCluster` as Talos answers it: control planes only; the local member's id (Talos
    /// waits up to 3 minutes for it: the simulator answers at once); etcd's `MemberRemove` of it
    /// (refused without a leader, for the last member, and while removing it would break the
    /// active quorum: Talos retries that last one for 5 minutes first); then etcd stops and its
    /// data is wiped. The node's API server stops with it.
    pub(crate) fn leave_cluster(
        self,
    ) -> Result<Response<machine::EtcdLeaveClusterResponse>, Status> {
        let (ca, name, etcd_member) = self.control_plane("etcd leave")?;
        if !etcd_member {
            return Err(Status::unknown(
                "failed to leave cluster: failed to get local etcd member ID: context deadline exceeded",
            ));
        }
        if let Some(refusal) = self.node.opts.clusters.remove_refusal(&ca, &name) {
            return Err(Status::unknown(format!(
                "failed to leave cluster: failed to remove member {}: {refusal}",
                member_id(&name)
            )));
        }
        let winner = self
            .node
            .lock()
            .installed
            .as_mut()
            .and_then(|i| i.wipe_etcd(&self.node.opts.clusters, true));
        super::node::take_vip(&self.node.opts.clusters, winner);
        self.node.changed();
        Ok(Response::new(machine::EtcdLeaveClusterResponse {
            messages: vec![machine::EtcdLeaveCluster {
                metadata: self.metadata,
            }],
        }))
    }

    /// `EtcdRemoveMemberByID` as Talos answers it: control planes only (any of them: Talos' etcd
    /// client dials every control plane, not only the local etcd); NotFound for an unknown id;
    /// etcd's `MemberRemove` refusals otherwise. Removing the node's own member is allowed, as
    /// etcd allows it: its etcd stops. A running member removed from elsewhere shuts itself down at
    /// once, as etcd does, and stays down across reboots.
    pub(crate) fn remove_member(
        self,
        id: u64,
    ) -> Result<Response<machine::EtcdRemoveMemberByIdResponse>, Status> {
        let (ca, own, _) = self.control_plane("etcd remove member")?;
        let clusters = &self.node.opts.clusters;
        let Some(name) = clusters.member_named(&ca, id) else {
            // Without a leader etcd cannot even say the member is unknown.
            if !clusters.has_quorum(&ca) {
                return Err(Status::unknown(format!(
                    "failed to remove member: failed to remove member {id}: {ETCD_NO_LEADER}"
                )));
            }
            return Err(Status::not_found(format!(
                "failed to remove member {id}: {ETCD_MEMBER_NOT_FOUND}"
            )));
        };
        if let Some(refusal) = clusters.remove_refusal(&ca, &name) {
            return Err(Status::unknown(format!(
                "failed to remove member: failed to remove member {id}: {refusal}"
            )));
        }
        if name == own {
            let winner = self
                .node
                .lock()
                .installed
                .as_mut()
                .and_then(|i| i.wipe_etcd(clusters, true));
            super::node::take_vip(clusters, winner);
            self.node.changed();
        } else if let Some(node) = clusters.remove_member(&ca, &name).and_then(|n| n.upgrade()) {
            node.etcd_removed();
        }
        Ok(Response::new(machine::EtcdRemoveMemberByIdResponse {
            messages: vec![machine::EtcdRemoveMemberById {
                metadata: self.metadata,
            }],
        }))
    }

    pub(crate) fn status(self) -> Result<Response<machine::EtcdStatusResponse>, Status> {
        let (ca, name) = self.etcd_member()?;
        let version = {
            let st = self.node.lock();
            st.installed
                .as_ref()
                .and_then(|i| i.config.etcd_version.clone())
                .map(|v| v.trim_start_matches('v').to_owned())
                .unwrap_or_else(|| DEFAULT_ETCD.to_owned())
        };
        let objects = self
            .node
            .opts
            .clusters
            .live_kube(&ca)
            .map_or(0, |k| k.data().objects.len());
        let storage = match parse_version(&version) {
            Some((major, minor, _)) => format!("{major}.{minor}.0"),
            None => version.clone(),
        };
        let size = i64::try_from(objects)
            .unwrap_or(i64::MAX)
            .saturating_mul(1024);
        Ok(Response::new(machine::EtcdStatusResponse {
            messages: vec![machine::EtcdStatus {
                metadata: self.metadata,
                member_status: Some(machine::EtcdMemberStatus {
                    storage_version: storage,
                    member_id: member_id(&name),
                    protocol_version: version,
                    db_size: size,
                    db_size_in_use: size,
                    leader: self
                        .node
                        .opts
                        .clusters
                        .leader(&ca)
                        .map_or(0, |l| member_id(&l)),
                    raft_index: 0,
                    raft_term: 0,
                    raft_applied_index: 0,
                    errors: Vec::new(),
                    is_learner: false,
                }),
            }],
        }))
    }
}

/// Takes the snapshot uploaded with EtcdRecover for a `recover_etcd` bootstrap: the store it holds, with
/// a new id (a recovered etcd is a new cluster).
pub(crate) fn take_recovery(
    recovery: &mut Option<Vec<u8>>,
    skip_hash_check: bool,
) -> Result<StoreSnapshot, Status> {
    let Some(bytes) = recovery.as_ref() else {
        return Err(Status::failed_precondition(
            "recover_etcd requested, but no snapshot was uploaded: call EtcdRecover first",
        ));
    };
    let mut data = decode_snapshot(bytes, skip_hash_check).map_err(Status::invalid_argument)?;
    data.id = Store::default().version().0;
    *recovery = None;
    Ok(data)
}

/// Chunks as the boxed stream a server-streaming handler returns.
pub(crate) fn stream(
    chunks: Vec<Result<Data, Status>>,
) -> std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Data, Status>> + Send + 'static>> {
    Box::pin(tokio_stream::iter(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreSnapshot {
        Store::default().snapshot()
    }

    #[test]
    fn snapshots_round_trip_and_a_damaged_one_is_refused_unless_the_hash_check_is_skipped() {
        let data = store();
        let bytes = encode_snapshot(&data).expect("encode");
        assert!(bytes.starts_with(SNAPSHOT_HEADER));
        assert_eq!(decode_snapshot(&bytes, false), Ok(data.clone()));
        let unhashed = &bytes[..bytes.len() - 32];
        assert!(decode_snapshot(unhashed, false).is_err());
        assert_eq!(decode_snapshot(unhashed, true), Ok(data));
        assert!(decode_snapshot(b"garbage", true).is_err());
    }

    #[test]
    fn talos_refuses_to_skip_more_than_one_minor_between_supported_releases() {
        assert!(upgrade_path_supported("v1.12.11", "v1.13.9").is_ok());
        assert!(upgrade_path_supported("v1.11.6", "v1.13.9").is_ok());
        assert!(upgrade_path_supported("v1.12.4", "v1.12.11").is_ok());
        let refused = upgrade_path_supported("v1.10.3", "v1.13.9");
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("only from 1.11.0")),
            "{refused:?}"
        );
        assert_eq!(
            installer_version("factory.talos.dev/metal-installer-secureboot/abc:v1.13.9"),
            Some("v1.13.9".into())
        );
        assert_eq!(installer_version("factory.talos.dev/installer/abc"), None);
    }
}
