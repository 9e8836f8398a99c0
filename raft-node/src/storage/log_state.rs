//! The in-memory view of the log store and the **pure** decisions about writes: given the current
//! [`LogState`] and a request, compute exactly what to write ([`PersistPlan`], [`CompactPlan`]) and the
//! state after it, or refuse. The shell in `mod.rs` turns a plan into one RocksDB batch.

use std::cmp;

use raft::prelude::{ConfState, Entry, HardState, SnapshotMetadata};

use super::LogWrite;
use crate::error::Error;

/// The last entry dropped from the log (by compaction or by a snapshot): its index and term. Entries
/// `≤ index` are gone; the term is kept so `term(first_index - 1)` answers (Raft's log-matching check).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Boundary {
    pub index: u64,
    pub term: u64,
}

/// Everything about the log except the entries themselves. Invariant: the entries on disk are exactly
/// `truncated.index + 1 ..= last_index`, with no holes, and `last_term` is the term of `last_index`
/// (or `truncated.term` when the log is empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LogState {
    pub truncated: Boundary,
    pub last_index: u64,
    pub last_term: u64,
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// The encoded membership table (addresses, removed ids); empty if never written.
    pub membership: Vec<u8>,
    /// Metadata of the last snapshot applied through [`LogWrite::snapshot`].
    pub snapshot: SnapshotMetadata,
}

/// What the in-memory view can say about `term(idx)`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TermLookup {
    Known(u64),
    Compacted,
    Unavailable,
    /// Inside the log: read the entry.
    OnDisk,
}

/// The exact effects of one [`LogWrite`], in the order they must land (all in one batch).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PersistPlan<'a> {
    /// Delete every entry with index `≥` this first (`Some(0)`: the whole log).
    pub delete_entries_from: Option<u64>,
    pub put_entries: &'a [Entry],
    pub truncated: Option<Boundary>,
    pub snapshot: Option<SnapshotMetadata>,
    pub hard_state: Option<HardState>,
    pub conf_state: Option<ConfState>,
    pub membership: Option<Vec<u8>>,
}

impl PersistPlan<'_> {
    /// Nothing to write (and so nothing to fsync).
    pub fn is_empty(&self) -> bool {
        *self == PersistPlan::default()
    }
}

/// What a compaction must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CompactPlan {
    /// Already compacted that far.
    Noop,
    /// Delete entries `[from, to)`; the new boundary is `to - 1`, whose term the shell looks up.
    Drop { from: u64, to: u64 },
}

impl LogState {
    /// The first index `entries` can serve: one past the truncation boundary.
    pub fn first_index(&self) -> u64 {
        self.truncated.index.saturating_add(1)
    }

    /// Answer `term(idx)` from memory where possible, in raft-rs's `MemStorage` order: the boundary, the
    /// last applied snapshot's index (committed, so its term never changes; `MemStorage` answers it even
    /// after compacting past it), then compacted, then beyond the end.
    pub fn term_lookup(&self, idx: u64) -> TermLookup {
        if idx == self.truncated.index {
            TermLookup::Known(self.truncated.term)
        } else if idx == self.snapshot.index {
            TermLookup::Known(self.snapshot.term)
        } else if idx < self.first_index() {
            TermLookup::Compacted
        } else if idx > self.last_index {
            TermLookup::Unavailable
        } else if idx == self.last_index {
            TermLookup::Known(self.last_term)
        } else {
            TermLookup::OnDisk
        }
    }

    /// The state after dropping entries up to `boundary.index` (see [`plan_compact`]). Compacted entries
    /// were applied, so committed: the hard state's commit is raised to the boundary if it lags (a single
    /// voter commits through raft-rs's light ready, whose commit index reaches no hard state, and raft-rs
    /// refuses to start on a hard state whose commit is below the log's first index − 1).
    pub fn compacted(&self, boundary: Boundary) -> LogState {
        let mut next = LogState {
            truncated: boundary,
            ..self.clone()
        };
        next.hard_state.commit = next.hard_state.commit.max(boundary.index);
        next
    }
}

/// Plan one [`LogWrite`]: snapshot first, then entries, then hard state, then conf state (raft-rs's
/// documented Ready order). Refuses — with nothing to write — a snapshot older than the log, entries that
/// would leave a hole or rewrite compacted entries, and any write after which `commit > last_index`.
pub(crate) fn plan_persist<'a>(
    cur: &LogState,
    w: &'a LogWrite,
) -> Result<(PersistPlan<'a>, LogState), Error> {
    let mut next = cur.clone();
    let mut plan = PersistPlan::default();
    if let Some(meta) = &w.snapshot {
        apply_snapshot(&mut next, &mut plan, meta)?;
    }
    if !w.entries.is_empty() {
        append(&mut next, &mut plan, &w.entries)?;
    }
    if let Some(hs) = &w.hard_state {
        next.hard_state = hs.clone();
        plan.hard_state = Some(hs.clone());
    }
    if let Some(cs) = &w.conf_state {
        next.conf_state = cs.clone();
        plan.conf_state = Some(cs.clone());
    }
    if let Some(m) = &w.membership {
        next.membership = m.clone();
        plan.membership = Some(m.clone());
    }
    if next.hard_state.commit > next.last_index {
        return Err(Error::CommitBeyondLog {
            commit: next.hard_state.commit,
            last_index: next.last_index,
        });
    }
    Ok((plan, next))
}

