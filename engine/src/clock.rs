//! Time: the [`Clock`] the retention window reads (injected, so tests are deterministic), and
//! [`wall_micros`], the one wall-clock reading in microseconds that everything else should use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> u64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

/// Microseconds since the Unix epoch by the system's wall clock. Never panics: a clock set before 1970
/// reads 0, and a time past `u64::MAX` µs (the year 586,912) saturates at `u64::MAX`.
pub fn wall_micros() -> u64 {
    micros_since_epoch(SystemTime::now())
}

fn micros_since_epoch(t: SystemTime) -> u64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// The wall clock ([`wall_micros`]).
impl Clock for SystemClock {
    fn now_micros(&self) -> u64 {
        wall_micros()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(micros: u64) -> Self {
        ManualClock(AtomicU64::new(micros))
    }
    pub fn set(&self, micros: u64) {
        self.0.store(micros, Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wall_micros_counts_from_the_epoch_and_saturates() {
        assert_eq!(micros_since_epoch(UNIX_EPOCH), 0);
        assert_eq!(
            micros_since_epoch(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456)),
            1_700_000_000_123_456
        );
        // Before the epoch: 0, not a panic.
        if let Some(before) = UNIX_EPOCH.checked_sub(Duration::from_secs(1)) {
            assert_eq!(micros_since_epoch(before), 0);
        }
        // Past u64::MAX microseconds (where the platform can represent it): saturates.
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 1_000_000 + 1)) {
            assert_eq!(micros_since_epoch(far), u64::MAX);
        }
        // The live reading (and the system clock, which uses it) is after 2020-01-01.
        assert!(wall_micros() > 1_577_836_800_000_000);
        assert!(SystemClock.now_micros() > 1_577_836_800_000_000);
    }
}
