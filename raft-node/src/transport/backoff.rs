//! Reconnect delays: capped exponential growth with jitter, reset on success.

use std::time::Duration;

use rand::Rng;

pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay: `min · 2^attempt`, capped at `max`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay: uniform in `[ceiling / 2, ceiling]` (jitter keeps peers from redialing in step).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        rand::thread_rng().gen_range(ceiling / 2..=ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(50), ms(2000));
        for ceiling in [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000] {
            let d = b.next_delay();
            assert!(
                d >= ms(ceiling) / 2 && d <= ms(ceiling),
                "{d:?} vs {ceiling}"
            );
        }
        for _ in 0..100 {
            assert!(b.next_delay() <= ms(2000));
        }
        b.reset();
        assert!(b.next_delay() <= ms(50));
    }

    #[test]
    fn max_below_min_is_clamped() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::ZERO);
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}
