//! [`ImageFactory`] over the Talos Image Factory client, for one Talos version, platform and SecureBoot choice.
//! A schematic's id is content-addressed, so each set of extensions is registered once per run.

use std::collections::HashMap;
use std::sync::Mutex;

use homelab_config::Config;
use homelab_talos::factory::{FactoryClient, FactoryError, Schematic};

use crate::ports::{ImageFactory, PortError, PortResult};

pub struct Factory {
    client: FactoryClient,
    version: String,
    platform: String,
    secureboot: bool,
    /// Schematic ids registered in this run, by extension list.
    schematics: Mutex<HashMap<Vec<String>, String>>,
}

impl Factory {
    pub fn new(config: &Config) -> Result<Self, PortError> {
        let client = FactoryClient::new(&config.image.factory)
            .map_err(|e| PortError::permanent(e.to_string()))?;
        Ok(Self {
            client,
            version: config.image.talos_version.with_v(),
            platform: config.image.platform.as_str().to_string(),
            secureboot: config.image.secureboot,
            schematics: Mutex::new(HashMap::new()),
        })
    }

    fn registered(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, String>> {
        self.schematics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn port_error(e: FactoryError) -> PortError {
    let transient = match &e {
        FactoryError::Network { .. } => true,
        FactoryError::Status { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    };
    PortError {
        message: e.to_string(),
        transient,
    }
}

impl ImageFactory for Factory {
    async fn schematic(&self, extensions: &[String]) -> PortResult<String> {
        if let Some(id) = self.registered().get(extensions) {
            return Ok(id.clone());
        }
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
