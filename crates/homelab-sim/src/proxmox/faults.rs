//! Fault injection, deterministic from a seed: per-endpoint error rates and latency, dropped connections
//! (before or after the request took effect), failing tasks, and a guest agent that never answers.

use std::collections::BTreeMap;
use std::time::Duration;

/// What an injected endpoint fault looks like to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 500 "can't lock file '/var/lock/qemu-server/lock-N.conf' - got timeout" before any work.
    LockTimeout,
    /// 503 from the proxy, before any work.
    Unavailable,
    /// The connection is closed without an answer, before any work.
    DropBefore,
    /// The request is carried out, then the connection is closed without an answer.
    DropAfter,
}

/// A fault rule for one endpoint (`METHOD /path/{param}` as in the schema, or `*` for all).
#[derive(Debug, Clone)]
pub struct EndpointFault {
    pub endpoint: String,
    /// Probability 0.0–1.0 that a request fails.
    pub error_rate: f64,
    pub kind: FaultKind,
    /// Added to every request of the endpoint.
    pub latency: Duration,
    /// Fail at most this many requests (None = no limit).
    pub max_failures: Option<u32>,
}

impl EndpointFault {
    /// A rule failing `endpoint` with `kind` at `error_rate`.
    pub fn new(endpoint: &str, kind: FaultKind, error_rate: f64) -> Self {
        EndpointFault {
            endpoint: endpoint.to_string(),
            error_rate,
            kind,
            latency: Duration::ZERO,
            max_failures: None,
        }
    }
}

/// The whole fault plan.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub seed: u64,
    pub endpoints: Vec<EndpointFault>,
    /// Task types (`qmcreate`, `qmstart`, `download`, …) whose next task fails, with the error text.
    pub failing_tasks: BTreeMap<String, String>,
    /// The guest agent never answers (as with a Talos image without the qemu-guest-agent extension).
    pub agent_never_answers: bool,
    /// Extra time tasks of a type (`qmcreate`, …) take, holding the VM's config flock (a slow storage).
    pub slow_tasks: BTreeMap<String, Duration>,
    /// pveproxy answers requests for these endpoints (`METHOD /path/{param}`, `*` for all) with the
    /// AnyEvent::HTTP pseudo-status it passes on when forwarding to the node fails: 596 (TLS) or 599
    /// (timeout), once per entry and before any work.
    pub proxy_failures: Vec<(String, u16)>,
}

/// Decides faults; keeps per-endpoint counters so a run with the same seed and request order repeats.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub plan: Faults,
    counters: BTreeMap<String, u64>,
    failures: BTreeMap<usize, u32>,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub fault: Option<FaultKind>,
}

impl FaultState {
    pub fn new(plan: Faults) -> Self {
        FaultState {
            plan,
            counters: BTreeMap::new(),
            failures: BTreeMap::new(),
        }
    }

    pub fn decide(&mut self, endpoint: &str) -> Decision {
        let n = {
            let c = self.counters.entry(endpoint.to_string()).or_insert(0);
            *c += 1;
            *c
        };
        let mut d = Decision::default();
        for (i, rule) in self.plan.endpoints.iter().enumerate() {
            if rule.endpoint != "*" && rule.endpoint != endpoint {
                continue;
            }
            d.latency += rule.latency;
            if d.fault.is_some() {
                continue;
            }
            let used = self.failures.get(&i).copied().unwrap_or(0);
            if rule.max_failures.is_some_and(|m| used >= m) {
                continue;
            }
            if unit(self.plan.seed, endpoint, n, i) < rule.error_rate {
                d.fault = Some(rule.kind);
                self.failures.insert(i, used + 1);
            }
        }
        d
    }

    /// The error text if the next task of `kind` must fail (consumed).
    pub fn take_task_failure(&mut self, kind: &str) -> Option<String> {
        self.plan.failing_tasks.remove(kind)
    }

    /// The extra time a task of `kind` takes.
    pub fn slowdown(&self, kind: &str) -> Duration {
        self.plan.slow_tasks.get(kind).copied().unwrap_or_default()
    }

    /// The proxy pseudo-status the next request to `endpoint` gets, if any (consumed).
    pub fn take_proxy_failure(&mut self, endpoint: &str) -> Option<u16> {
        let i = self
            .plan
            .proxy_failures
            .iter()
            .position(|(e, _)| e == "*" || e == endpoint)?;
        Some(self.plan.proxy_failures.remove(i).1)
    }
}

/// A uniform number in [0, 1) from (seed, endpoint, request number, rule) — SplitMix64 over an FNV-1a hash.
fn unit(seed: u64, endpoint: &str, n: u64, rule: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut x = seed ^ h ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (rule as u64).rotate_left(32);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> Vec<bool> {
        let mut s = FaultState::new(Faults {
            seed,
            endpoints: vec![EndpointFault::new(
                "GET /version",
                FaultKind::Unavailable,
                0.5,
            )],
            ..Faults::default()
        });
        (0..64)
            .map(|_| s.decide("GET /version").fault.is_some())
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|b| **b).count();
        assert!((16..=48).contains(&hits), "rate 0.5 gave {hits}/64");
    }

    #[test]
    fn max_failures_bounds_a_rule() {
        let mut s = FaultState::new(Faults {
            seed: 1,
            endpoints: vec![EndpointFault {
                max_failures: Some(2),
                ..EndpointFault::new("*", FaultKind::LockTimeout, 1.0)
            }],
            ..Faults::default()
        });
        let hits = (0..10)
            .filter(|_| s.decide("GET /nodes").fault.is_some())
            .count();
        assert_eq!(hits, 2);
    }
}
