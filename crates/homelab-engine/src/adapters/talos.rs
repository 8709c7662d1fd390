//! [`TalosApi`] over the apid client: maintenance mode without a client certificate, installed mode with the
//! talosconfig's os:admin certificate minted from the cluster's secrets bundle. Installed-mode connections
//! are kept per address for the run (one mutual-TLS handshake per node, not per call) and dropped on error.
//! Talos' answers are read as Talos means them: EtcdMemberList before the bootstrap blocks until its
//! deadline (bounded here, and "no cluster yet"), Bootstrap's FailedPrecondition names what Talos waits for,
//! and a worker's Unimplemented for control-plane-only calls is a permanent, explained error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use homelab_apid::{ApidClient, ApidError, ApplyMode, ClientCredentials, ResetOptions};
use tonic::Code;

use crate::ports::{
    Bootstrapped, ErrorKind, EtcdMember, PortError, PortResult, ServiceHealth, TalosApi,
};

pub struct Talos {
    pub credentials: ClientCredentials,
    /// How long a single probe may take before the node counts as not answering.
    pub probe_timeout: Duration,
    /// The deadline of one EtcdMemberList call: before the bootstrap Talos blocks it until the deadline
    /// (its etcd client waits for a leader), so a long one stalls plan, apply and status per control plane.
    pub etcd_deadline: Duration,
    connections: Mutex<HashMap<SocketAddr, ApidClient>>,
}

/// Bootstrap's FailedPrecondition, explained: what Talos waits for (`v1alpha1_server.go`: CRI up, then the
/// time in sync; a worker never).
fn bootstrap_precondition(e: &ApidError) -> Option<PortError> {
    if e.code() != Some(Code::FailedPrecondition) {
        return None;
    }
    let text = e.to_string();
    Some(if text.contains("time is not in sync") {
        PortError::transient(format!(
            "Talos waits for the node's time to sync (NTP) before it bootstraps etcd ({text}); \
             check that the node reaches its time servers"
        ))
    } else if text.contains("not available yet") {
        PortError::transient(format!(
            "Talos waits for CRI (containerd) to come up after the install before it bootstraps etcd ({text})"
        ))
    } else if text.contains("control plane") {
        PortError::permanent(format!(
            "{text}; bootstrap runs on the first control plane of homelab.yaml"
        ))
    } else {
        PortError::transient(text)
    })
}

fn port_error(e: ApidError) -> PortError {
    let transient = match &e {
        ApidError::Unreachable { .. } => true,
        _ => matches!(
            e.code(),
            Some(
                Code::Unavailable
                    // A call cut off with its connection (apid restarting) ends as Cancelled.
                    | Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::FailedPrecondition
                    | Code::Unknown
                    | Code::Internal
            )
        ),
    };
    let kind = if transient {
        ErrorKind::Transient
    } else {
        match e.code() {
            Some(Code::Unauthenticated | Code::PermissionDenied) => ErrorKind::Auth,
            Some(Code::NotFound) => ErrorKind::NotFound,
            Some(Code::InvalidArgument) => ErrorKind::Invalid,
            Some(Code::AlreadyExists) => ErrorKind::Conflict,
            _ => ErrorKind::Other,
        }
    };
    PortError::new(kind, e.to_string())
}

