//! Keeps a lab's state directory current: a background task saves `lab.json` whenever the state changed
//! (looked at every 100 ms), and [`Saver::save`] does the same on demand (a clean stop). A killed lab loses at
//! most the last 100 ms.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::state::{LabState, StateError};

/// How often the background task looks for changes.
pub(crate) const SAVE_EVERY: Duration = Duration::from_millis(100);

/// Writes the state when it differs from what was written last.
pub(crate) struct Saver {
    dir: PathBuf,
    last: Mutex<Vec<u8>>,
}

impl Saver {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            last: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Saves `state` unless it is what was saved last; `Ok(true)` when it wrote.
    pub(crate) fn save(&self, state: &LabState) -> Result<bool, StateError> {
        let bytes = state.to_bytes(&self.dir)?;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == bytes {
            return Ok(false);
        }
        state.write(&self.dir, &bytes)?;
        *last = bytes;
        Ok(true)
    }
}
