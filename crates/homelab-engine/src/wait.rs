//! Waiting and retrying with a deadline, reporting progress as [`Event::Waiting`] so no wait is silent.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::events::{Event, EventSink};
use crate::ports::{ErrorKind, PortError, PortResult};

/// Polls `probe` until it yields `Some`, a permanent error, or `timeout` passes. Transient errors count as
/// "not yet". Emits a Waiting event before each poll after the first. The pause between polls starts at a
/// sixteenth of `interval` (at least 100 ms) and doubles up to `interval`: what is nearly ready is seen
/// soon, what takes minutes is not polled more often than `interval`.
pub async fn until<T, F, Fut>(
    events: &EventSink,
    resource: &str,
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<Option<T>>>,
{
    let start = Instant::now();
    let mut last_transient: Option<String> = None;
    let mut pause = (interval / 16)
        .max(Duration::from_millis(100))
        .min(interval);
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) if e.transient => last_transient = Some(e.message),
            Err(e) => return Err(e),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            let detail = last_transient
                .map(|m| format!(" (last error: {m})"))
                .unwrap_or_default();
            return Err(PortError::new(
                ErrorKind::Timeout,
                format!(
                    "timed out after {}s waiting for {what}{detail}",
                    timeout.as_secs()
                ),
            ));
        }
        events.emit(Event::Waiting {
            resource: resource.to_string(),
            what: what.to_string(),
            elapsed,
            timeout,
        });
        tokio::time::sleep(pause.min(timeout.saturating_sub(elapsed))).await;
        pause = (pause * 2).min(interval);
    }
}

/// Runs `op` again on transient errors, with exponential backoff, at most `attempts` times.
pub async fn retry<T, F, Fut>(
    events: &EventSink,
    resource: &str,
    what: &str,
    attempts: u32,
    base: Duration,
    mut op: F,
) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<T>>,
{
    let mut delay = base;
    for attempt in 1.. {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.transient && attempt < attempts => {
                events.info(
                    resource,
                    format!("{what}: {} — retrying ({attempt}/{attempts})", e.message),
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
    Err(PortError::permanent(format!("{what}: no attempt was made")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn until_reports_progress_and_times_out_with_the_last_error() {
        let seen = Arc::new(AtomicU32::new(0));
        let counter = seen.clone();
        let events = EventSink::new(move |e| {
            if matches!(e, Event::Waiting { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let result: PortResult<()> = until(
            &events,
            "vm",
            "the agent",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Err(PortError::transient("agent not running")) },
        )
        .await;
        let err = result.expect_err("times out");
        assert!(
            err.message.contains("timed out") && err.message.contains("agent not running"),
            "{}",
            err.message
        );
        assert!(seen.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn until_polls_soon_at_first_then_backs_off_to_the_interval() {
        let probes = AtomicU32::new(0);
        let result: PortResult<()> = until(
            &EventSink::discard(),
            "machine_config",
            "Talos to install",
            Duration::from_millis(1000),
            Duration::from_millis(1600),
            || async {
                probes.fetch_add(1, Ordering::SeqCst);
                Ok(None)
            },
        )
        .await;
        assert!(result.is_err());
        // Pauses of 100, 200, 400 ms… fit several probes in the first second; a fixed 1.6 s interval fits 2.
        let n = probes.load(Ordering::SeqCst);
        assert!((3..=6).contains(&n), "{n} probes");
    }

    #[tokio::test]
    async fn retry_stops_on_permanent_errors_and_recovers_from_transient_ones() {
        let calls = AtomicU32::new(0);
        let value = retry(
            &EventSink::discard(),
            "vm",
            "create",
            5,
            Duration::from_millis(1),
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(PortError::transient("500"))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(value, Ok(7));
        let calls = AtomicU32::new(0);
        let failed: PortResult<()> = retry(
            &EventSink::discard(),
            "vm",
            "create",
            5,
            Duration::from_millis(1),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(PortError::permanent("400 bad parameter"))
            },
        )
        .await;
        assert!(failed.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
