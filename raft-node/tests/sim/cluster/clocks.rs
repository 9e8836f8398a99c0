//! Per-node clocks: every node's clock runs at its own rate, drawn from the seed within a bound (the
//! drift the lease's margin must absorb). A node ticks, and reads `now`, by its own clock only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::rng::Rng;

use super::TICK_MS;

const PPM: u64 = 1_000_000;

pub struct Clocks {
    /// id → (rate in ppm of real time, local ms of its next tick).
    nodes: BTreeMap<u64, (u64, u64)>,
}

impl Clocks {
    /// Clocks for `ids`, each running at a rate in `[1 − max_drift, 1 + max_drift]`.
    pub fn new(ids: &[u64], max_drift_ppm: u64, rng: &mut Rng) -> Self {
        let nodes = ids
            .iter()
            .map(|&id| {
                let rate = PPM - max_drift_ppm + rng.below(2 * max_drift_ppm + 1);
                (id, (rate, TICK_MS))
            })
            .collect();
        Clocks { nodes }
    }

    /// Node `id`'s clock reading, in µs, at simulated time `ms`.
    fn local_micros(&self, id: u64, ms: u64) -> u64 {
        let rate = self.nodes.get(&id).map_or(PPM, |n| n.0);
        ms * rate / 1_000
    }

    /// Node `id`'s clock at simulated time `ms`, as an `Instant` offset from `base`.
    pub fn instant(&self, id: u64, ms: u64, base: Instant) -> Instant {
        base + Duration::from_micros(self.local_micros(id, ms))
    }

    /// If node `id`'s clock passed its next tick by simulated time `ms`, the instant to tick with.
    pub fn tick_due(&mut self, id: u64, ms: u64, base: Instant) -> Option<Instant> {
        let local_ms = self.local_micros(id, ms) / 1_000;
        let next = &mut self.nodes.get_mut(&id)?.1;
        if local_ms < *next {
            return None;
        }
        *next += TICK_MS;
        Some(self.instant(id, ms, base))
    }
}
