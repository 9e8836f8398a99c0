//! Linearizability checker for recorded client histories (the deterministic fault simulator's and the
//! process-cluster tests').
//!
//! Pure and dependency-free: it reads a slice of [`Event`]s and returns a [`CheckResult`]; no I/O, no clock.
//!
//! # What "linearizable" means here
//!
//! Each [`Event`] says that a client invoked an [`Op`] at time `invoke` and saw it complete at time `complete`
//! with an [`Outcome`]. The history is linearizable if every operation that took effect can be given one
//! instant (its *linearization point*) inside its real-time interval so that running the operations one by one
//! in that order against the sequential [`Model`] returns exactly the recorded results.
//!
//! Intervals are closed: an operation that completes at the very instant another is invoked is treated as
//! concurrent with it. That is the permissive choice for a tick-based simulator, which cannot order the two.
//!
//! # The outcome rule
//!
//! - [`Outcome::Ok`]: the operation must be linearized inside `[invoke, complete]` and the model must return
//!   exactly the recorded [`Ret`]. An `Ok` event without `complete` is read as completing at +∞ (still
//!   mandatory, still with its return value checked).
//! - [`Outcome::Failed`]: the operation definitely had no effect; it is dropped before the search.
//! - [`Outcome::Unknown`]: the operation may or may not have taken effect, at any instant after `invoke` —
//!   even after a recorded `complete`, since a timed-out request can still commit later. It is treated as
//!   completing at +∞ and as *optional*: the search may linearize it anywhere after its invoke or never, and
//!   its return value is unconstrained. Unknown operations never block the search: a partition is accepted
//!   as soon as all of its `Ok` operations are linearized. An unknown `Get` has neither effect nor
//!   constraint, so it is dropped too.
//!
//! # Partitions (P-compositionality)
//!
//! Every operation touches one entity (the part of a key before its first `/`, see [`entity_of`]) or, for a
//! key without an entity, that key alone; a checkpoint touches its entity. Operations on different
//! partitions commute, so each partition is checked on its own (Horn & Kroening's P-compositionality), which
//! keeps each search small. Keys without an entity form one partition per key (`key "…"`), distinct from an
//! entity of the same name (`entity "…"`): checkpointing entity `a` does not remove the key `a`.
//!
//! # The search
//!
//! Each partition is searched with Wing & Gong's algorithm as improved by Lowe (the algorithm of
//! Porcupine), extended to unknown outcomes and pruned; `search.rs` explains the search and why its pruning
//! loses nothing. A refutation is reported with the longest linearizable prefix found (`report.rs`).
//!
//! # Budget
//!
//! [`CheckBudget::max_states_per_partition`] bounds the number of configurations explored per partition
//! (each is cached, so it bounds memory too: roughly a kilobyte each for a partition of a few hundred
//! operations). When it runs out the result is [`CheckResult::Unknown`], never `Linearizable`. The
//! expensive histories are long partitions with many unknown operations that can all still take effect,
//! above all unknown increments, whose subsets the search may have to enumerate to match a counter.

mod model;
mod partition;
mod report;
mod search;

#[cfg(test)]
mod testing;

pub use model::{entity_of, Event, Model, Op, Outcome, Ret};

use partition::partitions;
use report::describe_refutation;
use search::{Search, SearchEnd, SearchOp};

/// How much searching [`check`] may do before giving up with [`CheckResult::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckBudget {
    /// Configurations (operations linearized, state) explored per partition; each one is cached.
    pub max_states_per_partition: u64,
}

impl Default for CheckBudget {
    fn default() -> Self {
        CheckBudget {
            max_states_per_partition: 100_000,
        }
    }
}

/// The verdict on a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    Linearizable,
    /// No linearization of this partition exists. `detail` lists the longest linearizable prefix found, the
    /// state after it and the operations that could not follow it.
    NotLinearizable {
        partition: String,
        detail: String,
    },
    /// The budget ran out on this partition before an answer (and no other partition was refuted).
    Unknown {
        partition: String,
    },
}

/// Checks `history` partition by partition. A refuted partition wins over one whose budget ran out.
pub fn check(history: &[Event], budget: CheckBudget) -> CheckResult {
    let mut exhausted = None;
    for (partition, events) in partitions(history) {
        match check_partition(&events, budget) {
            Verdict::Linearizable => {}
            Verdict::Refuted(detail) => {
                return CheckResult::NotLinearizable {
                    partition: partition.to_string(),
                    detail,
                };
            }
            Verdict::Exhausted => {
                exhausted.get_or_insert_with(|| partition.to_string());
            }
        }
    }
    match exhausted {
        Some(partition) => CheckResult::Unknown { partition },
        None => CheckResult::Linearizable,
    }
}

enum Verdict {
    Linearizable,
    Refuted(String),
    Exhausted,
}

fn check_partition(events: &[(usize, &Event)], budget: CheckBudget) -> Verdict {
    let ops: Vec<SearchOp> = events
        .iter()
        .map(|&(index, event)| SearchOp::new(index, event))
        .collect();
    if let Some(bad) = ops.iter().find(|op| op.is_inverted()) {
        return Verdict::Refuted(format!(
            "{bad}\n  completes before it is invoked: no instant to linearize it"
        ));
    }
    let mut search = Search::new(&ops);
    match search.run(budget.max_states_per_partition) {
        SearchEnd::Linearized => Verdict::Linearizable,
        SearchEnd::Exhausted => Verdict::Exhausted,
        SearchEnd::Refuted(longest) => Verdict::Refuted(describe_refutation(&ops, &longest)),
    }
}

#[cfg(test)]
mod tests;
