//! The double's timestamp oracle: wall-clock milliseconds (plus an offset tests can advance, so
//! lock TTLs pass without waiting) and an 18-bit logical counter; strictly increasing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mvcc::LOGICAL_BITS;

const MAX_LOGICAL: u64 = 1 << LOGICAL_BITS;

#[derive(Debug, Default)]
pub struct Tso {
    /// (physical ms, last logical handed out).
    last: Mutex<(u64, u64)>,
    offset_ms: AtomicU64,
}

impl Tso {
    /// Move the clock forward (never back: the TSO stays monotonic anyway).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Reserve `count` (≥ 1, < 2^18) timestamps; returns (physical, the largest logical), as PD does.
    pub fn next(&self, count: u32) -> (u64, u64) {
        let count = u64::from(count.max(1)).min(MAX_LOGICAL - 1);
        let now = wall_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed));
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut physical, mut first) = if now > last.0 {
            (now, 0)
        } else {
            (last.0, last.1 + 1)
        };
        if first + count > MAX_LOGICAL {
            physical += 1;
            first = 0;
        }
        let largest = first + count - 1;
        *last = (physical, largest);
        (physical, largest)
    }

    /// One timestamp as a version (`physical << 18 | logical`).
    pub fn next_version(&self) -> u64 {
        let (physical, logical) = self.next(1);
        physical << LOGICAL_BITS | logical
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_strictly_increase_and_batches_are_ranges() {
        let tso = Tso::default();
        let mut prev = 0;
        for count in [1, 5, 64, 1, 3] {
            let (physical, largest) = tso.next(count);
            let first = (physical << LOGICAL_BITS) | (largest + 1 - u64::from(count));
            assert!(first > prev);
            prev = (physical << LOGICAL_BITS) | largest;
        }
        tso.advance(Duration::from_secs(10));
        assert!(tso.next_version() >> LOGICAL_BITS >= (prev >> LOGICAL_BITS) + 10_000);
    }
}
