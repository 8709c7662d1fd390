//! The apid client: connects in maintenance mode or with mutual TLS, targets a node through the
//! `node` gRPC metadata, and turns each RPC's response (including per-message metadata errors)
//! into plain Rust values.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint, Uri};
use zeroize::Zeroizing;

use crate::error::ApidError;
use crate::proto::common::Metadata;
use crate::proto::machine::{self, machine_service_client::MachineServiceClient};
use crate::tls::{self, ClientCredentials, Fingerprint};

/// The port apid listens on.
pub const APID_PORT: u16 = 50000;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const MAX_MESSAGE: usize = 32 << 20;
const MAX_KUBECONFIG_ARCHIVE: usize = 4 << 20;
/// Where Linux exposes the ID of the current boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// How `ApplyConfiguration` should take effect (Talos `ApplyConfigurationRequest.Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Apply and reboot (the maintenance-mode install path).
    Reboot,
    /// Let the node pick `NoReboot` when possible, else `Reboot`.
    Auto,
    /// Apply without rebooting; fails if a reboot is needed.
    NoReboot,
    /// Store for the next boot.
    Staged,
    /// Apply and roll back after a timeout unless confirmed.
    Try,
}

impl ApplyMode {
    fn to_proto(self) -> machine::apply_configuration_request::Mode {
        use machine::apply_configuration_request::Mode;
        match self {
            Self::Reboot => Mode::Reboot,
            Self::Auto => Mode::Auto,
            Self::NoReboot => Mode::NoReboot,
            Self::Staged => Mode::Staged,
            Self::Try => Mode::Try,
        }
    }

    fn from_proto(value: i32) -> Option<Self> {
        use machine::apply_configuration_request::Mode;
        Some(match Mode::try_from(value).ok()? {
            Mode::Reboot => Self::Reboot,
            Mode::Auto => Self::Auto,
            Mode::NoReboot => Self::NoReboot,
            Mode::Staged => Self::Staged,
            Mode::Try => Self::Try,
        })
    }
}

/// What the node did with an applied configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// the mode the node actually used
    pub mode: Option<ApplyMode>,
    /// human-readable details (a diff summary for dry runs)
    pub mode_details: String,
    /// warnings about the configuration
    pub warnings: Vec<String>,
}

/// The result of a bootstrap call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrapped {
    /// etcd was bootstrapped by this call.
    Now,
    /// etcd was already bootstrapped (`AlreadyExists`): nothing to do.
    Already,
}

/// Bound for retrying `Bootstrap` while the node answers `FailedPrecondition` (not ready yet,
/// time not in sync) or `Unavailable`.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapRetry {
    /// total attempts, including the first
    pub attempts: u32,
    /// pause between attempts
    pub delay: Duration,
}

impl Default for BootstrapRetry {
    fn default() -> Self {
        Self {
            attempts: 60,
            delay: Duration::from_secs(5),
        }
    }
}

/// Talos version information of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVersion {
    /// hostname from the response metadata (empty when not proxied)
    pub node: String,
    /// release tag, e.g. `v1.12.4`
    pub tag: String,
    /// git sha
    pub sha: String,
    /// architecture
    pub arch: String,
    /// platform name (e.g. `metal`, `nocloud`)
    pub platform: String,
}

/// One system service on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// service id (`etcd`, `kubelet`, `apid`...)
    pub id: String,
    /// state (`Running`, `Waiting`, `Finished`...)
    pub state: String,
    /// health check result, `None` when unknown
    pub healthy: Option<bool>,
}

/// One etcd member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// member id
    pub id: u64,
    /// member hostname
    pub hostname: String,
    /// peer URLs
    pub peer_urls: Vec<String>,
    /// client URLs
    pub client_urls: Vec<String>,
    /// whether the member is a learner
    pub is_learner: bool,
}

/// What `Reset` should wipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOptions {
    /// leave etcd and drain gracefully first
    pub graceful: bool,
    /// reboot after the reset (otherwise the node shuts down)
    pub reboot: bool,
    /// system partition labels to wipe (empty = all)
    pub partitions: Vec<String>,
}

impl Default for ResetOptions {
    fn default() -> Self {
        Self {
            graceful: true,
            reboot: true,
            partitions: vec!["STATE".into(), "EPHEMERAL".into()],
        }
    }
}

