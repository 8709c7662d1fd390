//! Integration tests of homelab-flux: the generated tree against the real `kubectl kustomize`, the
//! Kubernetes 1.35 and Flux/Kyverno schemas, and `kubernetes-validate`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod add_component;
mod fake_cluster;
mod ops;
mod schemas;
mod sim;
mod support;
mod tree;
