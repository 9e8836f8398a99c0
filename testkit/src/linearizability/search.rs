//! The search (Wing & Gong, as improved by Lowe; the algorithm of Porcupine) over one partition.
//!
//! A partition's `Ok` operations become *call* and *return* entries sorted by time (calls first at equal
//! times); its unknown operations become call entries only, in a second list. From the current node —
//! the operations linearized so far and the model state they produce — the candidates are the `Ok` calls
//! that come before the first pending return (an operation that has not returned yet cannot be forced after
//! one that has), then the unknown calls invoked no later than that return. Trying a candidate applies it
//! to a clone of the state; if the model returns the recorded value and the resulting configuration is new
//! (see the cache below), the search descends: the operation's entries are unlinked from their list in
//! O(1) (dancing links) and the previous state is pushed on a stack. When no candidate remains, the search
//! backtracks: pop, restore the state, relink, and try the next candidate. It succeeds as soon as every
//! `Ok` operation is linearized, and fails when it must backtrack from the empty stack.
//!
//! Pruning. Every order the search accepts is checked step by step, so pruning can never make it accept a
//! wrong history; each rule below only skips orders when another one that it does explore would do.
//!
//! - **Cache** (Lowe): configurations are remembered by (`Ok` operations done, state, context) with the
//!   sets of unknown operations used; a configuration whose used set contains a remembered one is skipped,
//!   since the remembered one has every future it has (unknown operations left unused stay optional).
//! - **Order**: `Ok` candidates are tried before unknown ones, which finds a correct history's
//!   linearization with little backtracking. This only orders, it prunes nothing.
//! - **Unknown operations**, the expensive part (their subsets multiply the configurations):
//!   an unknown operation that would leave the state unchanged is not tried; of several pending unknown
//!   operations with the identical `Op`, only the earliest is tried (they are interchangeable); an unknown
//!   operation must be followed directly by an operation that overlaps it (same key, or a checkpoint on
//!   either side); and an operation that would reach the same state without the unknown operation just
//!   before it is not tried there (that unknown operation was redundant).
//!
//! Why nothing is lost: take a linearization with the fewest unknown operations and, among those, with its
//! unknown operations as late as possible. It has no redundant or state-preserving unknown operation (drop
//! it: fewer). An unknown operation followed by one that does not overlap it commutes with it and could
//! move later; in this model that leaves, before each `Ok` operation, only checkpoints and then operations
//! on that operation's key, which overlap in turn. Identical unknown operations can be renamed to use the
//! earliest first. The cache context (footprint of a trailing unknown operation and the state before it)
//! is all the rules look at besides the state and the sets, so a skipped configuration has no rule-abiding
//! future that the remembered one lacks. A test compares the checker with exhaustive enumeration.

mod bitset;
mod entry_list;

use std::collections::HashMap;

use super::model::{Event, Model, Op, Outcome, Ret};
use bitset::Bitset;
use entry_list::{Entry, EntryKind, EntryList};

/// An operation as the search sees it.
pub(super) struct SearchOp<'h> {
    /// Position in the checked history, for the report.
    pub(super) index: usize,
    pub(super) event: &'h Event,
    /// The recorded return value; `None` for an unknown outcome (optional, unconstrained).
    pub(super) expected: Option<&'h Ret>,
}

impl<'h> SearchOp<'h> {
    pub(super) fn new(index: usize, event: &'h Event) -> Self {
        let expected = match &event.outcome {
            Outcome::Ok(ret) => Some(ret),
            Outcome::Failed | Outcome::Unknown => None,
        };
        SearchOp {
            index,
            event,
            expected,
        }
    }

    pub(super) fn is_definite(&self) -> bool {
        self.expected.is_some()
    }

