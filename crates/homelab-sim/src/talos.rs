//! Talos side of the simulator: per VM an apid that starts in maintenance mode, validates the
//! applied config against the official schema, "reboots" onto the static address with mutual
//! TLS from the config's OS CA, and bootstraps a Kubernetes API simulator.

mod cluster;
mod config;
mod flap;
mod node;
mod schema;
mod service;

pub use config::{MachineType, NodeConfig};
pub use flap::ApidFlapping;
pub use node::{EtcdVersion, NodeError, NodeOptions, NodePhase, NodeSim, NodeSnapshot};
pub use schema::{ConfigSchema, DEFAULT_TALOS_VERSION, Documents, SchemaError};
