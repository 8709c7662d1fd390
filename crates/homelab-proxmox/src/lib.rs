//! A typed async client for the Proxmox VE API: the calls homelabctl's provisioning flow needs (version, nodes,
//! node network, storages and their content, download-url, next VMID, QEMU create/config/status/power/delete,
//! guest-agent interfaces, tasks, permissions), API-token auth, TLS trust by system roots, a CA file or a
//! SHA-256 fingerprint pin, task waiting with backoff and timeouts, and bounded retries of transient faults.
//!
//! It does not know Talos or Kubernetes (a VM is a [`VmSpec`]), it does not read `homelab.yaml` or secrets
//! files, and it never prints: warnings, retries and progress are [`ClientEvent`]s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), homelab_proxmox::Error> {
//! use homelab_proxmox::{ApiToken, Client, ClientOptions, Fingerprint, TlsTrust};
//! let token = ApiToken::new("homelab@pve!homelabctl", "uuid-secret".to_string().into())?;
//! let mut opts = ClientOptions::new("https://pve.example:8006", token);
//! opts.trust = TlsTrust::Fingerprint(Fingerprint::parse(
//!     "3A:4F:0C:52:9B:71:D8:E6:11:2C:8B:5D:94:60:AF:37:C2:08:1E:6B:D5:99:43:7A:E0:24:BB:1F:68:C3:52:90",
//! )?);
//! let client = Client::new(opts)?.with_events(|e| eprintln!("{e:?}"));
//! let v = client.version().await?;
//! println!("PVE {}", v.version);
//! # Ok(()) }
//! ```

mod agent;
mod auth;
mod client;
mod cluster;
pub mod decode;
pub mod doctor;
mod error;
mod events;
mod qemu;
mod storage;
mod task;
mod tls;
mod types;
mod vmspec;

pub use agent::AgentWait;
pub use auth::ApiToken;
pub use client::{Client, ClientOptions, RetryPolicy};
pub use error::{Error, ErrorKind, Result};
pub use events::{ClientEvent, EventSink};
pub use qemu::Created;
pub use storage::{DownloadOutcome, DownloadRequest};
pub use task::{TaskOutcome, Upid, WaitOptions};
pub use tls::{Fingerprint, INSECURE_WARNING, TlsTrust};
pub use types::{
    GuestInterface, GuestIpAddress, LockHolder, NetworkInterface, NodeInfo, Permissions,
    StorageInfo, StorageVolume, TaskListEntry, TaskLogLine, TaskStatus, Version, VmConfig,
    VmListEntry, VmStatus, ipv4_for_mac,
};
pub use vmspec::{Bios, Cdrom, CloudInit, Disk, EfiDisk, Nic, TpmState, VmSpec};