    fn footprint(&self) -> Footprint<'h> {
        let event: &'h Event = self.event;
        match &event.op {
            Op::Checkpoint { .. } => Footprint::Entity,
            Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Get { key }
            | Op::Cas { key, .. }
            | Op::Incr { key, .. } => Footprint::Key(key),
        }
    }

    pub(super) fn is_inverted(&self) -> bool {
        self.is_definite()
            && self
                .event
                .complete
                .is_some_and(|complete| complete < self.event.invoke)
    }

    /// The state after this operation from `state`, if it can take effect there with its recorded result.
    fn step(&self, state: &Model) -> Option<Model> {
        let mut next = state.clone();
        let ret = next.apply(&self.event.op)?;
        match self.expected {
            Some(expected) if *expected != ret => None,
            _ => Some(next),
        }
    }
}

/// What an operation touches within its partition: one key, or (a checkpoint) the whole entity.
/// Operations whose footprints do not overlap commute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Footprint<'h> {
    Key(&'h [u8]),
    Entity,
}

impl Footprint<'_> {
    fn overlaps(self, other: Footprint) -> bool {
        match (self, other) {
            (Footprint::Key(mine), Footprint::Key(theirs)) => mine == theirs,
            _ => true,
        }
    }
}

/// Where the search looks for its next candidate.
#[derive(Clone, Copy)]
enum Cursor {
    /// Scanning the `Ok` operations' entries from this slot.
    Definite(usize),
    /// Scanning unknown operations from this slot, up to those invoked at `bound` (the first pending return).
    Optional { slot: usize, bound: u64 },
}

/// What the pruning rules look at besides the state: after an unknown operation, its footprint and the
/// state before it.
type Context<'h> = (Footprint<'h>, Model);

/// A descent of the search: the operation linearized and what it replaced.
struct Frame {
    op: usize,
    state: Model,
}

/// The operations of the longest linearizable prefix (most `Ok` operations) and the state after it.
#[derive(Default)]
pub(super) struct Longest {
    pub(super) ops: Vec<usize>,
    pub(super) definite: usize,
    pub(super) state: Model,
}

pub(super) enum SearchEnd {
    Linearized,
    Refuted(Longest),
    Exhausted,
}

struct OutOfBudget;

/// The WGL search over one partition (see the module docs).
pub(super) struct Search<'a, 'h> {
    ops: &'a [SearchOp<'h>],
    definite: EntryList,
    optional: EntryList,
    /// Slot of each operation's call entry (in its own list) and, for `Ok` operations, of its return entry.
    call_slot: Vec<Option<usize>>,
    return_slot: Vec<Option<usize>>,
    /// For an unknown operation, the previous unknown operation (by invoke) with the identical `Op`.
    twin_before: Vec<Option<usize>>,
    state: Model,
    /// The `Ok` operations linearized so far.
    done: Bitset,
    /// The unknown operations linearized so far.
    used: Bitset,
    /// Configurations already explored: by (`done`, state, context), the minimal `used` sets seen.
    seen: HashMap<(Bitset, Model, Option<Context<'h>>), Vec<Bitset>>,
    stack: Vec<Frame>,
    definite_total: usize,
    definite_left: usize,
    explored: u64,
    longest: Longest,
}

