//! homelab-kube against the Kubernetes simulator of homelab-sim, over loopback HTTPS with client
//! certificates from a generated cluster CA: the API calls, and draining and removing nodes.

mod cluster;
mod drain;
