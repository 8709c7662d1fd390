//! [`TalosApi`] over the apid client: maintenance mode without a client certificate, installed mode with the
//! talosconfig's os:admin certificate minted from the cluster's secrets bundle. Installed-mode connections
//! are kept per address for the run (one mutual-TLS handshake per node, not per call) and dropped on error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use homelab_apid::{
    ApidClient, ApidError, ApplyMode, BootstrapRetry, ClientCredentials, ResetOptions,
};
use tonic::Code;

use crate::ports::{Bootstrapped, ErrorKind, PortError, PortResult, ServiceHealth, TalosApi};

pub struct Talos {
    pub credentials: ClientCredentials,
    /// How long a single probe may take before the node counts as not answering.
    pub probe_timeout: Duration,
    connections: Mutex<HashMap<SocketAddr, ApidClient>>,
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
        let mut client = ApidClient::connect_maintenance(at, None)
            .await
            .map_err(port_error)?;
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

    async fn bootstrap(&self, at: SocketAddr) -> PortResult<Bootstrapped> {
        let mut client = self.installed(at).await?;
        let retry = BootstrapRetry {
            attempts: 3,
            delay: Duration::from_secs(2),
        };
        let r = client.bootstrap_with_retry(retry).await;
        match self.checked(at, r).map_err(port_error)? {
            homelab_apid::Bootstrapped::Now => Ok(Bootstrapped::Now),
            homelab_apid::Bootstrapped::Already => Ok(Bootstrapped::Already),
        }
    }

    async fn etcd_members(&self, at: SocketAddr) -> PortResult<Vec<String>> {
        let mut client = self.installed(at).await?;
        let r = client.etcd_member_list().await;
        match self.checked(at, r) {
            Ok(members) => Ok(members.into_iter().map(|m| m.hostname).collect()),
            // Before bootstrap etcd is not running: no members yet.
            Err(e)
                if matches!(
                    e.code(),
                    Some(Code::FailedPrecondition | Code::Unavailable | Code::NotFound)
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
        let bytes = self.checked(at, r).map_err(port_error)?;
        Ok(bytes.to_vec())
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

    async fn reset(&self, at: SocketAddr) -> PortResult<()> {
        let mut client = self.installed(at).await?;
        let r = client.reset(&ResetOptions::default()).await;
        self.connections().remove(&at);
        r.map_err(port_error)
    }
}