impl<'a, 'h> Search<'a, 'h> {
    pub(super) fn new(ops: &'a [SearchOp<'h>]) -> Self {
        let (mut definite, mut optional) = (Vec::new(), Vec::new());
        for (op, o) in ops.iter().enumerate() {
            let call = Entry {
                time: o.event.invoke,
                kind: EntryKind::Call,
                op,
            };
            if o.is_definite() {
                let time = o.event.complete.unwrap_or(u64::MAX);
                definite.extend([
                    call,
                    Entry {
                        time,
                        kind: EntryKind::Return,
                        op,
                    },
                ]);
            } else {
                optional.push(call);
            }
        }
        let definite_total = definite.len() / 2;
        let (definite, optional) = (EntryList::new(definite), EntryList::new(optional));
        let (mut call_slot, return_slot) = definite.slots(ops.len());
        for (op, slot) in optional.slots(ops.len()).0.into_iter().enumerate() {
            if slot.is_some() {
                call_slot[op] = slot;
            }
        }
        let twin_before = twins(ops, &optional);
        Search {
            ops,
            definite,
            optional,
            call_slot,
            return_slot,
            twin_before,
            state: Model::default(),
            done: Bitset::new(ops.len()),
            used: Bitset::new(ops.len()),
            seen: HashMap::new(),
            stack: Vec::new(),
            definite_total,
            definite_left: definite_total,
            explored: 0,
            longest: Longest::default(),
        }
    }

    pub(super) fn run(&mut self, max_states: u64) -> SearchEnd {
        let mut cursor = Cursor::Definite(self.definite.first());
        while self.definite_left > 0 {
            let (candidate, skip) = match cursor {
                Cursor::Definite(slot) => match self.definite.entry(slot) {
                    Some(Entry {
                        kind: EntryKind::Call,
                        op,
                        ..
                    }) => (op, Cursor::Definite(self.definite.next(slot))),
                    // A pending return (or the end): no later call is a candidate; try the unknown ones.
                    _ => {
                        cursor = self.optional_cursor(self.optional.first());
                        continue;
                    }
                },
                Cursor::Optional { slot, bound } => match self.optional.entry(slot) {
                    Some(entry) if entry.time <= bound => (
                        entry.op,
                        Cursor::Optional {
                            slot: self.optional.next(slot),
                            bound,
                        },
                    ),
                    _ => match self.backtrack() {
                        Some(op) => {
                            cursor = self.cursor_after(op);
                            continue;
                        }
                        None => return SearchEnd::Refuted(std::mem::take(&mut self.longest)),
                    },
                },
            };
            cursor = match self.try_linearize(candidate, max_states) {
                Ok(true) => Cursor::Definite(self.definite.first()),
                Ok(false) => skip,
                Err(OutOfBudget) => return SearchEnd::Exhausted,
            };
        }
        SearchEnd::Linearized
    }

    /// Descends by linearizing `op` next, if its result matches and the configuration is new.
    fn try_linearize(&mut self, op: usize, max_states: u64) -> Result<bool, OutOfBudget> {
        let ops = self.ops;
        let o = &ops[op];
        if self.twin_before[op].is_some_and(|twin| !self.used.contains(twin)) {
            return Ok(false);
        }
        if self
            .obligation()
            .is_some_and(|pending| !pending.overlaps(o.footprint()))
        {
            return Ok(false);
        }
        let Some(state) = o.step(&self.state) else {
            return Ok(false);
        };
        if (!o.is_definite() && state == self.state) || self.absorbs_last(o, &state) {
            return Ok(false);
        }
        self.mark(op, true);
        let context = (!o.is_definite()).then(|| (o.footprint(), self.state.clone()));
        let new = self.remember(&state, context);
        if !new {
            self.mark(op, false);
            return Ok(false);
        }
        self.explored += 1;
        if self.explored > max_states {
            return Err(OutOfBudget);
        }
        let state = std::mem::replace(&mut self.state, state);
        self.stack.push(Frame { op, state });
        self.lift(op);
        if o.is_definite() {
            self.definite_left -= 1;
            self.note_progress();
        }
        Ok(true)
    }

    /// Adds `op` to, or removes it from, the linearized sets.
    fn mark(&mut self, op: usize, linearized: bool) {
        let set = if self.ops[op].is_definite() {
            &mut self.done
        } else {
            &mut self.used
        };
        if linearized {
            set.insert(op);
        } else {
            set.remove(op);
        }
    }

    /// Records the configuration (`done`, `state`, `context`, `used`); false if it is dominated by one
    /// already explored.
    ///
    /// A configuration with the same `Ok` operations, state and context but a subset of the unknown
    /// operations used has every future this one has (unused unknown operations stay optional candidates),
    /// so if that one was explored this one need not be. Supersets of the new entry are dropped.
    fn remember(&mut self, state: &Model, context: Option<Context<'h>>) -> bool {
        let minimal = self
            .seen
            .entry((self.done.clone(), state.clone(), context))
            .or_default();
        if minimal.iter().any(|used| used.is_subset_of(&self.used)) {
            return false;
        }
        minimal.retain(|used| !self.used.is_subset_of(used));
        minimal.push(self.used.clone());
        true
    }

    /// The footprint the next operation must overlap: that of the last one linearized, if it was unknown.
    fn obligation(&self) -> Option<Footprint<'h>> {
        let last = &self.ops[self.stack.last()?.op];
        (!last.is_definite()).then(|| last.footprint())
    }

    /// Whether `o`, reaching `state`, would reach it just as well without the last operation linearized,
    /// when that one was unknown: then that unknown operation is redundant here.
    fn absorbs_last(&self, o: &SearchOp, state: &Model) -> bool {
        match self.stack.last() {
            Some(frame) if !self.ops[frame.op].is_definite() => {
                o.step(&frame.state).as_ref() == Some(state)
            }
            _ => false,
        }
    }

    /// Undoes the latest descent; returns the operation it had linearized, or `None` at the root.
    fn backtrack(&mut self) -> Option<usize> {
        let frame = self.stack.pop()?;
        self.state = frame.state;
        self.mark(frame.op, false);
        self.unlift(frame.op);
        if self.ops[frame.op].is_definite() {
            self.definite_left += 1;
        }
        Some(frame.op)
    }

    /// Where to resume after backtracking over `op`: the candidate after it at the same node.
    fn cursor_after(&self, op: usize) -> Cursor {
        match self.call_slot[op] {
            Some(slot) if self.ops[op].is_definite() => Cursor::Definite(self.definite.next(slot)),
            Some(slot) => self.optional_cursor(self.optional.next(slot)),
            None => self.optional_cursor(self.optional.first()),
        }
    }

    fn optional_cursor(&self, slot: usize) -> Cursor {
        Cursor::Optional {
            slot,
            bound: self.first_pending_return(),
        }
    }

    /// Time of the earliest return entry still linked: no call after it can be linearized before it.
    fn first_pending_return(&self) -> u64 {
        let mut slot = self.definite.first();
        while let Some(entry) = self.definite.entry(slot) {
            if entry.kind == EntryKind::Return {
                return entry.time;
            }
            slot = self.definite.next(slot);
        }
        u64::MAX
    }

    fn lift(&mut self, op: usize) {
        if let Some(slot) = self.call_slot[op] {
            self.list_of(op).unlink(slot);
        }
        if let Some(slot) = self.return_slot[op] {
            self.definite.unlink(slot);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(slot) = self.return_slot[op] {
            self.definite.relink(slot);
        }
        if let Some(slot) = self.call_slot[op] {
            self.list_of(op).relink(slot);
        }
    }

    fn list_of(&mut self, op: usize) -> &mut EntryList {
        if self.ops[op].is_definite() {
            &mut self.definite
        } else {
            &mut self.optional
        }
    }

    fn note_progress(&mut self) {
        let definite = self.definite_total - self.definite_left;
        if definite > self.longest.definite {
            self.longest = Longest {
                ops: self.stack.iter().map(|frame| frame.op).collect(),
                definite,
                state: self.state.clone(),
            };
        }
    }
}

/// For each unknown operation, the one before it in `optional` (sorted by invoke) with an identical `Op`.
///
/// Two pending unknown operations with the same `Op` that can both be linearized are interchangeable: they
/// have no deadline and stay candidates for the rest of the path. So the search only ever linearizes the
/// earliest pending one of such a group; the ones it used always form a prefix of the group, and symmetric
/// orders meet in the cache instead of multiplying.
fn twins(ops: &[SearchOp], optional: &EntryList) -> Vec<Option<usize>> {
    let mut last: HashMap<&Op, usize> = HashMap::new();
    let mut out = vec![None; ops.len()];
    let mut slot = optional.first();
    while let Some(entry) = optional.entry(slot) {
        out[entry.op] = last.insert(&ops[entry.op].event.op, entry.op);
        slot = optional.next(slot);
    }
    out
}

#[cfg(test)]
mod tests;