impl Talos {
    /// Credentials for this run: a short-lived os:admin client certificate minted from the bundle's OS CA.
    pub fn from_bundle(bundle: &homelab_talos::secrets::SecretsBundle) -> PortResult<Self> {
        let os = &bundle.certs.os;
        let client = homelab_talos::pki::talos_client_cert(
            os,
            &["os:admin"],
            Duration::from_secs(24 * 3600),
        )
        .map_err(|e| {
            PortError::permanent(format!("cannot mint the Talos client certificate: {e}"))
        })?;
        let credentials = ClientCredentials::from_pem(
            os.crt.as_bytes(),
            client.crt.as_bytes(),
            client.key.expose().as_bytes(),
        )
        .map_err(|e| PortError::permanent(e.to_string()))?;
        Ok(Self {
            credentials,
            probe_timeout: Duration::from_secs(5),
            etcd_deadline: Duration::from_secs(3),
            connections: Mutex::new(HashMap::new()),
        })
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, ApidClient>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A mutual-TLS client for the installed node at `at`, reusing this run's connection when there is one.
    async fn installed(&self, at: SocketAddr) -> PortResult<ApidClient> {
        if let Some(client) = self.connections().get(&at) {
            return Ok(client.clone());
        }
        let client = match tokio::time::timeout(
            self.probe_timeout,
            ApidClient::connect(at, &self.credentials),
        )
        .await
        {
            Ok(r) => r.map_err(port_error)?,
            Err(_) => {
                return Err(PortError::transient(format!(
                    "apid at {at} did not answer within {}s",
                    self.probe_timeout.as_secs()
                )));
            }
        };
        self.connections().insert(at, client.clone());
        Ok(client)
    }

    /// Forgets the connection to `at` when a call on it failed, so the next call dials afresh (the node may
    /// have rebooted or changed its certificate).
    fn checked<V>(&self, at: SocketAddr, r: Result<V, ApidError>) -> Result<V, ApidError> {
        if r.is_err() {
            self.connections().remove(&at);
        }
        r
    }
}

impl TalosApi for Talos {
    async fn apply_in_maintenance(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        // Bounded: a probed address nobody holds (yet) must not hold up the agent's report.
        let mut client = match tokio::time::timeout(
            self.probe_timeout,
            ApidClient::connect_maintenance(at, None),
        )
        .await
        {
            Ok(r) => r.map_err(port_error)?,
            Err(_) => {
                return Err(PortError::transient(format!(
                    "nothing answered at {at} within {}s",
                    self.probe_timeout.as_secs()
                )));
            }
        };
        client
            .apply_configuration(config, ApplyMode::Reboot, false)
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn apply_installed(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client
            .apply_configuration(config, ApplyMode::Auto, false)
            .await;
        self.checked(at, r).map_err(port_error)?;
        Ok(())
    }

    async fn installed_version(&self, at: SocketAddr) -> PortResult<Option<String>> {
        let Ok(mut client) = self.installed(at).await else {
            return Ok(None);
        };
        match tokio::time::timeout(self.probe_timeout, client.version()).await {
            Ok(Ok(v)) => Ok(Some(v.tag)),
            _ => {
                self.connections().remove(&at);
                Ok(None)
            }
        }
    }

    async fn boot_id(&self, at: SocketAddr) -> PortResult<Option<String>> {
        let Ok(mut client) = self.installed(at).await else {
            return Ok(None);
        };
        match tokio::time::timeout(self.probe_timeout, client.boot_id()).await {
            Ok(Ok(id)) => Ok(Some(id)),
            Ok(Err(e)) if e.code() == Some(Code::PermissionDenied) => Err(port_error(e)),
            _ => {
                self.connections().remove(&at);
                Ok(None)
            }
        }
    }

    /// One attempt: the engine retries within its bootstrap time budget (a precondition may take minutes).
    async fn bootstrap(&self, at: SocketAddr) -> PortResult<Bootstrapped> {
        let mut client = self.installed(at).await?;
        let r = client.bootstrap().await;
        match self.checked(at, r) {
            Ok(homelab_apid::Bootstrapped::Now) => Ok(Bootstrapped::Now),
            Ok(homelab_apid::Bootstrapped::Already) => Ok(Bootstrapped::Already),
            Err(e) => Err(bootstrap_precondition(&e).unwrap_or_else(|| port_error(e))),
        }
    }

    async fn etcd_members(&self, at: SocketAddr) -> PortResult<Vec<EtcdMember>> {
        let mut client = self.installed(at).await?;
        let r = client.etcd_member_list_within(self.etcd_deadline).await;
        match self.checked(at, r) {
            Ok(members) => Ok(members
                .into_iter()
                .map(|m| EtcdMember {
                    name: m.hostname,
                    learner: m.is_learner,
                })
                .collect()),
            // Before the bootstrap etcd does not run: Talos' etcd client waits for a leader until the deadline
            // (DeadlineExceeded, or Unknown/Cancelled as the context error surfaces); older answers were
            // FailedPrecondition/Unavailable. All mean "no cluster yet".
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        Code::FailedPrecondition
                            | Code::Unavailable
                            | Code::NotFound
                            | Code::DeadlineExceeded
                            | Code::Cancelled
                            | Code::Unknown
                    )
                ) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(port_error(e)),
        }
    }

    async fn kubeconfig(&self, at: SocketAddr) -> PortResult<Vec<u8>> {
        let mut client = self.installed(at).await?;
        let r = client.kubeconfig().await;
        match self.checked(at, r) {
            Ok(bytes) => Ok(bytes.to_vec()),
            // A worker never hands one out: waiting would not help.
            Err(e @ ApidError::NotControlPlane { .. }) => Err(PortError::permanent(e.to_string())),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn services(&self, at: SocketAddr) -> PortResult<Vec<ServiceHealth>> {
        let mut client = self.installed(at).await?;
        let r = client.service_list().await;
        let services = self.checked(at, r).map_err(port_error)?;
        Ok(services
            .into_iter()
            .map(|s| ServiceHealth {
                id: s.id,
                state: s.state,
                healthy: s.healthy,
            })
            .collect())
    }

    async fn apply_no_reboot(&self, at: SocketAddr, config: &[u8]) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client
            .apply_configuration(config, ApplyMode::NoReboot, false)
            .await;
        self.checked(at, r).map_err(port_error)?;
        Ok(())
    }

    async fn reset(&self, at: SocketAddr) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client.reset(&ResetOptions::default()).await;
        self.connections().remove(&at);
        r.map_err(port_error)
    }

    async fn etcd_leave(&self, at: SocketAddr) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client.etcd_leave_cluster().await;
        self.checked(at, r).map_err(port_error)
    }

    async fn etcd_remove_member(&self, at: SocketAddr, name: &str) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client.etcd_member_list_within(self.etcd_deadline).await;
        let members = self.checked(at, r).map_err(port_error)?;
        // The id is looked up by name now: a member that rejoined since has a new one.
        let Some(member) = members.into_iter().find(|m| m.hostname == name) else {
            return Ok(());
        };
        let r = client.etcd_remove_member_by_id(member.id).await;
        match self.checked(at, r) {
            Ok(()) => Ok(()),
            // Removed meanwhile (by an earlier, interrupted run): what was asked for holds.
            Err(e) if e.code() == Some(Code::NotFound) => Ok(()),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn upgrade(&self, at: SocketAddr, image: &str) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client.upgrade(image).await;
        // The node reboots: this run's connection to it ends either way.
        self.connections().remove(&at);
        r.map(|_| ()).map_err(port_error)
    }
}
