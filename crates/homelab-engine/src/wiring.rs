//! Builds the real adapters for a repository: the Proxmox client with the configured TLS trust and the token
//! secret, the Image Factory client, Talos credentials minted from the secrets bundle, and the renderer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use homelab_config::{Config, TlsTrust as ConfigTrust};
use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust, WaitOptions};
use homelab_talos::secrets::SecretsBundle;
use secrecy::SecretString;

use crate::adapters::{factory::Factory, kube::Kube, proxmox::Proxmox, talos::Talos};
use crate::events::EventSink;
use crate::flow::{Engine, Timeouts};
use crate::talos_render::TalosRenderer;

/// Everything `plan`, `apply`, `destroy` and `status` talk through.
pub struct Wired {
    pub config: Config,
    pub state_dir: PathBuf,
    pub proxmox: Proxmox,
    pub factory: Factory,
    pub talos: Talos,
    pub kube: Kube,
    pub renderer: TalosRenderer,
    pub timeouts: Timeouts,
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct WiringError {
    pub what: &'static str,
    pub message: String,
}

fn trust(config: &Config, base_dir: &Path) -> Result<TlsTrust, WiringError> {
    Ok(match config.proxmox.tls.trust() {
        ConfigTrust::SystemRoots => TlsTrust::SystemRoots,
        ConfigTrust::CaFile(path) => TlsTrust::CaFile(base_dir.join(path)),
        ConfigTrust::Fingerprint(fp) => {
            TlsTrust::Fingerprint(Fingerprint::parse(&fp).map_err(|e| WiringError {
                what: "proxmox.tls.fingerprint",
                message: e.to_string(),
            })?)
        }
        ConfigTrust::Insecure => TlsTrust::Insecure,
    })
}

/// The Proxmox adapter for `config`, trusting the server as homelab.yaml says.
pub fn proxmox(
    config: &Config,
    base_dir: &Path,
    token_secret: SecretString,
    events: &EventSink,
) -> Result<Proxmox, WiringError> {
    let token =
        ApiToken::new(config.proxmox.token_id.clone(), token_secret).map_err(|e| WiringError {
            what: "proxmox.token_id",
            message: e.to_string(),
        })?;
    let mut options = ClientOptions::new(config.proxmox.endpoint.clone(), token);
    options.trust = trust(config, base_dir)?;
    let sink = events.clone();
    let client = Client::new(options)
        .map_err(|e| WiringError {
            what: "Proxmox client",
            message: e.to_string(),
        })?
        .with_events(move |e| {
            if let homelab_proxmox::ClientEvent::Warning { message } = e {
                sink.warn("proxmox", message.clone());
            }
        });
    Ok(Proxmox {
        client,
        wait: WaitOptions {
            timeout: Duration::from_secs(600),
            ..WaitOptions::default()
        },
    })
}

/// Whether any VM of the cluster exists (so a missing secrets bundle must not be regenerated). One status
/// read per node; the VM's config is the plan's business.
pub async fn cluster_exists(
    proxmox: &Proxmox,
    config: &Config,
) -> Result<bool, crate::ports::PortError> {
    for node in &config.nodes {
        let exists = proxmox
            .client
            .vm_exists(&node.proxmox_node, node.vm_id)
            .await
            .map_err(crate::adapters::proxmox::port_error)?;
        if exists {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Wired {
    /// Wires a repository whose homelab.yaml is in `base_dir`, with `.homelab/` beside it.
    pub fn new(
        config: Config,
        base_dir: &Path,
        proxmox: Proxmox,
        bundle: SecretsBundle,
    ) -> Result<Self, WiringError> {
        let factory = Factory::new(&config).map_err(|e| WiringError {
            what: "image.factory",
            message: e.message,
        })?;
        let talos = Talos::from_bundle(&bundle).map_err(|e| WiringError {
            what: "Talos credentials",
            message: e.message,
        })?;
        Ok(Self {
            proxmox,
            factory,
            talos,
            kube: Kube::default(),
            renderer: TalosRenderer {
                bundle,
                base_dir: base_dir.to_path_buf(),
            },
            state_dir: base_dir.join(".homelab"),
            timeouts: Timeouts::default(),
            config,
        })
    }

    pub fn engine(&self, events: EventSink) -> Engine<'_, Proxmox, Factory, Talos, Kube> {
        Engine {
            config: &self.config,
            hypervisor: &self.proxmox,
            factory: &self.factory,
            talos: &self.talos,
            kube: &self.kube,
            renderer: &self.renderer,
            state_dir: self.state_dir.clone(),
            events,
            timeouts: self.timeouts,
        }
    }
}