/// A connection to one apid endpoint.
#[derive(Debug, Clone)]
pub struct ApidClient {
    endpoint: SocketAddr,
    pub(crate) inner: MachineServiceClient<Channel>,
    /// The same connection, for the services beside `MachineService` (COSI `State`).
    pub(crate) channel: Channel,
    node: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ApidClient {
    /// Connects to a node in maintenance mode: TLS without a client certificate. The server's
    /// self-signed certificate cannot be verified against any CA; with `pin` it must match the
    /// fingerprint, without it any server is accepted (Talos maintenance mode is unauthenticated
    /// in the same way; `talosctl apply-config --insecure` does the same).
    pub async fn connect_maintenance(
        endpoint: SocketAddr,
        pin: Option<Fingerprint>,
    ) -> Result<Self, ApidError> {
        Self::connect_with(endpoint, tls::maintenance_config(pin)?).await
    }

    /// Connects to an installed node with mutual TLS: the server certificate must chain to the
    /// OS CA in `creds`, and the client presents the talosconfig certificate.
    pub async fn connect(
        endpoint: SocketAddr,
        creds: &ClientCredentials,
    ) -> Result<Self, ApidError> {
        Self::connect_with(endpoint, tls::mutual_config(creds)?).await
    }

    async fn connect_with(
        endpoint: SocketAddr,
        config: rustls::ClientConfig,
    ) -> Result<Self, ApidError> {
        let connector = TlsConnector {
            addr: endpoint,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        };
        let uri = format!("http://{endpoint}");
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| ApidError::Unreachable {
                endpoint,
                message: e.to_string(),
            })?
            .timeout(REQUEST_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .map_err(|e| ApidError::from_transport(endpoint, &e))?;
        let inner = MachineServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Self {
            endpoint,
            inner,
            channel,
            node: None,
        })
    }

    /// Targets `node` (hostname or IP) through this endpoint: apid proxies the call there.
    pub fn with_node(mut self, node: &str) -> Result<Self, ApidError> {
        let value = MetadataValue::try_from(node).map_err(|e| ApidError::Credentials {
            what: "node name",
            reason: format!("{node:?}: {e}"),
        })?;
        self.node = Some(value);
        Ok(self)
    }

