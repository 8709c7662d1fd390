//! Client ↔ simulator tests over real sockets on loopback.

mod errors;
mod flow;
mod retry;
mod schema;
mod support;
mod tls;
