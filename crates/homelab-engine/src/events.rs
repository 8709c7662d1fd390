//! Typed progress events the engine emits while it plans and converges; the binary renders them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Something the engine wants the operator to know, as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A resource's step begins (`vm.talos-cp-01`, "create").
    StepStarted { resource: String, action: String },
    /// A wait is in progress: what for, how long so far, and the limit.
    Waiting {
        resource: String,
        what: String,
        #[serde(with = "secs")]
        elapsed: Duration,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// A notable fact along the way (which address was used, a retried fault, …).
    Info { resource: String, message: String },
    /// Something the operator should look at, which did not stop the run.
    Warning { resource: String, message: String },
    /// A step finished.
    StepFinished {
        resource: String,
        action: String,
        #[serde(with = "secs")]
        elapsed: Duration,
    },
}

mod secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

/// Where events go. Cheap to clone; callable from any task.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(&Event) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A sink that drops everything (tests, quiet runs).
    pub fn discard() -> Self {
        Self::new(|_| {})
    }

    pub fn emit(&self, event: Event) {
        (self.0)(&event);
    }

    pub fn info(&self, resource: &str, message: impl Into<String>) {
        self.emit(Event::Info {
            resource: resource.to_string(),
            message: message.into(),
        });
    }

    pub fn warn(&self, resource: &str, message: impl Into<String>) {
        self.emit(Event::Warning {
            resource: resource.to_string(),
            message: message.into(),
        });
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}
