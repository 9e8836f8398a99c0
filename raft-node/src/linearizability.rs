//! Linearizability checker for the client histories recorded by the deterministic fault simulator.
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
//! # The search (Wing & Gong, as improved by Lowe; the algorithm of Porcupine)
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
//!
//! # Budget
//!
//! [`CheckBudget::max_states_per_partition`] bounds the number of configurations explored per partition
//! (each is cached, so it bounds memory too: roughly a kilobyte each for a partition of a few hundred
//! operations). When it runs out the result is [`CheckResult::Unknown`], never `Linearizable`. The
//! expensive histories are long partitions with many unknown operations that can all still take effect,
//! above all unknown increments, whose subsets the search may have to enumerate to match a counter.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// One client operation as submitted to the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Store `value` under `key`; returns [`Ret::Done`].
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` (absent or not); returns [`Ret::Done`].
    Delete { key: Vec<u8> },
    /// Read `key`; returns [`Ret::Value`].
    Get { key: Vec<u8> },
    /// Store `new` if the current value equals `expected` (`None`: the key must be absent);
    /// returns [`Ret::Swapped`].
    Cas {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
    /// Add `delta` to the integer stored as ASCII decimal under `key` (absent = 0); returns [`Ret::Counter`]
    /// with the new value. On a non-integer value, or on overflow, the operation fails without effect.
    Incr { key: Vec<u8>, delta: i64 },
    /// Increment the entity's epoch and remove every key of the entity; returns [`Ret::Epoch`].
    Checkpoint { entity: Vec<u8> },
}

impl Op {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<Vec<u8>>) -> Op {
        Op::Delete { key: key.into() }
    }

    pub fn get(key: impl Into<Vec<u8>>) -> Op {
        Op::Get { key: key.into() }
    }

    pub fn cas(key: impl Into<Vec<u8>>, expected: Option<&[u8]>, new: impl Into<Vec<u8>>) -> Op {
        Op::Cas {
            key: key.into(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.into(),
        }
    }

    pub fn incr(key: impl Into<Vec<u8>>, delta: i64) -> Op {
        Op::Incr {
            key: key.into(),
            delta,
        }
    }

    pub fn checkpoint(entity: impl Into<Vec<u8>>) -> Op {
        Op::Checkpoint {
            entity: entity.into(),
        }
    }

    /// Whether the operation never changes the state.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Op::Get { .. })
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    Done,
    Value(Option<Vec<u8>>),
    Swapped(bool),
    Counter(i64),
    Epoch(u64),
}

/// What the client learned about its operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect, once, between invoke and complete, and returned this.
    Ok(Ret),
    /// It definitely had no effect.
    Failed,
    /// It may or may not have taken effect, at any instant after invoke.
    Unknown,
}

/// One operation of one client, with its real-time interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub client: u64,
    pub op: Op,
    pub invoke: u64,
    /// When the client saw the answer; `None` if it never did.
    pub complete: Option<u64>,
    pub outcome: Outcome,
}

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

/// The entity a key belongs to: the part before its first `/`, unless that `/` is the first byte.
pub fn entity_of(key: &[u8]) -> Option<&[u8]> {
    match key.iter().position(|&b| b == b'/') {
        Some(0) | None => None,
        Some(i) => Some(&key[..i]),
    }
}

/// The sequential specification: values by key and an epoch per entity (0 before any checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Model {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    epochs: BTreeMap<Vec<u8>, u64>,
}

impl Model {
    /// Applies `op` and returns its result, or `None` if the operation fails without effect: `Incr` on a
    /// value that is not an ASCII decimal `i64`, or whose sum overflows (the engine rejects both).
    pub fn apply(&mut self, op: &Op) -> Option<Ret> {
        match op {
            Op::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                Some(Ret::Done)
            }
            Op::Delete { key } => {
                self.values.remove(key);
                Some(Ret::Done)
            }
            Op::Get { key } => Some(Ret::Value(self.values.get(key).cloned())),
            Op::Cas { key, expected, new } => {
                let swapped = self.values.get(key) == expected.as_ref();
                if swapped {
                    self.values.insert(key.clone(), new.clone());
                }
                Some(Ret::Swapped(swapped))
            }
            Op::Incr { key, delta } => self.incr(key, *delta),
            Op::Checkpoint { entity } => self.checkpoint(entity),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.values.get(key).map(Vec::as_slice)
    }

    pub fn epoch(&self, entity: &[u8]) -> u64 {
        self.epochs.get(entity).copied().unwrap_or(0)
    }

    fn incr(&mut self, key: &[u8], delta: i64) -> Option<Ret> {
        let current = match self.values.get(key) {
            None => 0,
            Some(raw) => std::str::from_utf8(raw).ok()?.parse::<i64>().ok()?,
        };
        let value = current.checked_add(delta)?;
        self.values
            .insert(key.to_vec(), value.to_string().into_bytes());
        Some(Ret::Counter(value))
    }

    fn checkpoint(&mut self, entity: &[u8]) -> Option<Ret> {
        let epoch = self.epoch(entity).checked_add(1)?;
        self.epochs.insert(entity.to_vec(), epoch);
        self.values.retain(|key, _| entity_of(key) != Some(entity));
        Some(Ret::Epoch(epoch))
    }
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

/// The independent unit of checking: an entity, or a key that has no entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Partition {
    Entity(Vec<u8>),
    Key(Vec<u8>),
}

impl Partition {
    fn of(op: &Op) -> Partition {
        let key = match op {
            Op::Checkpoint { entity } => return Partition::Entity(entity.clone()),
            Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Get { key }
            | Op::Cas { key, .. }
            | Op::Incr { key, .. } => key,
        };
        match entity_of(key) {
            Some(entity) => Partition::Entity(entity.to_vec()),
            None => Partition::Key(key.clone()),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Entity(entity) => write!(f, "entity {}", Bytes(entity)),
            Partition::Key(key) => write!(f, "key {}", Bytes(key)),
        }
    }
}

/// The events that matter, with their position in the history, grouped by partition.
fn partitions(history: &[Event]) -> BTreeMap<Partition, Vec<(usize, &Event)>> {
    let mut out: BTreeMap<Partition, Vec<(usize, &Event)>> = BTreeMap::new();
    for (index, event) in history.iter().enumerate() {
        let matters = match event.outcome {
            Outcome::Ok(_) => true,
            Outcome::Failed => false,
            Outcome::Unknown => !event.op.is_read_only(),
        };
        if matters {
            out.entry(Partition::of(&event.op))
                .or_default()
                .push((index, event));
        }
    }
    out
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

/// An operation as the search sees it.
struct SearchOp<'h> {
    /// Position in the checked history, for the report.
    index: usize,
    event: &'h Event,
    /// The recorded return value; `None` for an unknown outcome (optional, unconstrained).
    expected: Option<&'h Ret>,
}

impl<'h> SearchOp<'h> {
    fn new(index: usize, event: &'h Event) -> Self {
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

    fn is_definite(&self) -> bool {
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

    fn is_inverted(&self) -> bool {
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

impl fmt::Display for SearchOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.event;
        write!(f, "#{} client {} [{}, ", self.index, e.client, e.invoke)?;
        match (self.expected, e.complete) {
            (Some(_), Some(complete)) => write!(f, "{complete}]")?,
            _ => write!(f, "∞]")?,
        }
        match self.expected {
            Some(ret) => write!(f, " {} -> {}", e.op, ret),
            None => write!(f, " {} -> unknown", e.op),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EntryKind {
    // Declared first so that, at equal times, calls sort before returns (closed intervals).
    Call,
    Return,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    time: u64,
    kind: EntryKind,
    op: usize,
}

/// Entries sorted by time in a doubly linked list whose nodes can be unlinked and relinked in O(1), in LIFO
/// order (dancing links). Slot `len` is the head sentinel, slot `len + 1` the tail sentinel.
struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by_key(|e| (e.time, e.kind, e.op));
        let len = entries.len();
        let order: Vec<usize> = std::iter::once(len)
            .chain(0..len)
            .chain(std::iter::once(len + 1))
            .collect();
        let mut next: Vec<usize> = (0..len + 2).collect();
        let mut prev = next.clone();
        for pair in order.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        EntryList {
            entries,
            next,
            prev,
        }
    }

    fn first(&self) -> usize {
        self.next[self.entries.len()]
    }

    fn next(&self, slot: usize) -> usize {
        self.next[slot]
    }

    /// The entry in `slot`; `None` for the sentinels.
    fn entry(&self, slot: usize) -> Option<Entry> {
        self.entries.get(slot).copied()
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    /// Undoes the latest `unlink(slot)` still in force.
    fn relink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = slot;
        self.prev[next] = slot;
    }

    /// Slot of each operation's call and return entry.
    fn slots(&self, op_count: usize) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
        let (mut calls, mut returns) = (vec![None; op_count], vec![None; op_count]);
        for (slot, entry) in self.entries.iter().enumerate() {
            let table = match entry.kind {
                EntryKind::Call => &mut calls,
                EntryKind::Return => &mut returns,
            };
            table[entry.op] = Some(slot);
        }
        (calls, returns)
    }
}

/// A set of operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(len: usize) -> Self {
        Bitset(vec![0; len.div_ceil(64)])
    }

    fn contains(&self, bit: usize) -> bool {
        self.0[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn insert(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn remove(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }

    fn is_subset_of(&self, other: &Bitset) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(mine, theirs)| mine & !theirs == 0)
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
struct Longest {
    ops: Vec<usize>,
    definite: usize,
    state: Model,
}

enum SearchEnd {
    Linearized,
    Refuted(Longest),
    Exhausted,
}

struct OutOfBudget;

/// The WGL search over one partition (see the module docs).
struct Search<'a, 'h> {
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
    fn new(ops: &'a [SearchOp<'h>]) -> Self {
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

    fn run(&mut self, max_states: u64) -> SearchEnd {
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

/// Lines of the report listed at most, per section.
const REPORT_LINES: usize = 40;

fn describe_refutation(ops: &[SearchOp], longest: &Longest) -> String {
    let definite = ops.iter().filter(|o| o.is_definite()).count();
    let mut out = format!(
        "no linearization of {} operations ({definite} ok, {} unknown)\n\
         longest linearizable prefix: {} of {definite} ok operations\n",
        ops.len(),
        ops.len() - definite,
        longest.definite,
    );
    let skipped = longest.ops.len().saturating_sub(REPORT_LINES);
    if skipped > 0 {
        out.push_str(&format!("  … {skipped} earlier operations\n"));
    }
    for (position, &op) in longest.ops.iter().enumerate().skip(skipped) {
        out.push_str(&format!("  {:>4}. {}\n", position + 1, ops[op]));
    }
    out.push_str(&format!("state after it: {}\n", longest.state));
    let deadline = ops
        .iter()
        .enumerate()
        .filter(|(op, o)| o.is_definite() && !longest.ops.contains(op))
        .min_by_key(|(_, o)| (o.event.complete.unwrap_or(u64::MAX), o.index));
    if let Some((_, o)) = deadline {
        out.push_str(&format!(
            "no continuation linearizes the next deadline: {o}\n"
        ));
    }
    let mut rest: Vec<&SearchOp> = ops
        .iter()
        .enumerate()
        .filter(|(op, _)| !longest.ops.contains(op))
        .map(|(_, o)| o)
        .collect();
    rest.sort_by_key(|o| (o.event.invoke, o.index));
    out.push_str("operations not in it, by invoke time:\n");
    for o in rest.iter().take(REPORT_LINES) {
        out.push_str(&format!("        {o}\n"));
    }
    if rest.len() > REPORT_LINES {
        out.push_str(&format!("  … {} more\n", rest.len() - REPORT_LINES));
    }
    out
}

/// Byte strings shown quoted, with non-printable bytes escaped.
struct Bytes<'a>(&'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value } => write!(f, "put {} = {}", Bytes(key), Bytes(value)),
            Op::Delete { key } => write!(f, "delete {}", Bytes(key)),
            Op::Get { key } => write!(f, "get {}", Bytes(key)),
            Op::Cas {
                key,
                expected: Some(expected),
                new,
            } => {
                write!(
                    f,
                    "cas {} from {} to {}",
                    Bytes(key),
                    Bytes(expected),
                    Bytes(new)
                )
            }
            Op::Cas {
                key,
                expected: None,
                new,
            } => write!(f, "cas {} from absent to {}", Bytes(key), Bytes(new)),
            Op::Incr { key, delta } => write!(f, "incr {} by {delta}", Bytes(key)),
            Op::Checkpoint { entity } => write!(f, "checkpoint {}", Bytes(entity)),
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Done => write!(f, "done"),
            Ret::Value(Some(value)) => write!(f, "value {}", Bytes(value)),
            Ret::Value(None) => write!(f, "absent"),
            Ret::Swapped(true) => write!(f, "swapped"),
            Ret::Swapped(false) => write!(f, "not swapped"),
            Ret::Counter(value) => write!(f, "counter {value}"),
            Ret::Epoch(epoch) => write!(f, "epoch {epoch}"),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (key, value)) in self.values.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}: {}", Bytes(key), Bytes(value))?;
        }
        write!(f, "}} epochs {{")?;
        for (i, (entity, epoch)) in self.epochs.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}: {epoch}", Bytes(entity))?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    // ---- helpers ----

    fn ok(client: u64, invoke: u64, complete: u64, op: Op, ret: Ret) -> Event {
        Event {
            client,
            op,
            invoke,
            complete: Some(complete),
            outcome: Outcome::Ok(ret),
        }
    }

    fn unknown(client: u64, invoke: u64, op: Op) -> Event {
        Event {
            client,
            op,
            invoke,
            complete: None,
            outcome: Outcome::Unknown,
        }
    }

    fn failed(client: u64, invoke: u64, complete: u64, op: Op) -> Event {
        Event {
            client,
            op,
            invoke,
            complete: Some(complete),
            outcome: Outcome::Failed,
        }
    }

    fn value(v: Option<&str>) -> Ret {
        Ret::Value(v.map(|s| s.as_bytes().to_vec()))
    }

    fn verdict(history: &[Event]) -> CheckResult {
        check(history, CheckBudget::default())
    }

    fn assert_accepted(history: &[Event]) {
        assert_eq!(
            verdict(history),
            CheckResult::Linearizable,
            "history: {history:#?}"
        );
    }

    /// Asserts the history is refuted and returns (partition, detail).
    fn assert_rejected(history: &[Event]) -> (String, String) {
        match verdict(history) {
            CheckResult::NotLinearizable { partition, detail } => (partition, detail),
            other => panic!("expected NotLinearizable, got {other:?} for {history:#?}"),
        }
    }

    /// splitmix64: a tiny deterministic generator, so failing seeds reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn percent(&mut self, p: u64) -> bool {
            self.below(100) < p
        }
    }

    /// A random operation on one of `partitions` partitions. Partition `i` is entity `e{i}` (value keys
    /// `e{i}/a`, `e{i}/b`, counter `e{i}/n`), except that the last of several is the entity-less key `solo`.
    /// Counters are only incremented, read, deleted or checkpointed, so they always hold integers.
    fn random_op(rng: &mut Rng, partitions: u64) -> Op {
        let p = rng.below(partitions);
        let val = |rng: &mut Rng| format!("v{}", rng.below(4)).into_bytes();
        if partitions > 1 && p == partitions - 1 {
            return match rng.below(4) {
                0 => Op::put("solo", val(rng)),
                1 => Op::delete("solo"),
                2 => Op::get("solo"),
                _ => Op::Cas {
                    key: b"solo".to_vec(),
                    expected: rng.percent(70).then(|| val(rng)),
                    new: val(rng),
                },
            };
        }
        let entity = format!("e{p}");
        let key = format!("{entity}/{}", if rng.percent(50) { "a" } else { "b" });
        let counter = format!("{entity}/n");
        match rng.below(20) {
            0..=3 => Op::put(key, val(rng)),
            4 => Op::delete(key),
            5..=8 => Op::get(key),
            9..=10 => Op::Cas {
                key: key.into_bytes(),
                expected: rng.percent(70).then(|| val(rng)),
                new: val(rng),
            },
            11..=13 => Op::incr(counter, rng.below(7) as i64 - 2),
            14..=15 => Op::get(counter),
            16 => Op::delete(counter),
            _ => Op::checkpoint(entity),
        }
    }

    /// A concurrent history, linearizable by construction: each op gets a random linearization point in its
    /// interval and the model runs the ops in that order. `Unknown` ops take effect or not (50%), possibly
    /// after their client moved on; `Failed` ops never take effect.
    fn generate(
        rng: &mut Rng,
        count: usize,
        clients: u64,
        partitions: u64,
        unknown_pct: u64,
        failed_pct: u64,
    ) -> Vec<Event> {
        let (mut events, mut points) = (Vec::new(), Vec::new());
        let mut free_at = vec![0u64; clients as usize];
        let mut now = 0;
        for _ in 0..count {
            let client = rng.below(clients);
            let invoke = now.max(free_at[client as usize]);
            now = invoke + rng.below(3);
            let duration = if clients == 1 {
                rng.below(5)
            } else {
                1 + rng.below(30)
            };
            let complete = invoke + duration;
            free_at[client as usize] = complete + 1;
            let op = random_op(rng, partitions);
            let (outcome, point) = if rng.percent(failed_pct) {
                (Outcome::Failed, None)
            } else if rng.percent(unknown_pct) {
                (
                    Outcome::Unknown,
                    rng.percent(50)
                        .then(|| invoke + rng.below(3 * duration + 1)),
                )
            } else {
                (
                    Outcome::Ok(Ret::Done),
                    Some(invoke + rng.below(duration + 1)),
                )
            };
            events.push(Event {
                client,
                op,
                invoke,
                complete: Some(complete),
                outcome,
            });
            points.push(point);
        }
        fill_returns(&mut events, &points);
        events
    }

    /// Applies the ops that took effect in linearization-point order and records the model's results.
    fn fill_returns(events: &mut [Event], points: &[Option<u64>]) {
        let mut order: Vec<(u64, usize)> = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (p, i)))
            .collect();
        order.sort_unstable();
        let mut model = Model::default();
        for (_, i) in order {
            let event = &mut events[i];
            let ret = model.apply(&event.op).expect("generated ops always apply");
            if matches!(event.outcome, Outcome::Ok(_)) {
                event.outcome = Outcome::Ok(ret);
            }
        }
    }

    /// A sequential, all-`Ok` history: one op at a time, strictly disjoint intervals.
    fn sequential(rng: &mut Rng, count: usize, partitions: u64) -> Vec<Event> {
        let mut model = Model::default();
        (0..count as u64)
            .map(|i| {
                let op = random_op(rng, partitions);
                let ret = model.apply(&op).expect("generated ops always apply");
                ok(i % 3, 10 * i, 10 * i + 5, op, ret)
            })
            .collect()
    }

    /// A different return value of the same kind, or `None` for `Done` (nothing to perturb).
    fn perturb(ret: &Ret, rng: &mut Rng) -> Option<Ret> {
        Some(match ret {
            Ret::Done => return None,
            Ret::Value(None) => Ret::Value(Some(b"phantom".to_vec())),
            Ret::Value(Some(_)) if rng.percent(50) => Ret::Value(None),
            Ret::Value(Some(v)) => Ret::Value(Some([v.as_slice(), b"x"].concat())),
            Ret::Swapped(s) => Ret::Swapped(!s),
            Ret::Counter(n) => Ret::Counter(n + 1 + rng.below(3) as i64),
            Ret::Epoch(e) => Ret::Epoch(e + 1),
        })
    }

    // ---- histories that must be accepted ----

    #[test]
    fn sequential_history_is_accepted() {
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(2, 2, 3, Op::get("a/x"), value(Some("1"))),
            ok(1, 4, 5, Op::cas("a/x", Some(b"1"), "2"), Ret::Swapped(true)),
            ok(
                2,
                6,
                7,
                Op::cas("a/x", Some(b"1"), "3"),
                Ret::Swapped(false),
            ),
            ok(1, 8, 9, Op::incr("a/n", 5), Ret::Counter(5)),
            ok(1, 10, 11, Op::incr("a/n", -2), Ret::Counter(3)),
            ok(2, 12, 13, Op::get("a/n"), value(Some("3"))),
            ok(2, 14, 15, Op::delete("a/x"), Ret::Done),
            ok(1, 16, 17, Op::get("a/x"), value(None)),
            ok(1, 18, 19, Op::cas("a/x", None, "z"), Ret::Swapped(true)),
            ok(2, 20, 21, Op::checkpoint("a"), Ret::Epoch(1)),
            ok(2, 22, 23, Op::checkpoint("a"), Ret::Epoch(2)),
            ok(1, 24, 25, Op::get("a/x"), value(None)),
        ];
        assert_accepted(&h);
    }

    #[test]
    fn concurrent_puts_may_be_seen_in_either_order() {
        let puts = || {
            vec![
                ok(1, 0, 10, Op::put("k", "1"), Ret::Done),
                ok(2, 1, 9, Op::put("k", "2"), Ret::Done),
            ]
        };
        for seen in ["1", "2"] {
            let mut h = puts();
            h.push(ok(3, 11, 12, Op::get("k"), value(Some(seen))));
            assert_accepted(&h);
        }
        // A read overlapping both may also see neither.
        let mut h = puts();
        h.push(ok(3, 2, 3, Op::get("k"), value(None)));
        assert_accepted(&h);
        // But once both completed, reads cannot flip between them.
        let mut h = puts();
        h.push(ok(3, 11, 12, Op::get("k"), value(Some("2"))));
        h.push(ok(3, 13, 14, Op::get("k"), value(Some("1"))));
        assert_rejected(&h);
    }

    #[test]
    fn unknown_put_may_or_may_not_take_effect() {
        let base = || {
            vec![
                ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
                unknown(2, 2, Op::put("k", "2")),
            ]
        };
        for seen in ["1", "2"] {
            let mut h = base();
            h.push(ok(3, 3, 4, Op::get("k"), value(Some(seen))));
            assert_accepted(&h);
        }
        // It may take effect late, after reads that did not see it.
        let mut h = base();
        h.push(ok(3, 3, 4, Op::get("k"), value(Some("1"))));
        h.push(ok(3, 50, 51, Op::get("k"), value(Some("2"))));
        assert_accepted(&h);
        // Once seen it has happened: it cannot be undone.
        let mut h = base();
        h.push(ok(3, 3, 4, Op::get("k"), value(Some("2"))));
        h.push(ok(3, 5, 6, Op::get("k"), value(Some("1"))));
        assert_rejected(&h);
        // It cannot take effect before it was invoked.
        let h = [
            ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
            ok(3, 2, 3, Op::get("k"), value(Some("2"))),
            unknown(2, 4, Op::put("k", "2")),
        ];
        assert_rejected(&h);
    }

    #[test]
    fn checkpoint_removes_the_entity_keys_only() {
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(1, 2, 3, Op::put("a/y/z", "2"), Ret::Done),
            ok(1, 4, 5, Op::put("a", "plain"), Ret::Done),
            ok(1, 6, 7, Op::put("b/x", "3"), Ret::Done),
            ok(2, 8, 9, Op::checkpoint("a"), Ret::Epoch(1)),
            ok(3, 10, 11, Op::get("a/x"), value(None)),
            ok(3, 12, 13, Op::get("a/y/z"), value(None)),
            ok(3, 14, 15, Op::get("a"), value(Some("plain"))),
            ok(3, 16, 17, Op::get("b/x"), value(Some("3"))),
            ok(3, 18, 19, Op::incr("a/n", 1), Ret::Counter(1)),
        ];
        assert_accepted(&h);
    }

    #[test]
    fn unknown_incr_leaves_the_counter_at_one_of_the_possible_values() {
        let history = |last: i64| {
            vec![
                ok(1, 0, 1, Op::incr("c/n", 1), Ret::Counter(1)),
                unknown(2, 2, Op::incr("c/n", 10)),
                ok(1, 3, 4, Op::incr("c/n", 1), Ret::Counter(last)),
            ]
        };
        assert_accepted(&history(2));
        assert_accepted(&history(12));
        assert_rejected(&history(7));
        assert_rejected(&history(1));
    }

    #[test]
    fn unknown_only_partitions_and_unknown_reads_are_accepted() {
        let h = [
            unknown(1, 0, Op::put("u/x", "1")),
            unknown(2, 1, Op::get("u/x")),
            unknown(2, 2, Op::checkpoint("u")),
            ok(3, 5, 6, Op::get("v/x"), value(None)),
        ];
        assert_accepted(&h);
        assert_accepted(&[]);
    }

    #[test]
    fn operations_touching_at_one_instant_are_concurrent() {
        let h = [
            ok(1, 0, 5, Op::put("k", "1"), Ret::Done),
            ok(2, 5, 6, Op::get("k"), value(None)),
        ];
        assert_accepted(&h);
        let h = [
            ok(1, 0, 5, Op::put("k", "1"), Ret::Done),
            ok(2, 6, 7, Op::get("k"), value(None)),
        ];
        assert_rejected(&h);
    }

    // ---- histories that must be rejected ----

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        let h = [
            ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
            ok(1, 2, 3, Op::put("k", "2"), Ret::Done),
            ok(2, 4, 5, Op::get("k"), value(Some("1"))),
        ];
        let (partition, detail) = assert_rejected(&h);
        assert_eq!(partition, "key \"k\"");
        assert!(
            detail.contains("longest linearizable prefix: 2 of 3"),
            "{detail}"
        );
        assert!(
            detail.contains("#2 client 2 [4, 5] get \"k\" -> value \"1\""),
            "{detail}"
        );
        assert!(
            detail.contains("state after it: {\"k\": \"2\"}"),
            "{detail}"
        );
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        let h = [
            ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
            ok(2, 0, 5, Op::get("k"), value(Some("9"))),
        ];
        assert_rejected(&h);
    }

    #[test]
    fn two_sequential_incrs_both_returning_one_are_rejected() {
        let h = [
            ok(1, 0, 1, Op::incr("c/n", 1), Ret::Counter(1)),
            ok(2, 2, 3, Op::incr("c/n", 1), Ret::Counter(1)),
        ];
        assert_rejected(&h);
    }

    #[test]
    fn lost_update_visible_through_a_later_read_is_rejected() {
        let h = [
            ok(1, 0, 10, Op::incr("c/n", 1), Ret::Counter(1)),
            ok(2, 0, 10, Op::incr("c/n", 1), Ret::Counter(2)),
            ok(3, 11, 12, Op::get("c/n"), value(Some("1"))),
        ];
        assert_rejected(&h);
        let h = [
            ok(1, 0, 10, Op::put("k", "1"), Ret::Done),
            ok(2, 0, 10, Op::cas("k", Some(b"1"), "2"), Ret::Swapped(true)),
            ok(3, 11, 12, Op::get("k"), value(Some("1"))),
        ];
        assert_rejected(&h);
    }

    #[test]
    fn cas_succeeding_twice_on_the_same_expected_value_is_rejected() {
        let h = [
            ok(1, 0, 1, Op::put("k", "a"), Ret::Done),
            ok(1, 2, 3, Op::cas("k", Some(b"a"), "b"), Ret::Swapped(true)),
            ok(2, 4, 5, Op::cas("k", Some(b"a"), "c"), Ret::Swapped(true)),
        ];
        assert_rejected(&h);
    }

    #[test]
    fn read_after_completed_checkpoint_seeing_the_old_value_is_rejected() {
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(2, 2, 3, Op::checkpoint("a"), Ret::Epoch(1)),
            ok(3, 4, 5, Op::get("a/x"), value(Some("1"))),
        ];
        assert_eq!(assert_rejected(&h).0, "entity \"a\"");
        // Concurrent with the checkpoint, the old value is fine.
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(2, 2, 6, Op::checkpoint("a"), Ret::Epoch(1)),
            ok(3, 4, 5, Op::get("a/x"), value(Some("1"))),
        ];
        assert_accepted(&h);
    }

    #[test]
    fn failed_put_whose_value_is_read_later_is_rejected() {
        let h = [
            failed(1, 0, 1, Op::put("k", "1")),
            ok(2, 2, 3, Op::get("k"), value(Some("1"))),
        ];
        assert_rejected(&h);
        let h = [
            failed(1, 0, 1, Op::put("k", "1")),
            ok(2, 2, 3, Op::get("k"), value(None)),
        ];
        assert_accepted(&h);
    }

    #[test]
    fn ok_without_completion_is_still_checked() {
        let pending = |seen| Event {
            client: 2,
            op: Op::get("k"),
            invoke: 2,
            complete: None,
            outcome: Outcome::Ok(value(Some(seen))),
        };
        assert_accepted(&[ok(1, 0, 1, Op::put("k", "1"), Ret::Done), pending("1")]);
        assert_rejected(&[ok(1, 0, 1, Op::put("k", "1"), Ret::Done), pending("2")]);
    }

    #[test]
    fn ok_op_completing_before_its_invoke_is_rejected() {
        let (_, detail) = assert_rejected(&[ok(1, 5, 4, Op::put("k", "1"), Ret::Done)]);
        assert!(
            detail.contains("completes before it is invoked"),
            "{detail}"
        );
    }

    #[test]
    fn incr_on_a_non_integer_can_only_fail() {
        let mut model = Model::default();
        model.apply(&Op::put("k", "abc"));
        assert_eq!(model.apply(&Op::incr("k", 1)), None);
        assert_eq!(model.get(b"k"), Some(&b"abc"[..]));
        model.apply(&Op::put("k", i64::MAX.to_string()));
        assert_eq!(model.apply(&Op::incr("k", 1)), None);
        let put = ok(1, 0, 1, Op::put("k", "abc"), Ret::Done);
        assert_rejected(&[put.clone(), ok(2, 2, 3, Op::incr("k", 1), Ret::Counter(1))]);
        assert_accepted(&[
            put.clone(),
            unknown(2, 2, Op::incr("k", 1)),
            ok(3, 4, 5, Op::get("k"), value(Some("abc"))),
        ]);
        assert_accepted(&[put, failed(2, 2, 3, Op::incr("k", 1))]);
    }

    #[test]
    fn model_checkpoint_bumps_the_epoch_and_clears_the_entity() {
        let mut model = Model::default();
        for key in ["p/x", "p/y/z", "p", "q/x", "/p"] {
            model.apply(&Op::put(key, "v"));
        }
        assert_eq!(model.epoch(b"p"), 0);
        assert_eq!(model.apply(&Op::checkpoint("p")), Some(Ret::Epoch(1)));
        assert_eq!(model.epoch(b"p"), 1);
        let left: Vec<&[u8]> = ["p/x", "p/y/z", "p", "q/x", "/p"]
            .iter()
            .map(|k| k.as_bytes())
            .filter(|k| model.get(k).is_some())
            .collect();
        assert_eq!(left, [&b"p"[..], b"q/x", b"/p"]);
    }

    #[test]
    fn entity_of_splits_at_the_first_slash() {
        assert_eq!(entity_of(b"player:42/pos"), Some(&b"player:42"[..]));
        assert_eq!(entity_of(b"a/b/c"), Some(&b"a"[..]));
        assert_eq!(entity_of(b"plain"), None);
        assert_eq!(entity_of(b"/leading"), None);
        assert_eq!(
            Partition::of(&Op::get("/leading")),
            Partition::Key(b"/leading".to_vec())
        );
        assert_eq!(
            Partition::of(&Op::checkpoint("a")),
            Partition::of(&Op::get("a/x"))
        );
        assert_ne!(Partition::of(&Op::get("a")), Partition::of(&Op::get("a/x")));
    }

    #[test]
    fn violation_is_reported_for_its_own_partition() {
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(1, 0, 1, Op::put("b/x", "1"), Ret::Done),
            ok(2, 2, 3, Op::get("a/x"), value(Some("1"))),
            ok(2, 2, 3, Op::get("b/x"), value(Some("2"))),
        ];
        let (partition, detail) = assert_rejected(&h);
        assert_eq!(partition, "entity \"b\"");
        assert!(detail.contains("get \"b/x\" -> value \"2\""), "{detail}");
        assert!(!detail.contains("a/x"), "{detail}");
    }

    #[test]
    fn exhausted_budget_is_unknown_never_linearizable() {
        let mut rng = Rng(7);
        let h = generate(&mut rng, 60, 4, 1, 10, 0);
        assert_eq!(verdict(&h), CheckResult::Linearizable);
        let tiny = CheckBudget {
            max_states_per_partition: 3,
        };
        assert_eq!(
            check(&h, tiny),
            CheckResult::Unknown {
                partition: "entity \"e0\"".to_string()
            }
        );
        // A refutation elsewhere still wins over an exhausted budget.
        let mut h = h;
        h.push(ok(9, 0, 1, Op::get("zz"), value(Some("never"))));
        assert!(
            matches!(check(&h, tiny), CheckResult::NotLinearizable { partition, .. } if partition == "key \"zz\"")
        );
    }

    // ---- generated histories ----

    #[test]
    fn generated_sequential_histories_are_accepted() {
        for seed in 0..300 {
            let h = sequential(&mut Rng(seed), 60, 3);
            assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
        }
    }

    #[test]
    fn generated_concurrent_histories_with_unknown_and_failed_outcomes_are_accepted() {
        for seed in 0..200 {
            let h = generate(&mut Rng(seed), 120, 5, 3, 10, 5);
            assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
        }
    }

    #[test]
    fn perturbing_one_return_of_a_sequential_history_is_rejected() {
        let mut perturbed = 0;
        for seed in 0..300 {
            let mut rng = Rng(seed);
            let mut h = sequential(&mut rng, 40, 3);
            let candidates: Vec<usize> = (0..h.len())
                .filter(|&i| !matches!(h[i].outcome, Outcome::Ok(Ret::Done)))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let i = candidates[rng.below(candidates.len() as u64) as usize];
            let Outcome::Ok(original) = h[i].outcome.clone() else {
                unreachable!("sequential is all Ok")
            };
            let changed = perturb(&original, &mut rng).expect("candidates return more than Done");
            assert_ne!(changed, original, "seed {seed}");
            h[i].outcome = Outcome::Ok(changed);
            match verdict(&h) {
                CheckResult::NotLinearizable { partition, .. } => {
                    assert_eq!(
                        partition,
                        Partition::of(&h[i].op).to_string(),
                        "seed {seed}"
                    );
                }
                other => panic!("seed {seed}: perturbing #{i} gave {other:?}"),
            }
            perturbed += 1;
        }
        assert!(
            perturbed > 250,
            "only {perturbed} histories had a return to perturb"
        );
    }

    /// Whether some order of a subset of `events` (all `Ok` ones, any `Unknown` ones) respects real time and
    /// the model: tries every next op whose start no pending `Ok` op's end precedes. Exponential; tiny inputs.
    fn brute_force(events: &[&Event], done: u64, state: &Model) -> bool {
        let pending = |i: usize| done & (1 << i) == 0;
        let definite = |e: &Event| matches!(e.outcome, Outcome::Ok(_));
        if (0..events.len()).all(|i| !pending(i) || !definite(events[i])) {
            return true;
        }
        (0..events.len()).filter(|&i| pending(i)).any(|i| {
            let x = events[i];
            let blocked = (0..events.len()).any(|j| {
                pending(j)
                    && definite(events[j])
                    && events[j].complete.is_some_and(|c| c < x.invoke)
            });
            let mut next = state.clone();
            let fits = match (next.apply(&x.op), &x.outcome) {
                (Some(ret), Outcome::Ok(expected)) => ret == *expected,
                (Some(_), _) => true,
                (None, _) => false,
            };
            !blocked && fits && brute_force(events, done | (1 << i), &next)
        })
    }

    #[test]
    fn agrees_with_brute_force_on_small_histories() {
        let (mut rejected, mut accepted) = (0, 0);
        for seed in 0..2_000 {
            let mut rng = Rng(seed);
            let mut h = generate(&mut rng, 8, 4, 1, 35, 10);
            for event in h.iter_mut() {
                if let Outcome::Ok(ret) = &event.outcome {
                    if rng.percent(15) {
                        if let Some(changed) = perturb(ret, &mut rng) {
                            event.outcome = Outcome::Ok(changed);
                        }
                    }
                }
            }
            let kept: Vec<&Event> = h.iter().filter(|e| e.outcome != Outcome::Failed).collect();
            let expected = brute_force(&kept, 0, &Model::default());
            let got = verdict(&h);
            assert_eq!(
                got == CheckResult::Linearizable,
                expected,
                "seed {seed}: {got:?} for {h:#?}"
            );
            if expected {
                accepted += 1
            } else {
                rejected += 1
            }
        }
        println!("brute force agreed on {accepted} accepted and {rejected} rejected histories");
        assert!(
            accepted > 300 && rejected > 300,
            "{accepted} accepted, {rejected} rejected"
        );
    }

    #[test]
    fn two_thousand_ops_over_ten_partitions_check_quickly() {
        let h = generate(&mut Rng(2024), 2_000, 5, 10, 5, 5);
        let started = Instant::now();
        let result = verdict(&h);
        println!("checked {} events in {:?}", h.len(), started.elapsed());
        assert_eq!(result, CheckResult::Linearizable);
    }
}
