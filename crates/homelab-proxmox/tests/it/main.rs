//! Client ↔ simulator tests over real sockets on loopback.

mod doctor;
mod errors;
mod flow;
mod locks;
mod retry;
mod schema;
mod support;
mod tls;
