//! After a chaos run: is every acknowledged write present? A pure check of the recorded requests
//! ([`Sample`]s) against the final state of every player read back from the site.
//!
//! # What is provable
//!
//! The runner records, for every request, its intended send time `i`, its completion `d = i + latency`
//! and whether the system acknowledged it. The kvs-raft client never re-sends a write that may have
//! been applied (`kvs_raft::client::failover`), so each op is applied **at most once**; an
//! acknowledged op was applied; a failed op may or may not have been, possibly long after its error
//! was reported (an entry proposed before a leader died can be committed by the next one). The
//! system claims linearizability, so the order in which a player's writes took effect extends their
//! real-time order: `a` certainly precedes `b` when `a` was acknowledged before `b` was intended
//! (`a.d < b.i`, and `b.i` ≤ its actual send), or when both are in one request, `a` first (a batch is
//! one Raft entry applied in order). Nothing else about a failed write's place is known.
//!
//! A game update is one `/v1/txn` (one Raft entry): the position put and the score incr take effect
//! together; a checkpoint invalidates both keys at once (a read after it finds neither). So:
//!
//! 1. **Position.** The visible position comes from the player's *last* effective write: an update
//!    (its value) or a checkpoint (absent). Write `x` can be last only if it may have been applied and
//!    no acknowledged write certainly follows it; with no acknowledged write at all, "nothing applied"
//!    (absent) is possible too. A visible value that no such candidate explains is an acknowledged
//!    write overwritten by an older one (`stale_position`, the value of an earlier write) or by nothing
//!    (`lost_position`: absent, though an acknowledged update is not followed by any checkpoint that
//!    may have been applied after it), or a value nobody wrote (`unknown_position`).
//! 2. **Score, absent with the position.** The position and the score are written by the same
//!    entries and invalidated by the same checkpoints: one is visible exactly when the other is
//!    (`score_mismatch`).
//! 3. **Score bounds**, when the position shows update `x` (so `x` took effect, last): the score is
//!    the sum of the deltas of the updates applied after the last applied checkpoint, up to `x`.
//!    *Lower bound*: `x`'s delta plus every acknowledged update `u` that no checkpoint can separate
//!    from `x` — each checkpoint `k` either certainly precedes `u` or certainly follows `x` (then it was
//!    not applied). Below it, an acknowledged increment is lost (`lost_increment`). *Upper bound*:
//!    the deltas of all updates that may have been applied in that span — every failed update, and
//!    every acknowledged one not certainly before an acknowledged checkpoint (applied, and before `x`)
//!    and not certainly after `x`. Above it, an increment was applied twice or came from nowhere
//!    (`excess_score`).
//!
//! The check is sound (an anomaly is a real violation of durability or linearizability, given the
//! client's at-most-once sending) but not complete: a failed checkpoint can be placed anywhere after
//! its send, so it weakens the score's lower bound of that player to `x`'s delta; a loss hidden behind
//! it is not seen. The run's warm-up must be 0 (every request recorded): a write that was sent but not
//! recorded would make the check wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use kvs_raft::bench::{Op, Sample};
use serde::Serialize;

/// A player's state as read back after the run (one linearizable read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `p<n>/pos`: `None` when the key has no live version.
    pub position: Option<Vec<u8>>,
    /// `p<n>/score` as an integer: `None` when absent.
    pub score: Option<i64>,
}

/// What kind of violation an [`Anomaly`] is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    StalePosition,
    LostPosition,
    UnknownPosition,
    ScoreMismatch,
    LostIncrement,
    ExcessScore,
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::StalePosition => "stale_position",
            AnomalyKind::LostPosition => "lost_position",
            AnomalyKind::UnknownPosition => "unknown_position",
            AnomalyKind::ScoreMismatch => "score_mismatch",
            AnomalyKind::LostIncrement => "lost_increment",
            AnomalyKind::ExcessScore => "excess_score",
        }
    }
}

