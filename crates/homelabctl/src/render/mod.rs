//! Rendering for people and scripts: configuration diagnostics, plans and live engine events.

pub mod diagnostics;
pub mod events;
pub mod plan;

pub use diagnostics::{diagnostics_json, diagnostics_text, stderr_color};
