//! Commit timestamps: a hybrid logical clock owned by the ready loop.
//!
//! Contract: every ts the node hands out is greater than every ts it has seen in its log (its own proposals,
//! entries it persisted as a follower, and at start-up the applied state and the last entry carrying
//! commands — every ts before it is lower), and at least the physical clock. An entry of n commands
//! reserves n consecutive values (one per command).
//! A new leader has persisted every committed entry, so its first ts is above every committed ts: commit
//! timestamps increase strictly in log order across leader changes.

/// The physical clock the production loop stamps commits with: µs since the Unix epoch (0 before it,
/// saturating far after it; never panics).
pub fn wall_clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    /// Remember a ts seen in the log.
    pub fn observe(&mut self, ts: u64) {
        self.last = self.last.max(ts);
    }

    /// The next ts: the physical clock, unless that is not above the last one (clock behind, or several
    /// proposals in one microsecond).
    pub fn next(&mut self, physical_micros: u64) -> u64 {
        self.last = physical_micros.max(self.last.saturating_add(1));
        self.last
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_even_when_the_clock_stalls_or_goes_back() {
        let mut h = Hlc::default();
        assert_eq!(h.next(100), 100);
        assert_eq!(h.next(100), 101);
        assert_eq!(h.next(50), 102);
        h.observe(500);
        assert_eq!(h.next(200), 501);
        h.observe(10);
        assert_eq!(h.next(1000), 1000);
    }
}
