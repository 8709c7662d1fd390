//! Integration tests of the simulators over real loopback sockets.

mod proxmox;
