//! Fault injection for apid: flapping. For a while after the node is created, apid goes through regular
//! outages: a connection that arrives during one is closed at once, and a connection that lives through the
//! start of one is cut (reads and writes fail with a reset), as when apid restarts while a node settles.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A flapping apid: cycles of `up` (serving) then `down` (refusing and dropping), for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApidFlapping {
    /// How long the flapping lasts, from the node's creation (its VM's first boot).
    pub duration: Duration,
    /// How long apid serves in each cycle.
    pub up: Duration,
    /// How long each outage lasts.
    pub down: Duration,
}

/// The flapping clock of one node, and how many connections it closed or cut.
#[derive(Debug)]
pub(crate) struct Flapper {
    plan: ApidFlapping,
    since: Instant,
    drops: AtomicU64,
}

impl Flapper {
    pub(crate) fn new(plan: ApidFlapping) -> Self {
        Self {
            plan,
            since: Instant::now(),
            drops: AtomicU64::new(0),
        }
    }

    fn cycle(&self) -> Duration {
        (self.plan.up + self.plan.down).max(Duration::from_millis(1))
    }

    /// Outages begun by `t` (time since creation), counting only those that begin within the duration.
    fn outages_begun(&self, t: Duration) -> u128 {
        let last = t.min(self.plan.duration.saturating_sub(Duration::from_nanos(1)));
        match last.checked_sub(self.plan.up) {
            Some(after_first) => after_first.as_nanos() / self.cycle().as_nanos() + 1,
            None => 0,
        }
    }

    fn in_outage(&self, t: Duration) -> bool {
        t < self.plan.duration && t.as_nanos() % self.cycle().as_nanos() >= self.plan.up.as_nanos()
    }

    /// Whether a new connection is refused now (counted as a drop when it is).
    pub(crate) fn refuses_now(&self) -> bool {
        let refused = self.in_outage(self.since.elapsed());
        if refused {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    /// Whether a connection accepted at `opened` must be cut now.
    fn cuts(&self, opened: Instant) -> bool {
        let now = self.since.elapsed();
        let then = opened.saturating_duration_since(self.since);
        self.in_outage(now) || self.outages_begun(now) > self.outages_begun(then)
    }

    pub(crate) fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

/// A server-side stream that a [`Flapper`] may cut; without one it only passes bytes through.
#[derive(Debug)]
pub(crate) struct FlakyStream<T> {
    inner: T,
    opened: Instant,
    flapper: Option<Arc<Flapper>>,
    cut: AtomicBool,
}

impl<T> FlakyStream<T> {
    pub(crate) fn new(inner: T, flapper: Option<Arc<Flapper>>) -> Self {
        Self {
            inner,
            opened: Instant::now(),
            flapper,
            cut: AtomicBool::new(false),
        }
    }

    fn check(&self) -> io::Result<()> {
        let Some(flapper) = &self.flapper else {
            return Ok(());
        };
        if self.cut.load(Ordering::Relaxed) || flapper.cuts(self.opened) {
            if !self.cut.swap(true, Ordering::Relaxed) {
                flapper.drops.fetch_add(1, Ordering::Relaxed);
            }
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "apid restarted (injected flapping)",
            ));
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FlakyStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FlakyStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for FlakyStream<tokio::net::TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flapper() -> Flapper {
        Flapper::new(ApidFlapping {
            duration: Duration::from_millis(1000),
            up: Duration::from_millis(150),
            down: Duration::from_millis(100),
        })
    }

    #[test]
    fn outages_repeat_each_cycle_and_stop_after_the_duration() {
        let f = flapper();
        let ms = Duration::from_millis;
        assert!(!f.in_outage(ms(0)));
        assert!(!f.in_outage(ms(149)));
        assert!(f.in_outage(ms(150)));
        assert!(f.in_outage(ms(249)));
        assert!(!f.in_outage(ms(250)));
        assert!(f.in_outage(ms(400)));
        assert!(!f.in_outage(ms(1150)), "flapping ends after the duration");
        assert_eq!(f.outages_begun(ms(100)), 0);
        assert_eq!(f.outages_begun(ms(150)), 1);
        assert_eq!(f.outages_begun(ms(399)), 1);
        assert_eq!(f.outages_begun(ms(400)), 2);
        assert_eq!(
            f.outages_begun(ms(5000)),
            4,
            "outages at 150, 400, 650, 900 ms"
        );
    }
}