/// As `MemStorageCore::apply_snapshot`: the log restarts after `meta.index`, the conf state is the
/// snapshot's, the hard state's commit becomes `meta.index` and its term at least `meta.term`.
fn apply_snapshot(
    next: &mut LogState,
    plan: &mut PersistPlan<'_>,
    meta: &SnapshotMetadata,
) -> Result<(), Error> {
    if meta.index < next.first_index() {
        return Err(Error::SnapshotOutOfDate {
            index: meta.index,
            first_index: next.first_index(),
        });
    }
    let boundary = Boundary {
        index: meta.index,
        term: meta.term,
    };
    next.truncated = boundary;
    next.last_index = meta.index;
    next.last_term = meta.term;
    next.snapshot = meta.clone();
    next.conf_state = meta.get_conf_state().clone();
    next.hard_state.term = cmp::max(next.hard_state.term, meta.term);
    next.hard_state.commit = meta.index;
    plan.delete_entries_from = Some(0);
    plan.truncated = Some(boundary);
    plan.snapshot = Some(meta.clone());
    plan.conf_state = Some(next.conf_state.clone());
    plan.hard_state = Some(next.hard_state.clone());
    Ok(())
}

/// As `MemStorageCore::append`: entries at and after the first appended index are replaced.
fn append<'a>(
    next: &mut LogState,
    plan: &mut PersistPlan<'a>,
    ents: &'a [Entry],
) -> Result<(), Error> {
    check_contiguous(next, ents)?;
    let (Some(first), Some(last)) = (ents.first(), ents.last()) else {
        return Ok(());
    };
    if first.index <= next.last_index {
        let from = plan
            .delete_entries_from
            .map_or(first.index, |f| f.min(first.index));
        plan.delete_entries_from = Some(from);
    }
    next.last_index = last.index;
    next.last_term = last.term;
    plan.put_entries = ents;
    Ok(())
}

/// The first entry must land in `[first_index, last_index + 1]` and each next one right after it.
fn check_contiguous(state: &LogState, ents: &[Entry]) -> Result<(), Error> {
    let mut lowest = state.first_index();
    let mut highest = state.last_index.saturating_add(1);
    for e in ents {
        if e.index < lowest || e.index > highest {
            return Err(Error::NotContiguous {
                index: e.index,
                lowest,
                highest,
            });
        }
        lowest = e.index.saturating_add(1);
        highest = lowest;
    }
    Ok(())
}

