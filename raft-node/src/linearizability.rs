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
mod tests;
