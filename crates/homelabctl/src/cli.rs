//! Command-line definitions (clap). Only argument shapes live here; behaviour lives in `commands/`.

use clap::{Parser, Subcommand};

/// Provision and operate a TalosOS Kubernetes homelab on Proxmox VE from one declarative `homelab.yaml`.
#[derive(Debug, Parser)]
#[command(name = "homelabctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the kustomize build of a directory, byte for byte as `kustomize build` would.
    Build(crate::commands::build::BuildArgs),
}
