//! The engine's flow against an in-memory world: convergence, idempotence, drift, kill-and-resume at every
//! step boundary, refusals. (Flows against the real simulators over sockets live in the binary's tests.)

mod fake;
mod flow;
mod lab;
mod lab_drift;
mod lab_faults;
mod lab_ha;
mod lab_k8s;
mod lab_proxmox;
mod lab_restore;
mod lab_talos;
mod render;
