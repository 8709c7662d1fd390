//! The few Kubernetes API calls homelabctl needs, without kube-rs: read a kubeconfig (client
//! certificate or token), check the API server's version and readiness, list nodes with their
//! Ready condition, create or update a Secret idempotently, create-or-replace an arbitrary
//! object, read an object's status conditions, and read the pods of a label selector and a
//! DaemonSet's images (what a Kubernetes upgrade watches), and cordon, drain (Eviction honouring
//! PodDisruptionBudgets) and Node deletion (what removing a node does).
//!
//! TLS always verifies the server against the kubeconfig's CA (rustls with ring); an
//! `insecure-skip-tls-verify` kubeconfig is refused. There are no watches, no exec credential
//! plugins, no server-side apply field ownership and no retries beyond resourceVersion conflicts.
//!
//! ```no_run
//! # async fn demo(kubeconfig: &str) -> Result<(), homelab_kube::KubeError> {
//! use homelab_kube::{KubeClient, SecretData};
//! let client = KubeClient::from_kubeconfig_yaml(kubeconfig)?;
//! let ready = client.nodes().await?.iter().all(|n| n.ready);
//! let mut data = SecretData::new();
//! data.insert("age.agekey".into(), zeroize::Zeroizing::new(b"AGE-SECRET-KEY-...".to_vec()));
//! client.ensure_namespace("flux-system").await?;
//! client.upsert_secret("flux-system", "sops-age", "Opaque", &data).await?;
//! # let _ = ready; Ok(()) }
//! ```

mod client;
mod drain;
mod error;
mod kubeconfig;
mod workloads;

pub use client::{Applied, Condition, KubeClient, NodeInfo, SecretData, ServerVersion};
pub use drain::{DrainOptions, DrainReport};
pub use error::{KubeError, StuckPod};
pub use kubeconfig::{Credentials, Kubeconfig};
pub use workloads::PodInfo;
