//! Fault injection for apid: flapping. For a while after the first client reaches the node, apid goes
//! through regular outages, as when apid restarts while a node settles: a connection that arrives during one
//! is closed at once, and every open connection is closed when one begins (idle or in the middle of a call).
//! The clock starts at the first connection, not at the VM's boot, so how long the client took to get there
//! (a loaded machine, a slow guest agent) never decides whether it meets the outages.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A flapping apid: cycles of `up` (serving) then `down` (refusing and dropping), for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApidFlapping {
    /// How long the flapping lasts, from the first connection apid receives.
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
    started: OnceLock<Instant>,
    drops: AtomicU64,
}

impl Flapper {
    pub(crate) fn new(plan: ApidFlapping) -> Self {
        Self {
            plan,
            started: OnceLock::new(),
            drops: AtomicU64::new(0),
        }
    }

    /// When the flapping began: the first time anyone asked, which is the first connection's accept.
    fn since(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    fn cycle(&self) -> Duration {
        (self.plan.up + self.plan.down).max(Duration::from_millis(1))
    }

    /// Outages begun by `t` (time since the first connection), counting only those that begin within the duration.
    fn outages_begun(&self, t: Duration) -> u128 {
        let last = t.min(self.plan.duration.saturating_sub(Duration::from_nanos(1)));
        match last.checked_sub(self.plan.up) {
            Some(after_first) => after_first.as_nanos() / self.cycle().as_nanos() + 1,
            None => 0,
        }
    }

    /// When the first outage after `t` (time since the first connection) begins, if one still does.
    fn next_outage(&self, t: Duration) -> Option<Instant> {
        let k = match t.checked_sub(self.plan.up) {
            Some(after_first) => after_first.as_nanos() / self.cycle().as_nanos() + 1,
            None => 0,
        };
        let start = self.plan.up.as_nanos() + k * self.cycle().as_nanos();
        let start = Duration::from_nanos(u64::try_from(start).ok()?);
        (start < self.plan.duration).then(|| self.since() + start)
    }

    fn in_outage(&self, t: Duration) -> bool {
        t < self.plan.duration && t.as_nanos() % self.cycle().as_nanos() >= self.plan.up.as_nanos()
    }

    /// Whether a new connection is refused now (counted as a drop when it is).
    pub(crate) fn refuses_now(&self) -> bool {
        let refused = self.in_outage(self.since().elapsed());
        if refused {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    /// Whether a connection accepted at `opened` must be cut now.
    fn cuts(&self, opened: Instant) -> bool {
        let since = self.since();
        let now = since.elapsed();
        let then = opened.saturating_duration_since(since);
        self.in_outage(now) || self.outages_begun(now) > self.outages_begun(then)
    }

    pub(crate) fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

/// A server-side stream that a [`Flapper`] closes when an outage begins; without one it only passes bytes
/// through.
#[derive(Debug)]
pub(crate) struct FlakyStream<T> {
    inner: T,
    opened: Instant,
    flapper: Option<Arc<Flapper>>,
    cut: bool,
    /// Fires when the next outage begins, so an idle connection is closed then too.
    outage: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> FlakyStream<T> {
    pub(crate) fn new(inner: T, flapper: Option<Arc<Flapper>>) -> Self {
        Self {
            inner,
            opened: Instant::now(),
            flapper,
            cut: false,
            outage: None,
        }
    }

    fn reset(&mut self) -> io::Error {
        if !self.cut {
            self.cut = true;
            if let Some(flapper) = &self.flapper {
                flapper.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        io::Error::new(
            io::ErrorKind::ConnectionReset,
            "apid restarted (injected flapping)",
        )
    }

    fn check(&mut self) -> io::Result<()> {
        let cuts = self.flapper.as_ref().is_some_and(|f| f.cuts(self.opened));
        if self.cut || cuts {
            return Err(self.reset());
        }
        Ok(())
    }

    /// While the connection waits for bytes: arms the timer of the next outage, and closes when it fires.
    fn watch_outage(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(flapper) = &self.flapper else {
            return Ok(());
        };
        if self.outage.is_none() {
            let Some(at) =
                flapper.next_outage(self.opened.saturating_duration_since(flapper.since()))
            else {
                return Ok(());
            };
            self.outage = Some(Box::pin(tokio::time::sleep_until(at.into())));
        }
        match self.outage.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Err(self.reset()),
            _ => Ok(()),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FlakyStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if read.is_pending() {
            this.watch_outage(cx)?;
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FlakyStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
        let at = |t: u64| f.next_outage(ms(t)).map(|i| (i - f.since()).as_millis());
        assert_eq!(at(0), Some(150));
        assert_eq!(at(150), Some(400), "the next one after an outage began");
        assert_eq!(at(399), Some(400));
        assert_eq!(at(900), None, "no outage begins after the duration");
    }
}
