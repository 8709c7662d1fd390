//! Keeps a lab's state directory current: a node saves through it before it answers the call that changed
//! its disk (write-through: a lab killed right after has the change), a background task saves as soon as the
//! Proxmox simulator says it changed and looks for other changes (Kubernetes objects) every 50 ms, and
//! [`Saver::save`] does the same on demand (a clean stop). ISO bytes and etcd data are written only when they change, before the `lab.json`
//! that names them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::state::{LabState, StateError, write_etcd};
use crate::kube::StoreSnapshot;
use crate::talos::EtcdVersion;

/// How often the background task looks for changes.
pub(crate) const SAVE_EVERY: Duration = Duration::from_millis(50);

/// What was written last.
#[derive(Default)]
struct Written {
    lab_json: Vec<u8>,
    etcd: BTreeMap<u32, EtcdVersion>,
}

/// Writes the state when it differs from what was written last.
pub(crate) struct Saver {
    dir: PathBuf,
    last: Mutex<Written>,
}

impl Saver {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            last: Mutex::new(Written::default()),
        }
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Saves the state `capture` returns unless it is what was saved last; `etcd(vmid)` gives a node's etcd
    /// objects when they changed. `Ok(true)` when it wrote. The state is captured under the saver's lock, so
    /// of two saves at once (the background task and a node's write-through) the later capture is written
    /// last: an older state never lands over a newer one.
    pub(crate) fn save(
        &self,
        capture: impl FnOnce() -> LabState,
        etcd: impl Fn(u32) -> Option<StoreSnapshot>,
    ) -> Result<bool, StateError> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = capture();
        let bytes = state.to_bytes(&self.dir)?;
        if last.lab_json == bytes {
            return Ok(false);
        }
        state.write_blobs(&self.dir)?;
        // A node that is gone (its VM destroyed) forgets what was written for it: a new cluster on the same
        // VM id can reach the same (id, revision) and must still be written.
        last.etcd.retain(|vmid, _| {
            state
                .nodes
                .get(vmid)
                .is_some_and(|n| n.disk.as_ref().is_some_and(|d| d.etcd.is_some()))
        });
        for (vmid, node) in &state.nodes {
            let Some(version) = node.disk.as_ref().and_then(|d| d.etcd.as_ref()) else {
                continue;
            };
            if last.etcd.get(vmid) == Some(version) {
                continue;
            }
            let Some(data) = etcd(*vmid) else { continue };
            write_etcd(&self.dir, *vmid, &data)?;
            let written = EtcdVersion {
                id: data.id,
                revision: data.revision,
            };
            last.etcd.insert(*vmid, written);
        }
        LabState::write(&self.dir, &bytes)?;
        last.lab_json = bytes;
        Ok(true)
    }
}