    /// The address this client talks to.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        if let Some(node) = &self.node {
            req.metadata_mut().insert("node", node.clone());
        }
        req
    }

    pub(crate) fn fail(&self, method: &'static str, status: &tonic::Status) -> ApidError {
        ApidError::from_status(self.endpoint, method, status)
    }

    /// Sends the full multi-document machine configuration.
    pub async fn apply_configuration(
        &mut self,
        config: &[u8],
        mode: ApplyMode,
        dry_run: bool,
    ) -> Result<ApplyOutcome, ApidError> {
        const M: &str = "ApplyConfiguration";
        let req = self.request(machine::ApplyConfigurationRequest {
            data: config.to_vec(),
            mode: mode.to_proto() as i32,
            dry_run,
            try_mode_timeout: None,
        });
        let resp = self
            .inner
            .apply_configuration(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        Ok(ApplyOutcome {
            mode: ApplyMode::from_proto(msg.mode),
            mode_details: msg.mode_details,
            warnings: msg.warnings,
        })
    }

    /// Talos version of the node.
    pub async fn version(&mut self) -> Result<NodeVersion, ApidError> {
        const M: &str = "Version";
        let req = self.request(());
        let resp = self
            .inner
            .version(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        let node = msg.metadata.map(|m| m.hostname).unwrap_or_default();
        let version = msg.version.unwrap_or_default();
        Ok(NodeVersion {
            node,
            tag: version.tag,
            sha: version.sha,
            arch: version.arch,
            platform: msg.platform.map(|p| p.name).unwrap_or_default(),
        })
    }

    /// Bootstraps etcd once. `AlreadyExists` (etcd data directory not empty) means it was
    /// done before and is returned as [`Bootstrapped::Already`].
    pub async fn bootstrap(&mut self) -> Result<Bootstrapped, ApidError> {
        self.bootstrap_request(machine::BootstrapRequest {
            recover_etcd: false,
            recover_skip_hash_check: false,
        })
        .await
    }

    /// Sends one Bootstrap request; `AlreadyExists` becomes [`Bootstrapped::Already`].
    pub(crate) async fn bootstrap_request(
        &mut self,
        request: machine::BootstrapRequest,
    ) -> Result<Bootstrapped, ApidError> {
        const M: &str = "Bootstrap";
        let req = self.request(request);
        let result = match self.inner.bootstrap(req).await {
            Ok(resp) => self
                .first(M, resp.into_inner().messages, |m| m.metadata.as_ref())
                .map(|_| Bootstrapped::Now),
            Err(status) => Err(self.fail(M, &status)),
        };
        match result {
            Err(e) if e.code() == Some(Code::AlreadyExists) => Ok(Bootstrapped::Already),
            other => other,
        }
    }

    /// [`Self::bootstrap`], retried while the node is not ready for it yet (`FailedPrecondition`,
    /// `Unavailable`), at most `retry.attempts` times.
    pub async fn bootstrap_with_retry(
        &mut self,
        retry: BootstrapRetry,
    ) -> Result<Bootstrapped, ApidError> {
        let attempts = retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.bootstrap().await {
                Err(e)
                    if matches!(e.code(), Some(Code::FailedPrecondition | Code::Unavailable)) =>
                {
                    if attempt >= attempts {
                        return Err(ApidError::BootstrapGaveUp {
                            endpoint: self.endpoint,
                            attempts,
                            last: Box::new(e),
                        });
                    }
                    tracing::debug!(attempt, error = %e, "bootstrap not possible yet, retrying");
                    tokio::time::sleep(retry.delay).await;
                }
                other => return other,
            }
        }
    }

    /// Fetches the admin kubeconfig the node generates (streamed as tar.gz) and returns the
    /// kubeconfig file's bytes. They contain a private key: keep them out of logs.
    pub async fn kubeconfig(&mut self) -> Result<Zeroizing<Vec<u8>>, ApidError> {
        const M: &str = "Kubeconfig";
        let req = self.request(());
        let mut stream = self
            .inner
            .kubeconfig(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let mut archive = Zeroizing::new(Vec::new());
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(status) => return Err(self.fail(M, &status)),
            };
            check_metadata(M, chunk.metadata.as_ref(), self.node_name())?;
            archive.extend_from_slice(&chunk.bytes);
            if archive.len() > MAX_KUBECONFIG_ARCHIVE {
                return Err(ApidError::KubeconfigArchive {
                    endpoint: self.endpoint,
                    reason: format!("stream exceeds {MAX_KUBECONFIG_ARCHIVE} bytes"),
                });
            }
        }
        if archive.is_empty() {
            return Err(ApidError::EmptyResponse {
                endpoint: self.endpoint,
                method: M,
            });
        }
        crate::archive::kubeconfig_from_tar_gz(&archive).map_err(|reason| {
            ApidError::KubeconfigArchive {
                endpoint: self.endpoint,
                reason,
            }
        })
    }

    /// The kernel's boot ID (`/proc/sys/kernel/random/boot_id`, read through `Read`, which Talos allows
    /// `os:admin` only): it changes with every boot, so comparing it before and after an action that
    /// reboots tells that the reboot really happened, as `talosctl … --wait` does.
    pub async fn boot_id(&mut self) -> Result<String, ApidError> {
        const M: &str = "Read";
        const MAX_BOOT_ID: usize = 4096;
        let req = self.request(machine::ReadRequest {
            path: BOOT_ID_PATH.into(),
        });
        let mut stream = self
            .inner
            .read(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let mut body = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(|s| self.fail(M, &s))? {
            check_metadata(M, chunk.metadata.as_ref(), self.node_name())?;
            body.extend_from_slice(&chunk.bytes);
            if body.len() > MAX_BOOT_ID {
                break;
            }
        }
        let id = String::from_utf8_lossy(&body).trim().to_owned();
        if id.is_empty() || body.len() > MAX_BOOT_ID {
            return Err(ApidError::EmptyResponse {
                endpoint: self.endpoint,
                method: M,
            });
        }
        Ok(id)
    }

    /// The node's system services.
    pub async fn service_list(&mut self) -> Result<Vec<Service>, ApidError> {
        const M: &str = "ServiceList";
        let req = self.request(());
        let resp = self
            .inner
            .service_list(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        Ok(msg
            .services
            .into_iter()
            .map(|s| Service {
                id: s.id,
                state: s.state,
                healthy: s.health.and_then(|h| (!h.unknown).then_some(h.healthy)),
            })
            .collect())
    }

    /// The etcd cluster members as seen by the node. Before etcd runs (no bootstrap yet) Talos
    /// blocks this call until its deadline: see [`Self::etcd_member_list_within`].
    pub async fn etcd_member_list(&mut self) -> Result<Vec<EtcdMember>, ApidError> {
        self.etcd_member_list_within(REQUEST_TIMEOUT).await
    }

    /// [`Self::etcd_member_list`] with a deadline of its own (sent as `grpc-timeout`): Talos'
    /// etcd client waits for a leader until the call's context ends, so before the bootstrap the
    /// call ends with `DeadlineExceeded` (or `Cancelled`/`Unknown`) after `deadline`, not at once.
    pub async fn etcd_member_list_within(
        &mut self,
        deadline: Duration,
    ) -> Result<Vec<EtcdMember>, ApidError> {
        const M: &str = "EtcdMemberList";
        let mut req = self.request(machine::EtcdMemberListRequest { query_local: false });
        req.set_timeout(deadline);
        let resp = self
            .inner
            .etcd_member_list(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        let msg = self.first(M, resp.messages, |m| m.metadata.as_ref())?;
        Ok(msg
            .members
            .into_iter()
            .map(|m| EtcdMember {
                id: m.id,
                hostname: m.hostname,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
            .collect())
    }

    /// Resets the node (wipes the chosen system partitions); with `reboot` it comes back in
    /// maintenance mode.
    pub async fn reset(&mut self, options: &ResetOptions) -> Result<(), ApidError> {
        const M: &str = "Reset";
        let req = self.request(machine::ResetRequest {
            graceful: options.graceful,
            reboot: options.reboot,
            system_partitions_to_wipe: options
                .partitions
                .iter()
                .map(|label| machine::ResetPartitionSpec {
                    label: label.clone(),
                    wipe: true,
                })
                .collect(),
            user_disks_to_wipe: Vec::new(),
            mode: machine::reset_request::WipeMode::All as i32,
        });
        let resp = self
            .inner
            .reset(req)
            .await
            .map_err(|s| self.fail(M, &s))?
            .into_inner();
        self.first(M, resp.messages, |m| m.metadata.as_ref())
            .map(|_| ())
    }

    pub(crate) fn node_name(&self) -> &str {
        self.node
            .as_ref()
            .and_then(|n| n.to_str().ok())
            .unwrap_or_default()
    }

    /// Checks every element's metadata, then returns the first element.
    pub(crate) fn first<T>(
        &self,
        method: &'static str,
        messages: Vec<T>,
        metadata: impl Fn(&T) -> Option<&Metadata>,
    ) -> Result<T, ApidError> {
        for m in &messages {
            check_metadata(method, metadata(m), self.node_name())?;
        }
        messages.into_iter().next().ok_or(ApidError::EmptyResponse {
            endpoint: self.endpoint,
            method,
        })
    }
}

/// Surfaces a per-node error carried in a response element's metadata.
pub(crate) fn check_metadata(
    method: &'static str,
    md: Option<&Metadata>,
    target: &str,
) -> Result<(), ApidError> {
    let Some(md) = md else { return Ok(()) };
    let status = md.status.as_ref().filter(|s| s.code != 0);
    if md.error.is_empty() && status.is_none() {
        return Ok(());
    }
    let node = if md.hostname.is_empty() {
        target.to_owned()
    } else {
        md.hostname.clone()
    };
    let message = if md.error.is_empty() {
        status.map(|s| s.message.clone()).unwrap_or_default()
    } else {
        md.error.clone()
    };
    Err(ApidError::Node {
        method,
        node,
        code: status.map(|s| Code::from_i32(s.code)),
        message,
    })
}

/// Dials TCP and runs the TLS handshake with our rustls config (ALPN h2), for tonic.
#[derive(Clone)]
struct TlsConnector {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
}

type ConnectFuture = Pin<
    Box<
        dyn Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>>
            + Send,
    >,
>;

impl tonic::codegen::Service<Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(this.addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
                })??;
            tcp.set_nodelay(true)?;
            let tls = this
                .tls
                .connect(tls::server_name(this.addr.ip()), tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::google::rpc::Status;

    #[test]
    fn metadata_error_becomes_a_node_error() {
        let md = Metadata {
            hostname: "cp1".into(),
            error: String::new(),
            status: Some(Status {
                code: Code::FailedPrecondition as i32,
                message: "time not in sync".into(),
                details: vec![],
            }),
        };
        let err = check_metadata("Bootstrap", Some(&md), "");
        assert!(
            matches!(&err, Err(ApidError::Node { node, code: Some(Code::FailedPrecondition), .. }) if node == "cp1")
        );
        let ok = Metadata {
            hostname: "cp1".into(),
            ..Default::default()
        };
        assert!(check_metadata("Bootstrap", Some(&ok), "").is_ok());
    }
}
