//! Talos side of the simulator: per VM an apid that starts in maintenance mode, validates the
//! applied config against the official schema, "reboots" onto the static address with mutual
//! TLS from the config's OS CA, and bootstraps a Kubernetes API simulator; then day 2: upgrades with
//! A/B rollback, etcd snapshots and recovery, membership changes; the running machine config over COSI.

mod cluster;
mod config;
mod cosi;
mod day2;
mod flap;
mod kubernetes;
mod node;
mod schema;
mod service;

pub use cluster::{ClusterHealth, ClusterRegistry, TrustdRoute};
pub use config::{LinkAlias, MachineType, NodeConfig};
pub use flap::ApidFlapping;
pub use kubernetes::ConfigImages;
pub use node::{EtcdVersion, NodeError, NodeOptions, NodePhase, NodeSim, NodeSnapshot};
pub use schema::{ConfigSchema, DEFAULT_TALOS_VERSION, Documents, SchemaError};
