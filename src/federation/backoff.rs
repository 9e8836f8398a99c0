//! Backoff above tikv-client's own retries: capped exponential delays with full jitter, and a circuit
//! breaker that stops calling the central store for a cool-down after repeated failures. Pure state
//! machines (the random draw is passed in), so the tests assert exact delays.

use std::time::{Duration, Instant};

/// Capped exponential backoff with full jitter: the n-th consecutive failure waits a uniformly random
/// time in `[min_floor, min(cap, base × 2ⁿ)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Never below this (tikv-client's TSO stream reconnects only a second after its last connect).
    floor: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, floor: Duration) -> Self {
        Backoff {
            base,
            cap,
            floor,
            failures: 0,
        }
    }

    /// The delay after one more failure; `unit` is a random draw in `[0, 1)`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        self.failures = self.failures.saturating_add(1);
        ceiling
            .mul_f64(unit.clamp(0.0, 1.0))
            .max(self.floor.min(ceiling))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// The breaker's state, as `/v1/sync` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Calls are refused until the instant; then one trial call is let through (half-open).
    Open {
        until: Instant,
    },
}

/// Opens after `threshold` consecutive failures for `cool_down`; one success closes it.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    consecutive: u32,
    state: BreakerState,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        CircuitBreaker {
            threshold,
            cool_down,
            consecutive: 0,
            state: BreakerState::Closed,
        }
    }

    /// How long to wait before a call may be made at `now` (zero when closed or half-open).
    pub fn wait(&self, now: Instant) -> Duration {
        match self.state {
            BreakerState::Closed => Duration::ZERO,
            BreakerState::Open { until } => until.saturating_duration_since(now),
        }
    }

    pub fn success(&mut self) {
        self.consecutive = 0;
        self.state = BreakerState::Closed;
    }

    pub fn failure(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive >= self.threshold {
            self.state = BreakerState::Open {
                until: now + self.cool_down,
            };
        }
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.wait(now) > Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_with_full_jitter() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1_000), ms(0));
        assert_eq!(b.next_delay(1.0), ms(100));
        assert_eq!(b.next_delay(1.0), ms(200));
        assert_eq!(b.next_delay(0.5), ms(200));
        assert_eq!(b.next_delay(1.0), ms(800));
        assert_eq!(b.next_delay(1.0), ms(1_000));
        assert_eq!(b.next_delay(0.0), ms(0));
        for _ in 0..100 {
            assert_eq!(b.next_delay(1.0), ms(1_000));
        }
        b.reset();
        assert_eq!(b.next_delay(1.0), ms(100));
        let mut floored = Backoff::new(ms(100), ms(5_000), ms(1_100));
        assert_eq!(floored.next_delay(0.0), ms(100), "never above the ceiling");
        floored.next_delay(0.0);
        floored.next_delay(0.0);
        floored.next_delay(0.0);
        assert_eq!(floored.next_delay(0.0), ms(1_100));
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_one_success_closes_it() {
        let t0 = Instant::now();
        let mut cb = CircuitBreaker::new(3, Duration::from_secs(5));
        cb.failure(t0);
        cb.failure(t0);
        assert!(!cb.is_open(t0));
        cb.failure(t0);
        assert_eq!(cb.wait(t0), Duration::from_secs(5));
        assert!(
            !cb.is_open(t0 + Duration::from_secs(5)),
            "half-open: one trial"
        );
        cb.failure(t0 + Duration::from_secs(5));
        assert!(cb.is_open(t0 + Duration::from_secs(6)));
        cb.success();
        assert!(!cb.is_open(t0 + Duration::from_secs(6)));
    }
}
