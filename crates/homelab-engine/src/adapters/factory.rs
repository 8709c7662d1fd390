//! [`ImageFactory`] over the Talos Image Factory client, for one Talos version, platform and SecureBoot choice.
//! A schematic's id is content-addressed, so each set of extensions is registered once per run. Before the
//! first registration the factory's version list is read once: a Talos version it does not offer is a
//! permanent "not found" that names the version, not a 404 from Proxmox's download task much later.

use std::collections::HashMap;
use std::sync::Mutex;

use homelab_config::Config;
use homelab_talos::factory::{FactoryClient, FactoryError, Schematic};

use crate::ports::{ErrorKind, ImageFactory, PortError, PortResult};

pub struct Factory {
    client: FactoryClient,
    version: String,
    platform: String,
    secureboot: bool,
    /// Schematic ids registered in this run, by extension list.
    schematics: Mutex<HashMap<Vec<String>, String>>,
    /// Whether the factory was seen to offer `version` in this run.
    version_offered: Mutex<bool>,
}

impl Factory {
    pub fn new(config: &Config) -> Result<Self, PortError> {
        let client = FactoryClient::new(&config.image.factory)
            .map_err(|e| PortError::new(ErrorKind::Invalid, e.to_string()))?;
        Ok(Self {
            client,
            version: config.image.talos_version.with_v(),
            platform: config.image.platform.as_str().to_string(),
            secureboot: config.image.secureboot,
            schematics: Mutex::new(HashMap::new()),
            version_offered: Mutex::new(false),
        })
    }

    /// Fails with [`ErrorKind::NotFound`] naming the version when the factory does not offer it.
    async fn ensure_version_offered(&self) -> PortResult<()> {
        if *lock(&self.version_offered) {
            return Ok(());
        }
        let versions = self.client.versions().await.map_err(port_error)?;
        if !versions.contains(&self.version) {
            let recent: Vec<&str> = versions
                .iter()
                .rev()
                .take(5)
                .rev()
                .map(String::as_str)
                .collect();
            return Err(PortError::new(
                ErrorKind::NotFound,
                format!(
                    "Talos {} does not exist on the Image Factory at {} (image.talos_version in homelab.yaml); \
                     it offers {} versions, the newest: {}",
                    self.version,
                    self.client.base_url(),
                    versions.len(),
                    recent.join(", ")
                ),
            ));
        }
        *lock(&self.version_offered) = true;
        Ok(())
    }

    fn registered(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, String>> {
        lock(&self.schematics)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn port_error(e: FactoryError) -> PortError {
    let kind = match &e {
        FactoryError::Network { .. } => ErrorKind::Transient,
        FactoryError::Status { status, .. } => match *status {
            429 | 500.. => ErrorKind::Transient,
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            400..=499 => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        },
        FactoryError::UnknownVersion { .. } => ErrorKind::NotFound,
        FactoryError::Url { .. }
        | FactoryError::UnknownExtensions { .. }
        | FactoryError::Schematic(_) => ErrorKind::Invalid,
        FactoryError::Decode { .. } => ErrorKind::Other,
    };
    PortError::new(kind, e.to_string())
}

impl ImageFactory for Factory {
    async fn schematic(&self, extensions: &[String]) -> PortResult<String> {
        if let Some(id) = self.registered().get(extensions) {
            return Ok(id.clone());
        }
        self.ensure_version_offered().await?;
        let id = self
            .client
            .create_schematic(&Schematic::with_extensions(extensions.iter().cloned()))
            .await
            .map_err(port_error)?;
        self.registered().insert(extensions.to_vec(), id.clone());
        Ok(id)
    }

    fn iso_url(&self, schematic: &str) -> String {
        self.client
            .iso_url(schematic, &self.version, &self.platform, self.secureboot)
    }

    fn installer_image(&self, schematic: &str) -> String {
        self.client
            .installer_image(schematic, &self.version, &self.platform, self.secureboot)
    }
}
