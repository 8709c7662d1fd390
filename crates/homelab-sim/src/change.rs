//! The hook a simulator calls when what it keeps on disk changed: a saver's way to be told, either by a
//! poke it acts on later or by saving before the call returns (write-through, so a simulator killed right
//! after it answered has the change on disk).

use std::sync::Arc;

/// Called, with no lock of the simulator held, whenever its durable state changed.
#[derive(Clone)]
pub struct ChangeHook(Arc<dyn Fn() + Send + Sync>);

impl ChangeHook {
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A hook that only pokes `notify` (whoever waits on it saves later).
    pub fn notify(notify: Arc<tokio::sync::Notify>) -> Self {
        Self::new(move || notify.notify_one())
    }

    /// Runs the hook.
    pub fn fire(&self) {
        (self.0)();
    }
}

impl std::fmt::Debug for ChangeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeHook")
    }
}
