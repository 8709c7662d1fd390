//! Request counters: how many requests a simulator served, per endpoint (`GET /nodes/{node}/qemu/{vmid}/…`,
//! `/machine.MachineService/Version`, `GET /api/v1/nodes/NAME`), for the API-call benchmark and tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared counters; clones count into the same table.
#[derive(Debug, Clone, Default)]
pub struct RequestCounts(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestCounts {
    /// Counts one request of `endpoint`.
    pub fn record(&self, endpoint: &str) {
        let mut table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *table.entry(endpoint.to_string()).or_insert(0) += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests of `endpoint` were served.
    pub fn get(&self, endpoint: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

/// `after - before`, per endpoint, leaving out endpoints with no new requests.
pub fn difference(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_into_one_table_and_differences_leave_out_quiet_endpoints() {
        let counts = RequestCounts::default();
        counts.record("GET /version");
        let before = counts.snapshot();
        let clone = counts.clone();
        clone.record("GET /version");
        clone.record("POST /nodes");
        assert_eq!(counts.get("GET /version"), 2);
        let diff = difference(&before, &counts.snapshot());
        assert_eq!(
            diff.into_iter().collect::<Vec<_>>(),
            vec![
                ("GET /version".to_string(), 1),
                ("POST /nodes".to_string(), 1)
            ]
        );
    }
}