/// One player whose final state the recorded writes cannot explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub player: u64,
    pub kind: AnomalyKind,
    /// For people: what was expected and what was read.
    pub detail: String,
}

/// The verdict over every player the run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Players with at least one write in the run (all of them are checked).
    pub players: u64,
    /// Acknowledged updates and checkpoints.
    pub acked_writes: u64,
    /// Writes that failed (they may or may not have taken effect).
    pub failed_writes: u64,
    /// Players whose visible position is the value of a write that failed: it took effect anyway
    /// (expected for `outcome-unknown`/`timeout`; the labels say which).
    pub failed_but_visible: BTreeMap<String, u64>,
    pub anomalies: Vec<Anomaly>,
}

impl Verification {
    /// Whether every acknowledged write is present (and nothing appeared twice).
    pub fn ok(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// Anomalies by kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for a in &self.anomalies {
            *counts.entry(a.kind.name()).or_default() += 1;
        }
        counts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect<'a> {
    Update { position: &'a [u8], delta: i64 },
    Checkpoint,
}

/// One write of one player, as recorded.
#[derive(Debug, Clone, Copy)]
struct Write<'a> {
    /// The request's index in the samples and the op's index in the request.
    request: usize,
    index: usize,
    intended: Duration,
    done: Duration,
    /// `None`: acknowledged; else the error label.
    error: Option<&'a str>,
    effect: Effect<'a>,
}

impl Write<'_> {
    fn acked(&self) -> bool {
        self.error.is_none()
    }

    /// `self` certainly took effect before `other` (when both did).
    fn precedes(&self, other: &Write<'_>) -> bool {
        if self.request == other.request {
            return self.index < other.index;
        }
        self.acked() && self.done < other.intended
    }

    fn delta(&self) -> i64 {
        match self.effect {
            Effect::Update { delta, .. } => delta,
            Effect::Checkpoint => 0,
        }
    }
}

/// Checks the final state of every player written in `samples` against `observed` (players missing
/// from `observed` count as read absent).
pub fn verify(samples: &[Sample], observed: &BTreeMap<u64, Observed>) -> Verification {
    let mut by_player: BTreeMap<u64, Vec<Write<'_>>> = BTreeMap::new();
    let mut v = Verification::default();
    for (request, s) in samples.iter().enumerate() {
        for (index, op) in s.ops.iter().enumerate() {
            let (player, effect) = match op {
                Op::Update {
                    player,
                    position,
                    score_delta,
                } => (
                    *player,
                    Effect::Update {
                        position,
                        delta: *score_delta,
                    },
                ),
                Op::Checkpoint { player, .. } => (*player, Effect::Checkpoint),
                Op::Put { .. } | Op::LateRead { .. } => continue,
            };
            if s.error.is_none() {
                v.acked_writes += 1;
            } else {
                v.failed_writes += 1;
            }
            by_player.entry(player).or_default().push(Write {
                request,
                index,
                intended: s.intended,
                done: s.intended.saturating_add(s.latency),
                error: s.error.as_deref(),
                effect,
            });
        }
    }
    let absent = Observed::default();
    for (&player, writes) in &by_player {
        v.players += 1;
        let seen = observed.get(&player).unwrap_or(&absent);
        check_player(player, writes, seen, &mut v);
    }
    v
}

