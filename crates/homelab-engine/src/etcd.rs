//! etcd of the cluster's control planes, for `homelabctl etcd` and the upgrades that take a snapshot first:
//! the members (with leader and learner flags), a snapshot streamed from a healthy member into any writer
//! (the repository encrypts it on the way to disk), and Talos' documented disaster recovery — wipe etcd's
//! data (EPHEMERAL) on every control plane, upload the snapshot to the first with EtcdRecover, bootstrap it
//! with `recover_etcd`, and wait for the others to join again.
//!
//! It talks to the nodes through the apid client with the talosconfig credentials; it never prints and never
//! holds the snapshot longer than it takes to pass it on.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use homelab_apid::{ApidClient, ApidError, ClientCredentials, EtcdStatus, ResetOptions};
use homelab_config::{Config, Node};
use tonic::Code;
use zeroize::Zeroizing;

use crate::desired;
use crate::events::EventSink;

/// Size of the chunks a snapshot is uploaded in.
const UPLOAD_CHUNK: usize = 1 << 20;
/// Pause between two attempts while a node reboots.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// An etcd member as `etcd members` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// member id (shown in hex, as etcdctl does)
    pub id: u64,
    /// the node's hostname
    pub name: String,
    pub peer_urls: Vec<String>,
    /// whether it leads the cluster now
    pub leader: bool,
    /// whether it is a learner (catching up, not voting)
    pub learner: bool,
}

/// What a snapshot came from, for the metadata beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// the member (node name in homelab.yaml) it was streamed from
    pub node: String,
    pub talos_version: String,
    pub etcd_version: String,
    /// plaintext bytes streamed
    pub bytes: u64,
}

/// Why an etcd operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("homelab.yaml has no control plane, so there is no etcd")]
    NoControlPlane,
    #[error(
        "no control plane answered with a running etcd ({tried}); check `homelabctl status` and that the \
         cluster was bootstrapped"
    )]
    NoHealthyMember { tried: String },
    #[error("{node} ({at}): {source}")]
    Node {
        node: String,
        at: SocketAddr,
        #[source]
        source: Box<ApidError>,
    },
    #[error("writing the snapshot: {0}")]
    Sink(#[source] std::io::Error),
    #[error("{node}: {what} did not happen within {}s (last seen: {last})", timeout.as_secs())]
    Timeout {
        node: String,
        what: &'static str,
        timeout: Duration,
        last: String,
    },
}

/// The control planes of one homelab.yaml, reached with its talosconfig credentials.
pub struct Etcd<'a> {
    pub config: &'a Config,
    pub credentials: &'a ClientCredentials,
    pub events: EventSink,
    /// how long a recovery may wait for each node
    pub timeout: Duration,
}

