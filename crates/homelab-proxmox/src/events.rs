//! Events the client reports instead of printing: warnings (insecure TLS), retries, task and wait progress.

use std::sync::Arc;
use std::time::Duration;

/// Something the caller may want to show or log.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// A condition the user should know about (e.g. TLS verification is off).
    Warning { message: String },
    /// A request failed transiently and is sent again after `delay`.
    Retrying {
        method: String,
        path: String,
        attempt: u32,
        of: u32,
        delay: Duration,
        reason: String,
    },
    /// A task is still running.
    TaskProgress {
        upid: String,
        kind: String,
        elapsed: Duration,
        timeout: Duration,
    },
    /// A task ended (successfully or not).
    TaskFinished {
        upid: String,
        kind: String,
        exitstatus: String,
        elapsed: Duration,
    },
    /// Waiting for something other than a task (a lock, the guest agent).
    Waiting {
        what: String,
        elapsed: Duration,
        timeout: Duration,
        last: String,
    },
}

/// Where events go; no sink means they are dropped.
#[derive(Clone, Default)]
pub struct EventSink(pub(crate) Option<SinkFn>);

/// The callback behind an [`EventSink`].
pub type SinkFn = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

impl EventSink {
    /// A sink that drops everything.
    pub fn none() -> Self {
        EventSink(None)
    }

    pub(crate) fn emit(&self, event: &ClientEvent) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }
}