fn check_player(player: u64, writes: &[Write<'_>], seen: &Observed, v: &mut Verification) {
    let mut flag = |kind, detail: String| {
        v.anomalies.push(Anomaly {
            player,
            kind,
            detail,
        })
    };
    // Writes that may be the last effective one: no acknowledged write certainly follows them.
    let may_be_last = |x: &Write<'_>| !writes.iter().any(|y| y.acked() && x.precedes(y));
    let any_acked = writes.iter().any(Write::acked);
    let last_acked_update = writes
        .iter()
        .filter(|w| w.acked() && matches!(w.effect, Effect::Update { .. }))
        .max_by_key(|w| w.done);

    let Some(value) = &seen.position else {
        let explained = !any_acked
            || writes
                .iter()
                .any(|w| w.effect == Effect::Checkpoint && may_be_last(w));
        if !explained {
            flag(
                AnomalyKind::LostPosition,
                format!(
                    "position absent, but the update acknowledged at {} is followed by no checkpoint \
                     that may have taken effect after it",
                    at(last_acked_update.map(|w| w.done))
                ),
            );
        }
        if let Some(score) = seen.score {
            flag(
                AnomalyKind::ScoreMismatch,
                format!("position absent but score {score}"),
            );
        }
        return;
    };

    let writers: Vec<&Write<'_>> = writes
        .iter()
        .filter(
            |w| matches!(w.effect, Effect::Update { position, .. } if position == value.as_slice()),
        )
        .collect();
    let Some(x) = writers.iter().copied().find(|w| may_be_last(w)) else {
        match writers.first() {
            Some(old) => flag(
                AnomalyKind::StalePosition,
                format!(
                    "position is the value of the write intended at {}, but the update acknowledged \
                     at {} came certainly after it",
                    at(Some(old.intended)),
                    at(last_acked_update.map(|w| w.done))
                ),
            ),
            None => flag(
                AnomalyKind::UnknownPosition,
                format!(
                    "position {:?} was written by no request of the run",
                    String::from_utf8_lossy(&value[..value.len().min(24)])
                ),
            ),
        }
        return;
    };
    if let Some(label) = x.error {
        *v.failed_but_visible.entry(label.to_owned()).or_default() += 1;
    }
    let Some(score) = seen.score else {
        flag(
            AnomalyKind::ScoreMismatch,
            "position present but score absent".to_owned(),
        );
        return;
    };
    let checkpoints: Vec<&Write<'_>> = writes
        .iter()
        .filter(|w| w.effect == Effect::Checkpoint)
        .collect();
    let updates = writes
        .iter()
        .filter(|w| matches!(w.effect, Effect::Update { .. }));
    let mut lower = 0i64;
    let mut upper = 0i64;
    for u in updates {
        let is_x = u.request == x.request && u.index == x.index;
        // Certainly counted: `x` itself, or acknowledged with no checkpoint possibly between it and `x`.
        let certain =
            is_x || (u.acked() && checkpoints.iter().all(|k| k.precedes(u) || x.precedes(k)));
        // Possibly counted: not certainly after `x`, not certainly before an applied checkpoint.
        let possible =
            is_x || (!x.precedes(u) && !checkpoints.iter().any(|k| k.acked() && u.precedes(k)));
        if certain {
            lower = lower.saturating_add(u.delta());
        }
        if certain || possible {
            upper = upper.saturating_add(u.delta());
        }
    }
    if score < lower {
        flag(
            AnomalyKind::LostIncrement,
            format!("score {score}, but the acknowledged increments since the last checkpoint sum to {lower}"),
        );
    } else if score > upper {
        flag(
            AnomalyKind::ExcessScore,
            format!("score {score}, but every increment that may count sums to {upper}"),
        );
    }
}

fn at(t: Option<Duration>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| format!("{:.3} s", t.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn update(
        player: u64,
        pos: &str,
        delta: i64,
        from: u64,
        to: u64,
        error: Option<&str>,
    ) -> Sample {
        Sample {
            intended: ms(from),
            latency: ms(to - from),
            error: error.map(str::to_owned),
            ops: vec![Op::Update {
                player,
                position: pos.as_bytes().to_vec(),
                score_delta: delta,
            }],
        }
    }

    fn checkpoint(player: u64, from: u64, to: u64, error: Option<&str>) -> Sample {
        Sample {
            intended: ms(from),
            latency: ms(to - from),
            error: error.map(str::to_owned),
            ops: vec![Op::Checkpoint {
                player,
                name: format!("c{from}"),
            }],
        }
    }

    fn seen(position: Option<&str>, score: Option<i64>) -> Observed {
        Observed {
            position: position.map(|p| p.as_bytes().to_vec()),
            score,
        }
    }

    fn kinds(samples: &[Sample], observed: Observed) -> Vec<AnomalyKind> {
        let v = verify(samples, &BTreeMap::from([(1, observed)]));
        v.anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn sequential_updates_need_the_last_value_and_the_sum() {
        let s = [
            update(1, "a", 2, 0, 5, None),
            update(1, "b", 3, 10, 15, None),
        ];
        assert_eq!(kinds(&s, seen(Some("b"), Some(5))), vec![]);
        // The last acknowledged value replaced by the earlier one: a lost write.
        assert_eq!(
            kinds(&s, seen(Some("a"), Some(5))),
            vec![AnomalyKind::StalePosition]
        );
        assert_eq!(
            kinds(&s, seen(Some("b"), Some(3))),
            vec![AnomalyKind::LostIncrement]
        );
        assert_eq!(
            kinds(&s, seen(Some("b"), Some(8))),
            vec![AnomalyKind::ExcessScore]
        );
        assert_eq!(kinds(&s, seen(None, None)), vec![AnomalyKind::LostPosition]);
        assert_eq!(
            kinds(&s, seen(Some("zz"), Some(5))),
            vec![AnomalyKind::UnknownPosition]
        );
        assert_eq!(
            kinds(&s, seen(Some("b"), None)),
            vec![AnomalyKind::ScoreMismatch]
        );
    }

    #[test]
    fn concurrent_updates_may_land_in_either_order() {
        // Overlapping in time: either value may be last, both increments count.
        let s = [
            update(1, "a", 2, 0, 20, None),
            update(1, "b", 3, 10, 15, None),
        ];
        assert_eq!(kinds(&s, seen(Some("a"), Some(5))), vec![]);
        assert_eq!(kinds(&s, seen(Some("b"), Some(5))), vec![]);
    }

    #[test]
    fn a_failed_write_may_or_may_not_have_taken_effect_even_late() {
        let s = [
            update(1, "a", 2, 0, 5, None),
            update(1, "b", 3, 10, 15, Some("outcome-unknown")),
        ];
        assert_eq!(kinds(&s, seen(Some("a"), Some(2))), vec![]);
        assert_eq!(kinds(&s, seen(Some("b"), Some(5))), vec![]);
        // An acknowledged update after the failed one: the failed one may still land after it.
        let s2 = [
            update(1, "b", 3, 0, 5, Some("timeout")),
            update(1, "c", 4, 10, 15, None),
        ];
        assert_eq!(kinds(&s2, seen(Some("c"), Some(4))), vec![]);
        assert_eq!(kinds(&s2, seen(Some("c"), Some(7))), vec![]);
        assert_eq!(kinds(&s2, seen(Some("b"), Some(7))), vec![]);
        let v = verify(&s2, &BTreeMap::from([(1, seen(Some("b"), Some(7)))]));
        assert_eq!(v.failed_but_visible.get("timeout"), Some(&1));
        // But no failed write explains losing the acknowledged one entirely.
        assert_eq!(
            kinds(&s2, seen(None, None)),
            vec![AnomalyKind::LostPosition]
        );
        // Nothing acknowledged at all: absent is fine.
        let s3 = [update(1, "b", 3, 0, 5, Some("http-503-no_quorum"))];
        assert_eq!(kinds(&s3, seen(None, None)), vec![]);
    }

    #[test]
    fn a_checkpoint_invalidates_earlier_state() {
        // Acknowledged checkpoint after the last update: absent is right, the old value is not.
        let s = [update(1, "a", 2, 0, 5, None), checkpoint(1, 10, 15, None)];
        assert_eq!(kinds(&s, seen(None, None)), vec![]);
        assert_eq!(
            kinds(&s, seen(Some("a"), Some(2))),
            vec![AnomalyKind::StalePosition]
        );
        // An update after the checkpoint: only its increment counts.
        let s2 = [
            update(1, "a", 2, 0, 5, None),
            checkpoint(1, 10, 15, None),
            update(1, "b", 3, 20, 25, None),
            update(1, "c", 4, 30, 35, None),
        ];
        assert_eq!(kinds(&s2, seen(Some("c"), Some(7))), vec![]);
        assert_eq!(
            kinds(&s2, seen(Some("c"), Some(9))),
            vec![AnomalyKind::ExcessScore]
        );
        assert_eq!(
            kinds(&s2, seen(Some("c"), Some(4))),
            vec![AnomalyKind::LostIncrement]
        );
        assert_eq!(
            kinds(&s2, seen(None, None)),
            vec![AnomalyKind::LostPosition]
        );
        // A checkpoint concurrent with an update: either order.
        let s3 = [
            update(1, "a", 2, 0, 5, None),
            checkpoint(1, 10, 30, None),
            update(1, "b", 3, 20, 25, None),
        ];
        assert_eq!(kinds(&s3, seen(None, None)), vec![]);
        assert_eq!(kinds(&s3, seen(Some("b"), Some(3))), vec![]);
        // "a" was acknowledged before the checkpoint was sent, and the checkpoint took effect before
        // "b" (which is visible, so last): a's increment is gone.
        assert_eq!(
            kinds(&s3, seen(Some("b"), Some(5))),
            vec![AnomalyKind::ExcessScore]
        );
        // The position absent but a score left: the checkpoint invalidates both.
        assert_eq!(
            kinds(&s3, seen(None, Some(3))),
            vec![AnomalyKind::ScoreMismatch]
        );
    }

    #[test]
    fn a_failed_checkpoint_weakens_only_the_lower_bound() {
        let s = [
            update(1, "a", 2, 0, 5, None),
            checkpoint(1, 10, 15, Some("outcome-unknown")),
            update(1, "b", 3, 20, 25, None),
        ];
        // Applied between the updates (3) or not at all (5): both explained.
        assert_eq!(kinds(&s, seen(Some("b"), Some(3))), vec![]);
        assert_eq!(kinds(&s, seen(Some("b"), Some(5))), vec![]);
        // Applied after the last update: absent is explained too.
        assert_eq!(kinds(&s, seen(None, None)), vec![]);
        assert_eq!(
            kinds(&s, seen(Some("b"), Some(6))),
            vec![AnomalyKind::ExcessScore]
        );
    }

    #[test]
    fn a_batch_is_ordered_inside() {
        let batch = Sample {
            intended: ms(0),
            latency: ms(5),
            error: None,
            ops: vec![
                Op::Update {
                    player: 1,
                    position: b"a".to_vec(),
                    score_delta: 1,
                },
                Op::Checkpoint {
                    player: 1,
                    name: "c".into(),
                },
                Op::Update {
                    player: 1,
                    position: b"b".to_vec(),
                    score_delta: 2,
                },
            ],
        };
        assert_eq!(
            kinds(std::slice::from_ref(&batch), seen(Some("b"), Some(2))),
            vec![]
        );
        assert_eq!(
            kinds(&[batch], seen(Some("b"), Some(3))),
            vec![AnomalyKind::ExcessScore]
        );
    }

    #[test]
    fn every_written_player_is_checked_and_missing_ones_read_absent() {
        let s = [update(1, "a", 2, 0, 5, None), update(2, "x", 1, 0, 5, None)];
        let v = verify(&s, &BTreeMap::from([(1, seen(Some("a"), Some(2)))]));
        assert_eq!((v.players, v.acked_writes, v.failed_writes), (2, 2, 0));
        assert_eq!(v.anomalies.len(), 1);
        assert_eq!(v.anomalies[0].player, 2);
        assert!(!v.ok());
    }
}
