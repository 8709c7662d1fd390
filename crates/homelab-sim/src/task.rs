//! Background server tasks that stop when their owner is dropped, and binding an address such a
//! server may still hold.

/// Aborts the task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds `addr`, retrying for up to a second while a server that was just stopped still holds it
/// (an aborted task releases its socket only when the runtime drops it, as a rebooting node's
/// old listener lingers for a moment).
pub(crate) async fn bind_again(
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 && tries < 100 =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            r => return r,
        }
    }
}
