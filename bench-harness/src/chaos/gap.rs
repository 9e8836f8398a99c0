//! Write gaps: the longest time without a successful write completion, per window of the run.

use std::time::Duration;

use serde::Serialize;

/// The interval between two consecutive successful write completions (since the run's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    #[serde(rename = "from_s", serialize_with = "secs")]
    pub from: Duration,
    #[serde(rename = "to_s", serialize_with = "secs")]
    pub to: Duration,
    /// No write completed after `from` at all: `to` is the end of the window, the gap lasted at least
    /// this long.
    pub open: bool,
}

impl Gap {
    pub fn len(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The longest gap whose end lies in the window `(start, end]`, over `completions` (successful write
/// completions, sorted ascending).
///
/// A gap belongs to the window its *end* falls in, so a stop's window `[stop, next stop)` takes the
/// gap that straddles the stop (from the last write before it to the first after it) and leaves a
/// gap straddling the next stop to that one. The gap before the first completion of the window starts
/// at the last completion at or before `start` (or at `start` if there is none). When no write
/// completes after the last one in the window — not even after `end` — the gap runs to `end` and is
/// marked open. `None` only when the window is empty.
pub fn longest_gap(completions: &[Duration], start: Duration, end: Duration) -> Option<Gap> {
    if end <= start {
        return None;
    }
    let first_after = completions.partition_point(|&c| c <= start);
    let mut prev = first_after
        .checked_sub(1)
        .and_then(|i| completions.get(i))
        .copied()
        .unwrap_or(start);
    let mut best: Option<Gap> = None;
    let mut consider = |gap: Gap| {
        if best.is_none_or(|b| gap.len() > b.len()) {
            best = Some(gap);
        }
    };
    for &c in completions.get(first_after..).unwrap_or(&[]) {
        if c > end {
            // The gap to it belongs to the next window; with nothing completed inside this one, the
            // window's share of it is this window's gap.
            return best.or(Some(Gap {
                from: prev,
                to: end,
                open: false,
            }));
        }
        consider(Gap {
            from: prev,
            to: c,
            open: false,
        });
        prev = c;
    }
    // No completion after `prev` at all.
    consider(Gap {
        from: prev,
        to: end,
        open: true,
    });
    best
}

/// The successful write completions of a run's samples (intended + latency), sorted.
pub fn write_completions(samples: &[kvs_raft::bench::Sample]) -> Vec<Duration> {
    let mut done: Vec<Duration> = samples
        .iter()
        .filter(|s| s.error.is_none() && s.ops.iter().any(kvs_raft::bench::Op::is_write))
        .map(|s| s.intended.saturating_add(s.latency))
        .collect();
    done.sort_unstable();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn gap(c: &[u64], start: u64, end: u64) -> Option<(u64, u64, bool)> {
        let c: Vec<Duration> = c.iter().map(|&n| ms(n)).collect();
        longest_gap(&c, ms(start), ms(end)).map(|g| {
            (
                u64::try_from(g.from.as_millis()).unwrap(),
                u64::try_from(g.to.as_millis()).unwrap(),
                g.open,
            )
        })
    }

    #[test]
    fn the_gap_straddling_the_start_counts() {
        // A stop at 100: the last write before it at 95, the next at 700.
        assert_eq!(
            gap(&[10, 50, 95, 700, 710, 720, 2_000], 100, 1_000),
            Some((95, 700, false))
        );
        // A longer gap later in the window wins.
        assert_eq!(
            gap(&[95, 200, 210, 900, 2_000], 100, 1_000),
            Some((210, 900, false))
        );
    }

    #[test]
    fn a_gap_ending_in_the_next_window_is_the_next_windows() {
        // The gap 300 → 1,500 ends after this window [100, 1000]: it belongs to the next one.
        assert_eq!(
            gap(&[95, 150, 300, 1_500], 100, 1_000),
            Some((150, 300, false))
        );
        assert_eq!(
            gap(&[95, 150, 300, 1_500], 1_000, 2_000),
            Some((300, 1_500, false))
        );
        // No completion inside the window but one after it: the window's share, not open.
        assert_eq!(gap(&[95, 1_500], 100, 1_000), Some((95, 1_000, false)));
    }

    #[test]
    fn writes_that_never_resume_leave_an_open_gap() {
        assert_eq!(gap(&[95, 150], 100, 1_000), Some((150, 1_000, true)));
        assert_eq!(gap(&[], 100, 1_000), Some((100, 1_000, true)));
        assert_eq!(gap(&[5], 10, 10), None);
    }
}