/// Plan dropping the entries before `compact_index` (as `MemStorageCore::compact`, but an error instead
/// of a panic when `compact_index > last_index + 1`). Compacting up to `last_index + 1` empties the log
/// while keeping its last index and term.
pub(crate) fn plan_compact(cur: &LogState, compact_index: u64) -> Result<CompactPlan, Error> {
    if compact_index <= cur.first_index() {
        return Ok(CompactPlan::Noop);
    }
    if compact_index > cur.last_index.saturating_add(1) {
        return Err(Error::CompactBeyondLog {
            compact_index,
            last_index: cur.last_index,
        });
    }
    Ok(CompactPlan::Drop {
        from: cur.first_index(),
        to: compact_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    /// Entries 4..=6 (terms 1, 2, 2) after a boundary at 3 (term 1), commit 5.
    fn state() -> LogState {
        LogState {
            truncated: Boundary { index: 3, term: 1 },
            last_index: 6,
            last_term: 2,
            hard_state: HardState {
                term: 2,
                vote: 1,
                commit: 5,
            },
            ..Default::default()
        }
    }

    fn write(entries: Vec<Entry>) -> LogWrite {
        LogWrite {
            entries,
            ..Default::default()
        }
    }

    #[test]
    fn appending_after_the_end_writes_only_the_entries() {
        let w = write(vec![entry(7, 2), entry(8, 3)]);
        let (plan, next) = plan_persist(&state(), &w).unwrap();
        assert_eq!(
            plan,
            PersistPlan {
                put_entries: &w.entries,
                ..Default::default()
            }
        );
        assert_eq!((next.last_index, next.last_term), (8, 3));
        assert_eq!(next.truncated, state().truncated);
    }

    #[test]
    fn appending_inside_the_log_drops_the_suffix_first() {
        let w = write(vec![entry(6, 3)]);
        let (plan, next) = plan_persist(&state(), &w).unwrap();
        assert_eq!(plan.delete_entries_from, Some(6));
        assert_eq!((next.last_index, next.last_term), (6, 3));
    }

    #[test]
    fn holes_and_compacted_rewrites_are_refused() {
        for (ents, index, lowest, highest) in [
            (vec![entry(8, 2)], 8, 4, 7),
            (vec![entry(3, 2)], 3, 4, 7),
            (vec![entry(7, 2), entry(9, 2)], 9, 8, 8),
        ] {
            let w = write(ents);
            match plan_persist(&state(), &w) {
                Err(Error::NotContiguous {
                    index: i,
                    lowest: l,
                    highest: h,
                }) => assert_eq!((i, l, h), (index, lowest, highest)),
                other => panic!("expected NotContiguous, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_snapshot_resets_the_log_like_mem_storage() {
        let mut meta = SnapshotMetadata {
            index: 10,
            term: 4,
            ..Default::default()
        };
        meta.mut_conf_state().voters = vec![1, 2, 3];
        let w = LogWrite {
            entries: vec![entry(11, 4)],
            snapshot: Some(meta.clone()),
            ..Default::default()
        };
        let (plan, next) = plan_persist(&state(), &w).unwrap();
        let hs = HardState {
            term: 4,
            vote: 1,
            commit: 10,
        };
        assert_eq!(
            plan,
            PersistPlan {
                delete_entries_from: Some(0),
                put_entries: &w.entries,
                truncated: Some(Boundary { index: 10, term: 4 }),
                snapshot: Some(meta.clone()),
                hard_state: Some(hs.clone()),
                conf_state: Some(meta.get_conf_state().clone()),
                membership: None,
            }
        );
        assert_eq!(next.first_index(), 11);
        assert_eq!((next.last_index, next.last_term), (11, 4));
        assert_eq!(next.hard_state, hs);
    }

    #[test]
    fn a_snapshot_older_than_the_log_is_refused() {
        let w = LogWrite {
            snapshot: Some(SnapshotMetadata {
                index: 3,
                term: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            plan_persist(&state(), &w),
            Err(Error::SnapshotOutOfDate {
                index: 3,
                first_index: 4
            })
        ));
    }

    #[test]
    fn a_write_leaving_commit_beyond_the_log_is_refused() {
        // Truncating down to the commit index is allowed; below it is not.
        let w = write(vec![entry(5, 3)]);
        assert!(plan_persist(&state(), &w).is_ok());
        let w = write(vec![entry(4, 3)]);
        assert!(matches!(
            plan_persist(&state(), &w),
            Err(Error::CommitBeyondLog {
                commit: 5,
                last_index: 4
            })
        ));
    }

    #[test]
    fn an_empty_write_plans_nothing() {
        let empty = LogWrite::default();
        let (plan, next) = plan_persist(&state(), &empty).unwrap();
        assert!(plan.is_empty());
        assert_eq!(next, state());
    }

    #[test]
    fn term_lookup_answers_boundaries_from_memory() {
        let s = state();
        assert_eq!(s.term_lookup(2), TermLookup::Compacted);
        assert_eq!(s.term_lookup(3), TermLookup::Known(1));
        assert_eq!(s.term_lookup(4), TermLookup::OnDisk);
        assert_eq!(s.term_lookup(6), TermLookup::Known(2));
        assert_eq!(s.term_lookup(7), TermLookup::Unavailable);
        assert_eq!(LogState::default().term_lookup(0), TermLookup::Known(0));
        let mut after_snapshot = s.clone();
        after_snapshot.snapshot.index = 1;
        after_snapshot.snapshot.term = 1;
        assert_eq!(after_snapshot.term_lookup(1), TermLookup::Known(1));
        assert_eq!(after_snapshot.term_lookup(0), TermLookup::Compacted);
    }

    #[test]
    fn compaction_plans_mirror_mem_storage() {
        let s = state();
        assert_eq!(plan_compact(&s, 4).unwrap(), CompactPlan::Noop);
        assert_eq!(plan_compact(&s, 2).unwrap(), CompactPlan::Noop);
        assert_eq!(
            plan_compact(&s, 6).unwrap(),
            CompactPlan::Drop { from: 4, to: 6 }
        );
        assert_eq!(
            plan_compact(&s, 7).unwrap(),
            CompactPlan::Drop { from: 4, to: 7 }
        );
        assert!(matches!(
            plan_compact(&s, 8),
            Err(Error::CompactBeyondLog {
                compact_index: 8,
                last_index: 6
            })
        ));
    }
}
