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
    /// Talos secrets bundle and machine configuration.
    Talos(crate::commands::talos::TalosArgs),
}
