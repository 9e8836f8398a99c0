//! Recording a client history for the [linearizability checker](crate::linearizability) while a test
//! drives a cluster: invocations, the answers clients saw, and how a node's error reads as an outcome.

use std::ops::RangeInclusive;

use raft_node::Error;

use crate::linearizability::{self, CheckBudget, CheckResult, Event, Op, Outcome, Ret};

/// The operations of every client, in invocation order.
#[derive(Clone, Debug, Default)]
pub struct History {
    events: Vec<Event>,
}

impl History {
    /// Records that `client` invoked `op` at `at`; its outcome is unknown until [`complete`](Self::complete)d
    /// (a client that gives up leaves it so). Returns the operation's index.
    pub fn invoke(&mut self, client: u64, op: Op, at: u64) -> usize {
        self.events.push(Event {
            client,
            op,
            invoke: at,
            complete: None,
            outcome: Outcome::Unknown,
        });
        self.events.len() - 1
    }

    /// Records the answer the client saw at `at` for operation `index`.
    pub fn complete(&mut self, index: usize, at: u64, outcome: Outcome) {
        let event = &mut self.events[index];
        event.complete = Some(at);
        event.outcome = outcome;
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// Checks the whole history with the default budget.
    pub fn check(&self) -> CheckResult {
        linearizability::check(&self.events, CheckBudget::default())
    }

    /// The values a counter under `key` may hold once every operation has ended: at least the sum of the
    /// acknowledged increments, at most that plus the sum of those with an unknown outcome. `None` if the
    /// key saw anything but increments by positive deltas (or its entity a checkpoint): then the history
    /// alone does not bound it.
    pub fn counter_bounds(&self, key: &[u8]) -> Option<RangeInclusive<i64>> {
        let entity = linearizability::entity_of(key);
        let (mut acknowledged, mut unknown) = (0i64, 0i64);
        for event in &self.events {
            match &event.op {
                Op::Get { .. } => {}
                Op::Incr { key: k, delta } if k == key => {
                    if *delta <= 0 {
                        return None;
                    }
                    match event.outcome {
                        Outcome::Ok(_) => acknowledged = acknowledged.checked_add(*delta)?,
                        Outcome::Unknown => unknown = unknown.checked_add(*delta)?,
                        Outcome::Failed => {}
                    }
                }
                Op::Checkpoint { entity: e } if Some(e.as_slice()) == entity => return None,
                Op::Put { key: k, .. } | Op::Delete { key: k } | Op::Cas { key: k, .. }
                    if k == key =>
                {
                    return None
                }
                _ => {}
            }
        }
        Some(acknowledged..=acknowledged.checked_add(unknown)?)
    }
}

/// What a client may conclude from a node's error (raft-node's reply rules): `NotLeader`, `Dropped`,
/// `Overloaded`, `Stopped` and `NoSpace` mean the command definitely had no effect; anything else (a
/// timeout, a shutdown while it was in flight, a proposal settled `OutcomeUnknown`) leaves its outcome
/// unknown.
pub fn outcome_of_error(e: &Error) -> Outcome {
    match e {
        Error::NotLeader { .. }
        | Error::Dropped
        | Error::Overloaded
        | Error::Stopped
        | Error::NoSpace => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

/// The history with the value of one acknowledged, non-empty read altered to one never written (for
/// showing that a checker run over it really rejects); `None` if it has no such read.
pub fn tamper(history: &[Event]) -> Option<Vec<Event>> {
    let mut h = history.to_vec();
    let e = h
        .iter_mut()
        .find(|e| matches!(&e.outcome, Outcome::Ok(Ret::Value(Some(_)))))?;
    e.outcome = Outcome::Ok(Ret::Value(Some(b"never-written".to_vec())));
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(h: &mut History, delta: i64, outcome: Outcome) {
        let i = h.invoke(1, Op::incr("c", delta), 0);
        h.complete(i, 1, outcome);
    }

    #[test]
    fn counter_bounds_add_acknowledged_and_unknown_increments() {
        let mut h = History::default();
        incr(&mut h, 1, Outcome::Ok(Ret::Counter(1)));
        incr(&mut h, 2, Outcome::Unknown);
        incr(&mut h, 5, Outcome::Failed);
        incr(&mut h, 3, Outcome::Ok(Ret::Counter(4)));
        h.invoke(2, Op::get("c"), 2);
        h.invoke(2, Op::put("other", "x"), 2);
        assert_eq!(h.counter_bounds(b"c"), Some(4..=6));
        assert_eq!(History::default().counter_bounds(b"c"), Some(0..=0));
    }

    #[test]
    fn counter_bounds_refuse_a_key_written_otherwise() {
        let mut h = History::default();
        incr(&mut h, 1, Outcome::Ok(Ret::Counter(1)));
        let mut put = h.clone();
        put.invoke(2, Op::put("c", "7"), 2);
        assert_eq!(put.counter_bounds(b"c"), None);
        let mut down = h.clone();
        incr(&mut down, -1, Outcome::Unknown);
        assert_eq!(down.counter_bounds(b"c"), None);
        let mut checkpointed = History::default();
        let i = checkpointed.invoke(1, Op::incr("e/c", 1), 0);
        checkpointed.complete(i, 1, Outcome::Ok(Ret::Counter(1)));
        checkpointed.invoke(2, Op::checkpoint("e"), 2);
        assert_eq!(checkpointed.counter_bounds(b"e/c"), None);
        assert_eq!(h.counter_bounds(b"c"), Some(1..=1));
    }

    #[test]
    fn tampering_alters_one_acknowledged_read_and_is_rejected() {
        let mut h = History::default();
        let put = h.invoke(1, Op::put("k", "1"), 0);
        h.complete(put, 1, Outcome::Ok(Ret::Done));
        let get = h.invoke(2, Op::get("k"), 2);
        h.complete(get, 3, Outcome::Ok(Ret::Value(Some(b"1".to_vec()))));
        assert_eq!(h.check(), CheckResult::Linearizable);
        let tampered = tamper(h.events()).expect("one acknowledged read");
        assert_eq!(
            tampered[get].outcome,
            Outcome::Ok(Ret::Value(Some(b"never-written".to_vec())))
        );
        assert!(matches!(
            linearizability::check(&tampered, CheckBudget::default()),
            CheckResult::NotLinearizable { .. }
        ));
        assert_eq!(tamper(&tampered[..1]), None);
    }

    #[test]
    fn errors_that_prove_no_effect_are_failures() {
        for e in [
            Error::NotLeader { leader_hint: None },
            Error::Dropped,
            Error::Overloaded,
            Error::Stopped,
            Error::NoSpace,
        ] {
            assert_eq!(outcome_of_error(&e), Outcome::Failed, "{e}");
        }
        assert_eq!(outcome_of_error(&Error::ShuttingDown), Outcome::Unknown);
        assert_eq!(outcome_of_error(&Error::Timeout), Outcome::Unknown);
        assert_eq!(outcome_of_error(&Error::OutcomeUnknown), Outcome::Unknown);
    }
}