impl Etcd<'_> {
    fn control_planes(&self) -> Result<Vec<&Node>, EtcdError> {
        let nodes: Vec<&Node> = desired::control_planes(self.config).collect();
        if nodes.is_empty() {
            return Err(EtcdError::NoControlPlane);
        }
        Ok(nodes)
    }

    async fn connect(&self, node: &Node) -> Result<ApidClient, EtcdError> {
        let at = desired::installed_address(node);
        ApidClient::connect(at, self.credentials)
            .await
            .map_err(|source| fail(node, source))
    }

    /// The first control plane (homelab.yaml order) whose etcd answers, with its status.
    async fn healthy_member(&self) -> Result<(&Node, ApidClient, EtcdStatus), EtcdError> {
        let mut tried = Vec::new();
        for node in self.control_planes()? {
            let mut client = match self.connect(node).await {
                Ok(c) => c,
                Err(e) => {
                    tried.push(e.to_string());
                    continue;
                }
            };
            match client.etcd_status().await {
                Ok(status) if !status.is_learner && status.errors.is_empty() => {
                    return Ok((node, client, status));
                }
                Ok(_) => tried.push(format!("{}: a learner or reporting errors", node.name)),
                Err(e) => tried.push(format!("{}: {e}", node.name)),
            }
        }
        Err(EtcdError::NoHealthyMember {
            tried: tried.join("; "),
        })
    }

    /// The members as a healthy member sees them, with the leader marked.
    pub async fn members(&self) -> Result<Vec<Member>, EtcdError> {
        let (node, mut client, status) = self.healthy_member().await?;
        let members = client.etcd_member_list().await.map_err(|e| fail(node, e))?;
        Ok(members
            .into_iter()
            .map(|m| Member {
                leader: m.id == status.leader,
                id: m.id,
                name: m.hostname,
                peer_urls: m.peer_urls,
                learner: m.is_learner,
            })
            .collect())
    }

    /// Streams a snapshot from a healthy member into `sink`, chunk by chunk.
    pub async fn snapshot(&self, sink: &mut impl Write) -> Result<Taken, EtcdError> {
        let (node, mut client, status) = self.healthy_member().await?;
        let version = client.version().await.map_err(|e| fail(node, e))?;
        self.events.info(
            "etcd",
            format!(
                "streaming a snapshot from {} (etcd {})",
                node.name, status.protocol_version
            ),
        );
        let mut stream = client.etcd_snapshot().await.map_err(|e| fail(node, e))?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next_chunk().await.map_err(|e| fail(node, e))? {
            sink.write_all(&chunk).map_err(EtcdError::Sink)?;
            bytes += chunk.len() as u64;
        }
        sink.flush().map_err(EtcdError::Sink)?;
        Ok(Taken {
            node: node.name.clone(),
            talos_version: version.tag,
            etcd_version: status.protocol_version,
            bytes,
        })
    }

    /// Talos' etcd disaster recovery from `snapshot` (plaintext, already decrypted): every control plane's
    /// etcd data is wiped (EPHEMERAL; configs stay), the snapshot is uploaded to the first control plane,
    /// which bootstraps a one-member etcd from it; the others join it again. Returns once every control
    /// plane is a (voting) member.
    pub async fn restore(&self, snapshot: &[u8]) -> Result<(), EtcdError> {
        let nodes = self.control_planes()?;
        // Every control plane must answer before anything is wiped; its boot ID tells its reboot apart.
        let mut booted = Vec::new();
        for node in &nodes {
            let mut client = self.connect(node).await?;
            let boot_id = client.boot_id().await.map_err(|e| fail(node, e))?;
            booted.push((client, boot_id));
        }
        let wipe = ResetOptions {
            graceful: false,
            reboot: true,
            partitions: vec!["EPHEMERAL".into()],
        };
        for (node, (client, _)) in nodes.iter().zip(booted.iter_mut()) {
            self.events.info(
                "etcd",
                format!("{}: wiping etcd's data (EPHEMERAL)", node.name),
            );
            client.reset(&wipe).await.map_err(|e| fail(node, e))?;
        }
        // Talos answers Reset before its reset sequence runs: anything sent before the reboot is lost.
        for (node, (_, before)) in nodes.iter().zip(&booted) {
            self.await_new_boot(node, before).await?;
        }
        let first = nodes[0];
        self.events.info(
            "etcd",
            format!(
                "{}: uploading the snapshot ({} bytes)",
                first.name,
                snapshot.len()
            ),
        );
        self.retry(first, "the snapshot upload", async |c: &mut ApidClient| {
            let chunks: Vec<Zeroizing<Vec<u8>>> = snapshot
                .chunks(UPLOAD_CHUNK)
                .map(|c| Zeroizing::new(c.to_vec()))
                .collect();
            c.etcd_recover(tonic::codegen::tokio_stream::iter(chunks))
                .await
        })
        .await?;
        self.events.info(
            "etcd",
            format!("{}: bootstrapping etcd from the snapshot", first.name),
        );
        // Each attempt dials afresh: a connection from before the node's reboot stays dead.
        let mut client = self
            .retry(
                first,
                "the recovery bootstrap",
                async |c: &mut ApidClient| c.bootstrap_recover(false).await.map(|_| ()),
            )
            .await?;
        self.events.info(
            "etcd",
            format!(
                "{}: etcd runs from the snapshot; waiting for the other control planes",
                first.name
            ),
        );
        let start = Instant::now();
        loop {
            let seen = client.etcd_member_list().await;
            if seen.is_err()
                && let Ok(fresh) = self.connect(first).await
            {
                client = fresh;
            }
            let last = match &seen {
                Ok(m) => format!(
                    "members {}",
                    m.iter()
                        .map(|m| m.hostname.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(e) => e.to_string(),
            };
            let members = seen.unwrap_or_default();
            let voting = |n: &&Node| {
                members
                    .iter()
                    .any(|m| m.hostname == n.name && !m.is_learner)
            };
            if nodes.iter().all(voting) {
                break;
            }
            if start.elapsed() >= self.timeout {
                return Err(EtcdError::Timeout {
                    node: first.name.clone(),
                    what: "every control plane rejoining etcd",
                    timeout: self.timeout,
                    last,
                });
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        self.events.info(
            "etcd",
            format!(
                "restored: {} members, bootstrapped on {}",
                nodes.len(),
                first.name
            ),
        );
        Ok(())
    }

    /// Waits until `node` answers with a boot ID other than `before`: its reset sequence ran and it booted
    /// again (what `talosctl reset --wait` checks).
    async fn await_new_boot(&self, node: &Node, before: &str) -> Result<(), EtcdError> {
        self.events.info(
            "etcd",
            format!("{}: waiting for the reset to reboot it", node.name),
        );
        let start = Instant::now();
        loop {
            let seen = match self.connect(node).await {
                Ok(mut c) => c.boot_id().await.map_err(|e| fail(node, e)),
                Err(e) => Err(e),
            };
            let last = match seen {
                Ok(id) if id != before => return Ok(()),
                Ok(_) => "the boot before the reset, still running".to_string(),
                Err(e) if transient(&e) => e.to_string(),
                Err(e) => return Err(e),
            };
            if start.elapsed() >= self.timeout {
                return Err(EtcdError::Timeout {
                    node: node.name.clone(),
                    what: "the reboot after the reset",
                    timeout: self.timeout,
                    last,
                });
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    /// Runs `call` on `node` until it succeeds, reconnecting while the node reboots; returns the client.
    async fn retry(
        &self,
        node: &Node,
        what: &'static str,
        mut call: impl AsyncFnMut(&mut ApidClient) -> Result<(), ApidError>,
    ) -> Result<ApidClient, EtcdError> {
        let start = Instant::now();
        loop {
            let attempt = match self.connect(node).await {
                Ok(mut c) => match call(&mut c).await {
                    Ok(()) => return Ok(c),
                    Err(e) => fail(node, e),
                },
                Err(e) => e,
            };
            if !transient(&attempt) {
                return Err(attempt);
            }
            if start.elapsed() >= self.timeout {
                return Err(EtcdError::Timeout {
                    node: node.name.clone(),
                    what,
                    timeout: self.timeout,
                    last: attempt.to_string(),
                });
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

fn fail(node: &Node, source: ApidError) -> EtcdError {
    EtcdError::Node {
        node: node.name.clone(),
        at: desired::installed_address(node),
        source: Box::new(source),
    }
}

/// A failure that passes by itself: a node rebooting, or not ready for this step yet.
fn transient(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Node { source, .. } if retryable(source))
}

/// A node rebooting, or not ready for this step yet.
fn retryable(e: &ApidError) -> bool {
    matches!(e, ApidError::Unreachable { .. })
        || matches!(
            e.code(),
            Some(Code::Unavailable | Code::FailedPrecondition | Code::Cancelled | Code::Unknown)
        )
}
