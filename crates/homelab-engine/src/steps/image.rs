//! The image step: the Talos ISO of homelab.yaml's version, platform and schematic in Proxmox storage. It
//! registers the schematic with the Image Factory, diffs by the ISO's file name (which carries version,
//! platform, SecureBoot and schematic), and downloads the ISO when it is missing.

use crate::desired::{self, ImageWanted};
use crate::flow::{Engine, EngineError, Run};
use crate::plan::{Action, FieldChange, ResourceChange, Step};
use crate::ports::{Hypervisor, ImageFactory, KubeApi, TalosApi};

/// The Talos image as observed: its schematic, the ISO's file and volume, and whether Proxmox has it.
pub(crate) struct ImageFacts {
    pub(crate) schematic: String,
    pub(crate) file: String,
    pub(crate) volume: String,
    pub(crate) present: bool,
    /// The ISO copies not there yet (one per host, or one for a shared storage).
    pub(crate) missing: Vec<crate::placement::IsoTarget>,
}

impl<H: Hypervisor, F: ImageFactory, T: TalosApi, K: KubeApi> Engine<'_, H, F, T, K> {
    pub(crate) async fn image_facts(&self) -> Result<ImageFacts, EngineError> {
        let wanted = ImageWanted::from_config(self.config);
        let schematic = self
            .retried("image", "register the schematic", || {
                self.factory.schematic(&wanted.extensions)
            })
            .await?;
        let file = desired::iso_file_name(self.config, &schematic);
        // Every host that boots a node needs the ISO on its own storage, unless that storage is shared.
        let targets = self
            .retried("image", "look up the ISO storage of each host", || {
                crate::placement::iso_targets(self.config, self.hypervisor)
            })
            .await?;
        let mut missing = Vec::new();
        for target in targets {
            let there = self
                .retried("image", "list ISO storage", || {
                    self.hypervisor
                        .iso_exists(&target.proxmox_node, &target.storage, &file)
                })
                .await?;
            if !there {
                missing.push(target);
            }
        }
        Ok(ImageFacts {
            volume: format!("{}:iso/{file}", wanted.storage),
            schematic,
            file,
            present: missing.is_empty(),
            missing,
        })
    }

    /// The image step's diff: create (download) the ISO unless Proxmox has it. It relies on the schematic.
    pub(crate) fn image_change(&self, image: &ImageFacts) -> Step {
        let mut change = ResourceChange::new(
            "image",
            if image.present {
                Action::NoChange
            } else {
                Action::Create
            },
        );
        if !image.present {
            change
                .fields
                .push(FieldChange::new("iso", None, Some(image.volume.clone())));
            change.fields.push(FieldChange::new(
                "url",
                None,
                Some(self.factory.iso_url(&image.schematic)),
            ));
            let hosts: Vec<&str> = image
                .missing
                .iter()
                .map(|t| t.proxmox_node.as_str())
                .collect();
            change
                .fields
                .push(FieldChange::new("hosts", None, Some(hosts.join(", "))));
        }
        change.requires("schematic", image.schematic.clone())
    }

    /// The image step: downloads the ISO unless it is there now (an earlier run may have finished it).
    /// A schematic other than the planned one stops apply: every later step was planned with it.
    pub(crate) async fn apply_image(
        &self,
        planned: &Step,
        run: &mut Run<'_>,
    ) -> Result<(), EngineError> {
        let image = self.ensure_image(planned).await?;
        run.image = Some(image);
        Ok(())
    }

    async fn ensure_image(&self, planned: &Step) -> Result<ImageFacts, EngineError> {
        let image = self.image_facts().await?;
        if let Some(what) = planned.changed_since(&self.image_change(&image)) {
            return Err(EngineError::Stale {
                resource: "image".into(),
                message: what,
            });
        }
        if image.present {
            return Ok(image);
        }
        let since = self.started("image", "download");
        let url = self.factory.iso_url(&image.schematic);
        for wanted in &image.missing {
            self.events.info(
                "image",
                format!(
                    "downloading {url} into {} on {}",
                    image.volume, wanted.proxmox_node
                ),
            );
            let attempts = std::sync::atomic::AtomicU32::new(0);
            self.retried("image", "download the ISO", || async {
                // A retried download first checks whether an earlier attempt already finished (the first
                // attempt follows the listing above that found no ISO).
                let retried = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0;
                if retried
                    && self
                        .hypervisor
                        .iso_exists(&wanted.proxmox_node, &wanted.storage, &image.file)
                        .await?
                {
                    return Ok(());
                }
                self.hypervisor
                    .download_iso(&wanted.proxmox_node, &wanted.storage, &image.file, &url)
                    .await
            })
            .await?;
        }
        self.finished("image", "download", since);
        Ok(ImageFacts {
            present: true,
            missing: Vec::new(),
            ..image
        })
    }
}
