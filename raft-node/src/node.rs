//! The node core: the one owner of `RawNode`, the log storage, the state machine and the commit clock.
//!
//! `Node` is driven from outside, one call at a time — [`Node::handle`] for commands, [`Node::step`] for
//! Raft messages, [`Node::tick`] for time, [`Node::flush_proposals`] and [`Node::process_ready`] for the
//! work. The production loop ([`crate::runner`]) drives it from one thread; the simulator drives many nodes
//! deterministically from one test thread. Nothing else touches `RawNode`.
//!
//! Reply rules (what a client can conclude):
//! * `Ok` — applied; the reply carries the state machine's result.
//! * [`Error::NotLeader`], [`Error::Dropped`], [`Error::Overloaded`] — definitely not applied; safe to retry.
//!   A proposal is `Dropped` only when its fate is proven: the committed entry at its log index has another
//!   term, or a later committed entry has a higher term than the proposal's (terms never decrease along a
//!   log, so its slot went to another entry).
//! * [`Error::Timeout`], [`Error::ShuttingDown`], [`Error::OutcomeUnknown`] for a proposal — outcome
//!   unknown: it may have been or still be applied. `OutcomeUnknown` settles a proposal whose slot this
//!   node passed without applying it itself (a snapshot covered it, or the state machine had it already):
//!   applied, but its result is lost, or not provably either way.
//! * [`Error::Stopped`] — the command never reached raft (the loop is gone or stopping): not applied.
//!
//! Every proposal is settled by its identity, (index, term): see [`fate`].
//! * [`Error::NoSpace`] — refused before proposing: the node's disk is below its reserve; not applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, ReadOnlyOption, SnapshotStatus, StateRole};

use crate::error::Error;
use crate::hlc::Hlc;
use crate::membership::{Membership, MembershipChange, Refusal, PROMOTE_MAX_LAG};
use crate::payload;
use crate::storage::{LogStorage, LogWrite, Persisted};

mod lease;
mod lost_log;
mod reads;
mod skew;
mod snapshots;

/// When the commands of one entry are committed: command `i` at `first + i × step`. `step` is 1 — every
/// client request batched into an entry has a ts of its own, in log order, so a put and a checkpoint of
/// the same entity in one entry never share one — except in entries written before that (payload
/// version 1), where every command shares `first` (`step` 0). Entries without commands (no-ops, conf
/// changes) are applied at the previous applied ts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTs {
    pub first: u64,
    pub step: u64,
}

impl CommitTs {
    /// One ts for everything (entries without commands, and single commands).
    pub fn single(ts: u64) -> Self {
        CommitTs { first: ts, step: 0 }
    }

    /// The ts of command `i` (saturating; a decoded entry never reaches the end, see [`last`](Self::last)).
    pub fn at(self, i: usize) -> u64 {
        let i = u64::try_from(i).unwrap_or(u64::MAX);
        self.first.saturating_add(i.saturating_mul(self.step))
    }

    /// The ts of the last of `count` commands (`first` if none): the applied ts once the entry is applied.
    /// `None` if it would pass `u64::MAX`.
    pub fn last(self, count: usize) -> Option<u64> {
        let n = u64::try_from(count.saturating_sub(1)).ok()?;
        self.first.checked_add(n.checked_mul(self.step)?)
    }
}

/// The replicated state machine.
pub trait StateMachine {
    /// What applying one command gives back to its proposer (handed over in-process, never encoded).
    type Output: Send + 'static;
    /// Index and ts of the last applied entry, as it survived a restart (may lag the log: the node replays).
    fn applied(&self) -> (u64, u64);
    /// Apply entry `index` carrying `commands` (possibly none: no-op and conf-change entries), command `i`
    /// at `ts.at(i)`; afterwards the applied ts is `ts.last(commands.len())`. Must be deterministic;
    /// returns one output per command. An error stops the node.
    fn apply(
        &mut self,
        index: u64,
        ts: CommitTs,
        commands: &[&[u8]],
    ) -> Result<Vec<Self::Output>, Error>;
    /// Make everything applied so far durable; called before the log is compacted past it.
    fn flush(&mut self) -> Result<(), Error>;
    /// Replace the whole state with a received image (as produced by the leader's `SnapshotSource`),
    /// atomically; returns the image's applied index and ts. On error the state is unchanged.
    fn install_snapshot(
        &mut self,
        image: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<(u64, u64), Error>;
}

/// A state machine image received from the leader and staged (on disk) for installation.
pub trait StagedImage: Send {
    /// The image's chunks, in order. A read error ends the iteration early; the state machine then sees a
    /// truncated image and refuses it.
    fn chunks(&self) -> Box<dyn Iterator<Item = Vec<u8>> + '_>;
}

pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// A committed command: where it landed in the log, its own commit ts, and what the state machine gave
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<O> {
    pub index: u64,
    pub ts: u64,
    pub output: O,
    /// When it passed each stage of the write path on this node.
    pub trace: WriteTrace,
}

/// When one proposal passed each stage of the write path, on the node's monotonic clock: the per-stage
/// latency breakdown of a write ([`WriteTrace::stages`]). The node fills in its own stages; the caller's
/// ends (`sent`, `woke`) are set by [`crate::Group::propose`] and equal `picked` / `applied` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTrace {
    /// Handed to the loop's queue.
    pub sent: Instant,
    /// Taken from the queue by the loop.
    pub picked: Instant,
    /// Proposed to raft in an entry (after batching with the commands that arrived meanwhile).
    pub proposed: Instant,
    /// The leader's own synced log write of the entry finished; `None` when the entry reached this
    /// node's log by another path (it was not the leader's write that made it durable).
    pub persisted: Option<Instant>,
    /// The entry was known committed and began to apply.
    pub apply_start: Instant,
    /// The state machine returned its output.
    pub applied: Instant,
    /// The caller's task resumed with the reply.
    pub woke: Instant,
}

impl WriteTrace {
    /// The stages of the write path, in order, as `(name, duration)`; together they add up to the time
    /// from `sent` to `woke`:
    /// * `queue`: waiting in the loop's queue until the loop took it;
    /// * `batch`: until the loop proposed it (the rest of its turn's input, batching);
    /// * `log_persist`: the leader's own log write and fsync (appends to the followers left before it);
    /// * `commit`: after that, until raft reported the entry committed (a quorum's acknowledgements: the
    ///   round trip to the followers and their log writes, beyond the leader's own);
    /// * `apply`: the state machine's apply of the entry (all its commands);
    /// * `reply`: from the apply to the caller's task resuming (answering, the wake-up).
    pub fn stages(&self) -> [(&'static str, Duration); 6] {
        let persisted = self.persisted.unwrap_or(self.proposed).max(self.proposed);
        [
            ("queue", self.picked.saturating_duration_since(self.sent)),
            (
                "batch",
                self.proposed.saturating_duration_since(self.picked),
            ),
            (
                "log_persist",
                persisted.saturating_duration_since(self.proposed),
            ),
            (
                "commit",
                self.apply_start.saturating_duration_since(persisted),
            ),
            (
                "apply",
                self.applied.saturating_duration_since(self.apply_start),
            ),
            ("reply", self.woke.saturating_duration_since(self.applied)),
        ]
    }
}

/// The closed set of requests the node serves. Raft messages go through [`Node::step`].
///
/// Every request that waits on the cluster carries its caller's `deadline` (the one deadline of the
/// request, made at the edge): when it passes, the node answers [`Error::Timeout`] and forgets the request.
pub enum Command<O> {
    /// Replicate and apply one command; the reply carries its result.
    Propose {
        command: Vec<u8>,
        deadline: Instant,
        reply: Reply<Result<Committed<O>, Error>>,
    },
    /// Linearizable read barrier (ReadIndex, or the lease if configured): the reply comes once the local
    /// state machine has applied everything committed when the request arrived; it carries that index.
    ReadIndex {
        deadline: Instant,
        reply: Reply<Result<u64, Error>>,
    },
    /// Lease read: answered at the commit index, without a round trip, by a leader whose lease holds
    /// (see `node/lease.rs`); a leader without a valid lease falls back to a ReadIndex round; any other
    /// node answers `NotLeader`. The reply carries the index the local state machine must reach before
    /// reading.
    LeaseRead {
        deadline: Instant,
        reply: Reply<Result<u64, Error>>,
    },
    /// Membership change, one node at a time; the reply comes when it is applied here.
    ChangeMembership {
        change: MembershipChange,
        deadline: Instant,
        reply: Reply<Result<ConfState, Error>>,
    },
    TransferLeader {
        to: u64,
        reply: Reply<Result<(), Error>>,
    },
    Status {
        reply: Reply<NodeStatus>,
    },
}

impl<O> Command<O> {
    /// Answer a command the node will never handle (its queue is full, or the loop is gone) with `error`.
    /// A status request is dropped: its caller sees the reply channel closed.
    pub fn refuse(self, error: Error) {
        match self {
            Command::Propose { reply, .. } => reply(Err(error)),
            Command::ReadIndex { reply, .. } | Command::LeaseRead { reply, .. } => {
                reply(Err(error))
            }
            Command::ChangeMembership { reply, .. } => reply(Err(error)),
            Command::TransferLeader { reply, .. } => reply(Err(error)),
            Command::Status { .. } => {}
        }
    }
}

/// How much room the node's disk has, measured by the caller against its reserve. Below the reserve
/// (`Low`) the node refuses new proposals with [`Error::NoSpace`] (nothing is proposed), a leader hands
/// leadership to the most caught-up active voter (tried at most once per election timeout), and the
/// node refuses such a hand-over itself (`MsgTimeoutNow` is dropped; so with every disk low the leader
/// stays). It still
/// appends what a leader sends, so proposals already in flight commit. Below half the reserve
/// (`Critical`) it also drops appends with entries and snapshots (as if lost; raft-rs resends), so its log
/// cannot grow into a full disk, and as a follower answers ReadIndex `NotLeader` (it may lag: the leader
/// serves the read). Heartbeats, votes and applying what the log holds go on throughout; back to
/// `Ample`, the node catches up by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskSpace {
    #[default]
    Ample,
    Low,
    Critical,
}

/// Raft timing: the length of a tick and the election and heartbeat intervals in ticks. The defaults are
/// the production values, sized for a site's LAN: heartbeats every 40 ms, elections after 240–480 ms
/// (raft-rs draws from `[election, 2 × election)` ticks), so a dead leader is replaced within about half
/// a second while six heartbeats fit in the shortest election timeout. Pre-vote and check-quorum stay on,
/// so a node that was cut off cannot disrupt the group when it comes back. Every other layer takes them
/// from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub tick: Duration,
    /// Ticks without a heartbeat before an election; always > `heartbeat_ticks`.
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            tick: Duration::from_millis(20),
            election_ticks: 12,
            heartbeat_ticks: 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Length of one tick (the lease is measured in time). `Group::start` sets it from its own tick.
    pub tick: Duration,
    /// Ticks without a heartbeat before an election (see [`Timing`] for the production values).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Commands batched into one entry at most.
    pub max_batch_commands: usize,
    /// Bytes of one entry's payload at most: batching stops before it, and a single command that would
    /// not fit alone is refused with [`Error::TooLarge`]. Kept well under the transport's `max_frame`
    /// (a `MsgAppend` carries at most `max(1 MiB, one entry)` of entries), so every entry can be sent.
    pub max_entry_bytes: usize,
    /// Commands queued or in flight at most; beyond that proposals are refused with `Overloaded`.
    pub max_inflight_commands: usize,
    /// Serve ReadIndex reads from the leader lease too, when it holds (a ReadIndex round otherwise).
    pub lease_reads: bool,
    /// The lease is shortened by this percentage of its length, for clock drift: followers' clocks may
    /// run this much faster than the leader's.
    pub lease_margin_percent: u8,
    /// The election timeout is drawn from `[min, max)` ticks by raft-rs's own RNG; the simulator pins it
    /// (`max = min + 1`) with a value from its seed so runs are reproducible. `None`: raft-rs's default
    /// `[election_tick, 2 × election_tick)`.
    pub election_timeout_range: Option<(usize, usize)>,
    /// How far this node's clock may run ahead of the cluster's view before a leader stops following it
    /// for commit timestamps (and a follower alarms on entries stamped that far ahead of its clock).
    pub max_clock_skew: Duration,
    /// Compact the log once this many applied entries are kept...
    pub compact_log_entries: u64,
    /// ...or once the applied entries kept hold this many bytes.
    pub compact_log_bytes: u64,
}

impl NodeConfig {
    pub fn new(id: u64) -> Self {
        let timing = Timing::default();
        NodeConfig {
            id,
            tick: timing.tick,
            election_tick: timing.election_ticks,
            heartbeat_tick: timing.heartbeat_ticks,
            max_batch_commands: 1024,
            max_entry_bytes: 8 << 20,
            max_inflight_commands: 20_000,
            lease_reads: false,
            lease_margin_percent: 10,
            election_timeout_range: None,
            max_clock_skew: Duration::from_secs(1),
            compact_log_entries: 10_000,
            compact_log_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub role: Role,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Addresses of the members, and the removed ids.
    pub membership: Membership,
    /// First index still in the log (everything before is compacted into the state machine).
    pub first_index: u64,
    /// Per-peer replication progress as the leader sees it; empty on followers.
    pub progress: Vec<PeerProgress>,
    pub inflight_commands: usize,
    pub counters: NodeCounters,
    /// Ticks since this node last heard from its leader (an append, heartbeat or snapshot); 0 on the
    /// leader. Until the first contact it counts from the node's start. A learner or a removed node never
    /// campaigns, so it keeps its last leader; this says whether that leader still reaches it.
    pub ticks_since_leader: u64,
}

/// One peer's replication progress, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerProgress {
    pub id: u64,
    /// Highest log index known to be on the peer.
    pub matched: u64,
    /// The peer answered within the last election timeout.
    pub recent_active: bool,
}

/// Entries' bytes one `MsgAppend` carries at most (raft-rs `max_size_per_msg`; one larger entry still
/// goes alone, and entries are bounded by [`NodeConfig::max_entry_bytes`]).
pub const MAX_APPEND_BYTES: u64 = 1 << 20;

/// Upper bounds (µs) of the node's latency histograms' buckets ([`Latency`]).
pub const LATENCY_BUCKETS_MICROS: [u64; 13] = [
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A latency histogram kept by the node loop: the count, the total µs and cumulative counts over
/// [`LATENCY_BUCKETS_MICROS`] (the last bucket is +Inf, equal to `count`), for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub total_micros: u64,
    pub buckets: [u64; LATENCY_BUCKETS_MICROS.len() + 1],
}

impl Latency {
    pub fn record(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count += 1;
        self.total_micros = self.total_micros.saturating_add(micros);
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS_MICROS) {
            if micros <= bound {
                *bucket += 1;
            }
        }
        self.buckets[LATENCY_BUCKETS_MICROS.len()] += 1;
    }
}

/// Counters for metrics and the group-commit benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub entries_proposed: u64,
    pub commands_proposed: u64,
    pub commands_applied: u64,
    pub compactions: u64,
    /// Latency of the synced Raft log writes (one per Ready whose write needed a sync: not one that only
    /// moved the commit index); its count is the number of those writes.
    pub fsync: Latency,
    /// On a follower: from stepping an append with entries to handing its acknowledgement to the
    /// transport (the turn's other input, the log write and fsync).
    pub append_ack: Latency,
    pub snapshots_installed: u64,
    /// ReadIndex rounds started (batches of reads, re-sends and lease renewals).
    pub read_index_rounds: u64,
    /// Batches of proposals stamped at the cluster's view of now + `max_clock_skew` because this
    /// leader's clock ran further ahead (clock-skew alarm).
    pub ts_clamped: u64,
    /// Entries received stamped more than `max_clock_skew` ahead of this node's clock (clock-skew alarm:
    /// the leader's clock, or this one, is off).
    pub ts_ahead_of_clock: u64,
    /// How far this node's clock was ahead of the cluster's view when last measured as leader, µs (0 when
    /// behind, unmeasured or not leading).
    pub clock_ahead_micros: u64,
    /// Committed entries that could not be applied (a payload or conf change that does not decode, a conf
    /// change Raft refuses) and were applied as no-ops instead — identically on every replica, which all
    /// decide from the same bytes and the same configuration. Never expected: an alarm.
    pub entries_unappliable: u64,
}

/// What the state machine gave back for one entry, and when it applied it.
struct Outputs<O> {
    values: Vec<O>,
    apply_start: Instant,
    applied: Instant,
}

/// A reply with the deadline of its request.
pub(super) struct Waiter<T> {
    deadline: Instant,
    reply: Reply<Result<T, Error>>,
    /// When the loop took the request from its queue.
    picked: Instant,
}

impl<T> Waiter<T> {
    fn new(deadline: Instant, reply: Reply<Result<T, Error>>) -> Self {
        Waiter {
            deadline,
            reply,
            picked: Instant::now(),
        }
    }

    fn answer(self, result: Result<T, Error>) {
        (self.reply)(result)
    }
}

/// A command waiting for the next batch: its bytes and its proposer.
type Queued<O> = (Vec<u8>, Waiter<Committed<O>>);

/// The proposals of one entry, in command order; a proposal whose deadline passed is answered `Timeout`
/// and leaves `None` behind, so the others still line up with the entry's outputs.
struct PendingEntry<O> {
    waiters: Vec<Option<Waiter<Committed<O>>>>,
    /// When it was proposed, and when this leader's own log write of it finished ([`WriteTrace`]).
    proposed: Instant,
    persisted: Option<Instant>,
}

/// What is known of the entry this node proposed at `index` in `term` (as leader of `term`), once the
/// committed entry at `at ≥ index` is known to have term `at_term` and everything up to `at` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It is in the committed log (and so applied).
    Applied,
    /// Its slot holds another entry: it can never be applied.
    NotApplied,
    /// Either could be true.
    Unknown,
}

/// The fate of the proposal `(index, term)` given the committed entry `(at, at_term)`, `index ≤ at`.
/// * `index == at`: ours exactly when the terms match (one leader per term, one entry per index).
/// * `index < at`, `term == at_term`: the leader of `at_term` (this node) appended `at` after `index` in
///   the same term, and a leader never truncates its own log: by Log Matching the committed log holds
///   ours at `index`.
/// * `index < at`, `term > at_term`: terms never decrease along a log, so the committed entry at `index`
///   has a term ≤ `at_term` < `term`: not ours.
/// * `index < at`, `term < at_term`: the committed entry at `index` may be ours or not.
pub(crate) fn fate(index: u64, term: u64, at: u64, at_term: u64) -> Fate {
    use std::cmp::Ordering::{Equal, Greater, Less};
    debug_assert!(index <= at);
    match (index == at, term.cmp(&at_term)) {
        (_, Equal) => Fate::Applied,
        (true, _) | (false, Greater) => Fate::NotApplied,
        (false, Less) => Fate::Unknown,
    }
}

/// The reads of one batch, waiting behind one ReadIndex context (or served from the lease).
pub(super) struct PendingRead {
    waiters: Vec<Waiter<u64>>,
    index: Option<u64>,
}

struct PendingConfChange {
    waiter: Waiter<ConfState>,
}

/// Where [`Node::process_ready_sending`] hands what leaves the node, as soon as it may.
pub trait ReadySink {
    /// Raft messages to send now.
    fn send(&mut self, msgs: Vec<Message>);
    /// The membership table changed (members, addresses, removed ids); also once at start.
    fn members_changed(&mut self, _membership: &Membership) {}
}

pub struct Node<L: LogStorage, S: StateMachine> {
    raw: RawNode<L>,
    sm: S,
    hlc: Hlc,
    cfg: NodeConfig,
    queued: Vec<Queued<S::Output>>,
    /// Proposals in flight by the (index, term) their entry was given.
    pending: BTreeMap<(u64, u64), PendingEntry<S::Output>>,
    pending_commands: usize,
    reads: BTreeMap<Vec<u8>, PendingRead>,
    /// ReadIndex reads waiting for the next round (one context for all, at `flush_reads` once no round
    /// is in flight).
    read_queue: Vec<Waiter<u64>>,
    /// Lease reads that arrived this loop turn, decided at `flush_reads`; `true`: leader only.
    lease_queue: Vec<(Waiter<u64>, bool)>,
    lease: lease::Lease,
    /// This node's read contexts start with these 16 bytes: its id and a number drawn when it started
    /// (an answer sent to an earlier run of this node is never taken for one of this run's rounds).
    read_ctx_prefix: [u8; 16],
    next_read: u64,
    /// Membership changes in flight by (index, term).
    conf_changes: BTreeMap<(u64, u64), PendingConfChange>,
    ticks: u64,
    counters: NodeCounters,
    /// On a follower: when the first append with entries since its last Ready was stepped
    /// ([`NodeCounters::append_ack`]).
    append_since: Option<Instant>,
    membership: Membership,
    /// Set when the membership table changed; the loop hands the new table to the transport.
    membership_changed: bool,
    /// An image received with a MsgSnapshot, waiting for raft-rs to accept the snapshot: (index, image).
    staged: Option<(u64, Box<dyn StagedImage>)>,
    /// Bytes of applied entries still in the log (approximate), for size-based compaction.
    log_bytes: u64,
    /// A conf change was applied since the last snapshot registration: a new member must be in the
    /// snapshot's conf state or it refuses the snapshot, so a compacted log re-registers.
    conf_changed: bool,
    /// Messages the node itself adds outside raft-rs (the lost-log notice); sent with the next Ready's.
    extra_out: Vec<Message>,
    /// (term, leader) when pending reads were last sent; a change re-sends those still without an index.
    read_epoch: (u64, u64),
    /// Addresses peers announced on their handshakes: id → (peer, client).
    learned: BTreeMap<u64, (String, String)>,
    /// This node's wall clock (µs) as the loop last read it; 0 when no wall clock is given (simulator).
    wall: u64,
    /// The voters' clocks as their append responses reported them (used while leading).
    peer_clocks: skew::PeerClocks,
    /// When (wall µs) a clock-skew warning was last logged: one per `SKEW_LOG_EVERY`.
    skew_logged: u64,
    /// Room on the disk: below the reserve refuse proposals; below half of it take no new entries.
    space: DiskSpace,
    /// The tick from which a leader short of space may try its next hand-over.
    next_hand_off: u64,
    /// `ticks` when the leader last reached this node (see [`NodeStatus::ticks_since_leader`]).
    leader_contact_tick: u64,
    /// `ticks` when each peer was last heard from (any message): who is healthy, for the membership
    /// guard rails (raft-rs's `recent_active` is cleared for everyone once per election timeout).
    heard: BTreeMap<u64, u64>,
}

/// An entry for [`Node::propose_unchecked`] (fault tests).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum UncheckedEntry {
    /// A normal entry with these bytes (not necessarily a payload this node would encode).
    Normal(Vec<u8>),
    /// A conf change as given (its context need not decode; raft-rs itself may refuse it at apply).
    ConfChange(ConfChangeV2),
}

/// The highest ts in the log: that of its last entry carrying commands. Commit timestamps increase
/// strictly along every log (each leader stamps above everything in its own log, and a follower's log is
/// a prefix of its leader's), so no entry before it — committed, applied or not — carries a higher one.
/// The log's tail may be a no-op (a new leader's) or conf changes, so this walks back past them; entries
/// below the first index are in the state machine, whose applied ts covers them.
fn last_ts_in_log<L: LogStorage>(storage: &L, last_index: u64) -> Result<u64, Error> {
    let first = storage.first_index().map_err(raft_err)?;
    // One entry at a time (an entry may be large); the last one with commands is usually within a few.
    for index in (first..=last_index).rev() {
        let entries = storage
            .entries(
                index,
                index + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )
            .map_err(raft_err)?;
        // An entry that does not decode carries no ts (it is applied as a no-op): look further back.
        if let Some(ts) = entries
            .iter()
            .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
            .find_map(|e| payload::last_ts(&e.data).ok())
        {
            return Ok(ts);
        }
    }
    Ok(0)
}
/// At most one clock-skew warning per this many µs.
const SKEW_LOG_EVERY: u64 = 10_000_000;
/// Peer clock offsets older than this (µs) do not count for the cluster's view.
const CLOCK_SAMPLE_FRESH: u64 = 10_000_000;

/// The conf change a committed entry carries (a v1 one as the equivalent v2), or why it does not decode.
fn decode_conf_change(e: &Entry) -> Result<ConfChangeV2, String> {
    let undecodable = |err: prost::DecodeError| format!("it does not decode: {err}");
    if e.get_entry_type() == EntryType::EntryConfChangeV2 {
        return ConfChangeV2::decode(&e.data[..]).map_err(undecodable);
    }
    let v1 = ConfChange::decode(&e.data[..]).map_err(undecodable)?;
    let mut single = raft::prelude::ConfChangeSingle::default();
    single.set_change_type(v1.get_change_type());
    single.node_id = v1.node_id;
    let mut v2 = ConfChangeV2::default();
    v2.changes.push(single);
    v2.context = v1.context;
    Ok(v2)
}

fn raft_err(e: raft::Error) -> Error {
    Error::Raft(e.to_string())
}

fn role(r: StateRole) -> Role {
    match r {
        StateRole::Follower => Role::Follower,
        StateRole::Candidate => Role::Candidate,
        StateRole::PreCandidate => Role::PreCandidate,
        StateRole::Leader => Role::Leader,
    }
}

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// Start a node on existing storage (bootstrapped with the initial voters, or restarted). Entries the
    /// state machine has not applied yet are replayed from the log; a state machine behind the log's first
    /// index (entries it never applied were compacted away) is refused with [`Error::StateBehindLog`].
    pub fn new(cfg: NodeConfig, storage: L, sm: S, logger: &slog::Logger) -> Result<Self, Error> {
        let state = storage.initial_state().map_err(raft_err)?;
        let last_index = storage.last_index().map_err(raft_err)?;
        if last_index < state.hard_state.commit {
            return Err(Error::CommitBeyondLog {
                commit: state.hard_state.commit,
                last_index,
            });
        }
        let (applied, applied_ts) = sm.applied();
        // Replay resumes after `applied`: the log must still hold the entry right after it.
        let first_index = storage.first_index().map_err(raft_err)?;
        if applied.saturating_add(1) < first_index {
            return Err(Error::StateBehindLog {
                applied,
                first_index,
            });
        }
        let mut hlc = Hlc::default();
        hlc.observe(applied_ts);
        hlc.observe(last_ts_in_log(&storage, last_index)?);
        let raft_cfg = Config {
            id: cfg.id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            // The state machine may be ahead of the persisted commit index (it is persisted lazily);
            // entries at or below its applied index are skipped when raft re-delivers them.
            applied: applied.min(state.hard_state.commit),
            check_quorum: true,
            pre_vote: true,
            // Always a quorum round: the lease is this node's own (`node/lease.rs`), renewed by these
            // rounds; raft-rs's LeaseBased option would answer without one.
            read_only_option: ReadOnlyOption::Safe,
            // With at least one entry per message, a MsgAppend holds at most max(this, one entry).
            max_size_per_msg: MAX_APPEND_BYTES
                .min(u64::try_from(cfg.max_entry_bytes).unwrap_or(u64::MAX)),
            max_inflight_msgs: 256,
            // A commit is not sent to the followers on its own (raft-rs still does while a conf change is
            // pending): they learn it with the next append or heartbeat, as in TiKV. Each write then costs
            // two messages and a follower Ready fewer; a follower applies up to a heartbeat interval later,
            // which only a stale read can see (a ReadIndex round's heartbeat carries the commit index).
            skip_bcast_commit: true,
            min_election_tick: cfg.election_timeout_range.map_or(0, |r| r.0),
            max_election_tick: cfg.election_timeout_range.map_or(0, |r| r.1),
            ..Config::default()
        };
        raft_cfg.validate().map_err(raft_err)?;
        let membership = match storage.membership() {
            bytes if bytes.is_empty() => Membership::default(),
            bytes => Membership::decode(&bytes)?,
        };
        let raw = RawNode::new(&raft_cfg, storage, logger).map_err(raft_err)?;
        let read_ctx_prefix = reads::ctx_prefix(cfg.id);
        let mut node = Node {
            raw,
            sm,
            hlc,
            cfg,
            queued: Vec::new(),
            pending: BTreeMap::new(),
            pending_commands: 0,
            reads: BTreeMap::new(),
            read_queue: Vec::new(),
            lease_queue: Vec::new(),
            lease: lease::Lease::default(),
            read_ctx_prefix,
            next_read: 0,
            conf_changes: BTreeMap::new(),
            ticks: 0,
            counters: NodeCounters::default(),
            append_since: None,
            membership,
            membership_changed: true,
            staged: None,
            log_bytes: 0,
            conf_changed: false,
            extra_out: Vec::new(),
            read_epoch: (0, 0),
            learned: BTreeMap::new(),
            wall: 0,
            peer_clocks: skew::PeerClocks::default(),
            skew_logged: 0,
            space: DiskSpace::Ample,
            next_hand_off: 0,
            leader_contact_tick: 0,
            heard: BTreeMap::new(),
        };
        // A compacted log needs a registered snapshot to serve followers behind it (registration is
        // in memory only).
        if node.raw.raft.raft_log.first_index() > 1 {
            node.register_snapshot()?;
        }
        Ok(node)
    }

    pub fn id(&self) -> u64 {
        self.cfg.id
    }

    pub fn state_machine(&self) -> &S {
        &self.sm
    }

    pub fn storage(&self) -> &L {
        self.raw.store()
    }

    pub fn counters(&self) -> NodeCounters {
        self.counters
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn leader_hint(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|&l| l != raft::INVALID_ID)
    }

    /// The term and the leader this node knows (what [`crate::runner::NodeHandle::leader`] publishes).
    pub fn leader_view(&self) -> crate::runner::LeaderView {
        let leader = self.leader_hint();
        crate::runner::LeaderView {
            term: self.raw.raft.term,
            leader,
            seen_leader: leader.is_some(),
        }
    }

    pub fn status(&self) -> NodeStatus {
        let conf = self.raw.raft.prs().conf();
        let mut voters: Vec<u64> = conf.voters().ids().iter().collect();
        voters.sort_unstable();
        let mut learners: Vec<u64> = conf.learners().iter().copied().collect();
        learners.sort_unstable();
        NodeStatus {
            id: self.cfg.id,
            role: role(self.raw.raft.state),
            term: self.raw.raft.term,
            leader: self.leader_hint(),
            commit: self.raw.raft.raft_log.committed,
            applied: self.sm.applied().0,
            last_index: self.raw.raft.raft_log.last_index(),
            voters,
            learners,
            membership: self.membership.clone(),
            first_index: self.raw.raft.raft_log.first_index(),
            progress: if self.is_leader() {
                self.raw
                    .raft
                    .prs()
                    .iter()
                    .map(|(&id, pr)| PeerProgress {
                        id,
                        matched: pr.matched,
                        // Not raft-rs's `recent_active`: check-quorum clears it for every peer
                        // once per election timeout, so a status read just after says "inactive".
                        recent_active: self.healthy(id),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            inflight_commands: self.pending_commands + self.queued.len(),
            counters: self.counters,
            ticks_since_leader: if self.is_leader() {
                0
            } else {
                self.ticks.saturating_sub(self.leader_contact_tick)
            },
        }
    }

    /// The membership table if it changed since the last call (handed to the [`ReadySink`]).
    fn take_membership_change(&mut self) -> Option<Membership> {
        std::mem::take(&mut self.membership_changed).then(|| self.membership.clone())
    }

    /// Record addresses a peer announced on its handshake (not replicated; refreshed by every handshake).
    pub fn learn_addresses(&mut self, id: u64, peer_addr: &str, client_addr: &str) {
        // Kept even for ids the table does not know yet (a joining node hears from the leader before its
        // snapshot brings the table), and applied again whenever the table is replaced.
        self.learned
            .insert(id, (peer_addr.to_string(), client_addr.to_string()));
        if self.membership.learn(id, peer_addr, client_addr) {
            self.membership_changed = true;
        }
    }

    /// Install a new membership table, with the addresses peers announced on their handshakes.
    fn set_membership(&mut self, mut membership: Membership) {
        for (id, (peer, client)) in &self.learned {
            membership.learn(*id, peer, client);
        }
        self.membership = membership;
        self.membership_changed = true;
    }

    /// Deliver a MsgSnapshot together with the state machine image that came with it. The image is
    /// installed when raft-rs accepts the snapshot (in the next `process_ready`), else dropped.
    pub fn step_snapshot(&mut self, msg: Message, image: Box<dyn StagedImage>) {
        let index = msg.get_snapshot().get_metadata().index;
        self.staged = Some((index, image));
        self.step(msg);
    }

    /// The transport could not reach `peer` (raft-rs then probes instead of streaming entries).
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// Outcome of streaming a snapshot to `peer`.
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// How much room the disk has, as the caller measured it against its reserve (see [`DiskSpace`]).
    pub fn set_disk_space(&mut self, space: DiskSpace) {
        if space != self.space {
            match space {
                DiskSpace::Ample => {
                    tracing::info!(
                        node = self.cfg.id,
                        "disk space back above the reserve: accepting writes"
                    );
                    // A hand-over started for want of space is no longer needed (it would drop
                    // proposals until it ends).
                    if self.is_leader() && self.raw.raft.lead_transferee.is_some() {
                        self.raw.raft.abort_leader_transfer();
                    }
                }
                DiskSpace::Low => tracing::warn!(
                    node = self.cfg.id,
                    "disk below its reserve: refusing writes, handing leadership over"
                ),
                DiskSpace::Critical => tracing::warn!(
                    node = self.cfg.id,
                    "disk below half its reserve: refusing writes and new log entries"
                ),
            }
        }
        self.space = space;
    }

    /// Deliver a Raft message from a peer. Messages from unknown ids are the transport's to drop.
    pub fn step(&mut self, mut msg: Message) {
        if msg.from != raft::INVALID_ID && msg.from != self.cfg.id {
            self.heard.insert(msg.from, self.ticks);
        }
        if let Some(theirs) = skew::read(&msg).filter(|_| self.wall > 0) {
            self.peer_clocks.observe(msg.from, theirs, self.wall);
        }
        let t = msg.get_msg_type();
        let dropped = match self.space {
            DiskSpace::Ample => false,
            // No leadership handed over to a node that would refuse every write (the transfer aborts).
            DiskSpace::Low => t == MessageType::MsgTimeoutNow,
            // As if lost on the way: the log does not grow into a full disk.
            DiskSpace::Critical => {
                t == MessageType::MsgTimeoutNow
                    || t == MessageType::MsgSnapshot
                    || (t == MessageType::MsgAppend && !msg.entries.is_empty())
            }
        };
        if dropped {
            if t == MessageType::MsgSnapshot {
                self.staged = None;
            }
            return;
        }
        match self.guard_lost_log(&mut msg) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(node = self.cfg.id, error = %e, "cannot register a snapshot for a follower");
                return;
            }
        }
        if msg.get_msg_type() == MessageType::MsgSnapshot
            && self.staged.as_ref().map(|s| s.0) != Some(msg.get_snapshot().get_metadata().index)
        {
            // A snapshot without its image cannot be installed: ignore it, the leader resends.
            tracing::warn!(
                node = self.cfg.id,
                from = msg.from,
                "snapshot message without an image ignored"
            );
            return;
        }
        if self.vote_within_start_lease(&msg) {
            return;
        }
        let from_leader = matches!(
            msg.get_msg_type(),
            MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
        )
        .then_some(msg.from);
        if msg.get_msg_type() == MessageType::MsgAppend && !msg.entries.is_empty() {
            self.append_since.get_or_insert_with(Instant::now);
        }
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(node = self.cfg.id, error = %e, "raft message ignored");
        } else if from_leader.is_some() && from_leader == self.leader_hint() {
            self.leader_contact_tick = self.ticks;
        }
    }

    pub fn handle(&mut self, cmd: Command<S::Output>) {
        match cmd {
            Command::Propose {
                command,
                deadline,
                reply,
            } => {
                // Before the leader check: a follower refuses it too instead of forwarding it.
                let limit = payload::max_command_len(self.cfg.max_entry_bytes);
                if command.len() > limit {
                    return reply(Err(Error::TooLarge {
                        size: command.len(),
                        limit,
                    }));
                }
                if !self.is_leader() {
                    return reply(Err(self.not_leader()));
                }
                if self.space != DiskSpace::Ample {
                    return reply(Err(Error::NoSpace));
                }
                if self.pending_commands + self.queued.len() >= self.cfg.max_inflight_commands {
                    return reply(Err(Error::Overloaded));
                }
                self.queued.push((command, Waiter::new(deadline, reply)));
            }
            Command::LeaseRead { deadline, reply } => self.lease_read(Waiter::new(deadline, reply)),
            Command::ReadIndex { deadline, reply } => {
                if self.space == DiskSpace::Critical && !self.is_leader() {
                    // It takes no new entries meanwhile, so it may never reach the read index: the
                    // leader serves the read instead.
                    return reply(Err(self.not_leader()));
                }
                self.read_index(Waiter::new(deadline, reply))
            }
            Command::ChangeMembership {
                change,
                deadline,
                reply,
            } => {
                // Before the leader check: any node refuses an invalid request itself.
                if let Err(refusal) = change.validate() {
                    return reply(Err(refusal.into()));
                }
                if !self.is_leader() {
                    return reply(Err(self.not_leader()));
                }
                let cc = match self.guard_membership_change(change) {
                    Ok(cc) => cc,
                    Err(e) => return reply(Err(e)),
                };
                match self.raw.propose_conf_change(vec![], cc) {
                    Ok(()) => {
                        let index = self.raw.raft.raft_log.last_index();
                        self.conf_changes.insert(
                            (index, self.raw.raft.term),
                            PendingConfChange {
                                waiter: Waiter::new(deadline, reply),
                            },
                        );
                    }
                    Err(raft::Error::ProposalDropped) if !self.is_leader() => {
                        reply(Err(self.not_leader()))
                    }
                    Err(e) => reply(Err(raft_err(e))),
                }
            }
            Command::TransferLeader { to, reply } => {
                if !self.is_leader() {
                    return reply(Err(self.not_leader()));
                }
                // The transferee's election ignores the followers' lease: ours ends here.
                self.revoke_lease();
                self.raw.transfer_leader(to);
                reply(Ok(()))
            }
            Command::Status { reply } => reply(self.status()),
        }
    }

    /// The conf change for `change` if it passes every check and guard rail (this node leads); otherwise
    /// why not, and nothing is proposed:
    /// * the request is valid (ids, addresses: [`MembershipChange::validate`]) and makes sense for the
    ///   current members ([`Membership::check`]: no reused or duplicate id, no non-member, not the last
    ///   voter);
    /// * no other change is in flight (raft-rs's pending conf index, or a change of ours not yet applied);
    /// * a new node joins as a learner: a direct voter add is refused ([`Refusal::LearnerFirst`]); a
    ///   learner is promoted only once caught up ([`Node::caught_up`]);
    /// * the voters of the new configuration that are healthy (heard from within an election timeout,
    ///   this node included) still make its quorum.
    fn guard_membership_change(&self, change: MembershipChange) -> Result<ConfChangeV2, Error> {
        change.validate()?;
        let conf = self.raw.raft.prs().conf();
        let mut voters: Vec<u64> = conf.voters().ids().iter().collect();
        voters.sort_unstable();
        let mut learners: Vec<u64> = conf.learners().iter().copied().collect();
        learners.sort_unstable();
        let change = match change {
            // A current learner named as a voter is a promotion; its recorded addresses stay.
            MembershipChange::AddVoter(m) if learners.contains(&m.id) => {
                MembershipChange::Promote(m.id)
            }
            other => other,
        };
        let cc = change.to_conf_change()?;
        self.membership.check(&cc, &voters, &learners)?;
        if let MembershipChange::AddVoter(m) = &change {
            return Err(Refusal::LearnerFirst(m.id).into());
        }
        if let MembershipChange::Promote(id) = &change {
            if !learners.contains(id) {
                return Err(Refusal::NotMember(*id).into());
            }
        }
        if self.raw.raft.has_pending_conf() || !self.conf_changes.is_empty() {
            return Err(Refusal::ChangeInProgress.into());
        }
        if let MembershipChange::Promote(id) = &change {
            self.caught_up(*id)?;
        }
        let next = Membership::voters_after(&cc, &voters);
        let healthy = next.iter().filter(|&&v| self.healthy(v)).count();
        let quorum = next.len() / 2 + 1;
        if healthy < quorum {
            return Err(Refusal::QuorumAtRisk {
                healthy,
                voters: next.len(),
                quorum,
            }
            .into());
        }
        Ok(cc)
    }

    /// A peer is healthy when this node heard from it within the last election timeout; this node is.
    fn healthy(&self, id: u64) -> bool {
        if id == self.cfg.id {
            return true;
        }
        let window = u64::try_from(self.cfg.election_tick).unwrap_or(u64::MAX);
        self.heard
            .get(&id)
            .is_some_and(|&at| self.ticks.saturating_sub(at) <= window)
    }

    /// Learner `id` may be promoted: it is healthy and its log is within [`PROMOTE_MAX_LAG`] entries of
    /// the leader's commit index (raft-rs's `matched`: the highest index known to be on it).
    fn caught_up(&self, id: u64) -> Result<(), Refusal> {
        let commit = self.raw.raft.raft_log.committed;
        let matched = self.raw.raft.prs().get(id).map_or(0, |pr| pr.matched);
        let active = self.healthy(id);
        if active && matched.saturating_add(PROMOTE_MAX_LAG) >= commit && matched > 0 {
            Ok(())
        } else {
            Err(Refusal::NotCaughtUp {
                id,
                matched,
                commit,
                active,
            })
        }
    }

    /// For fault tests only: propose `entry` exactly as given, as the leader, below every validation of
    /// [`Node::handle`] — bytes no API would let through, to check what applying them does (see
    /// `apply_conf_change`: an entry that cannot be applied is a recorded no-op on every replica).
    #[doc(hidden)]
    pub fn propose_unchecked(&mut self, entry: UncheckedEntry) -> Result<(), Error> {
        match entry {
            UncheckedEntry::Normal(data) => self.raw.propose(vec![], data),
            UncheckedEntry::ConfChange(cc) => self.raw.propose_conf_change(vec![], cc),
        }
        .map_err(raft_err)
    }

    /// A leader below its disk reserve refuses every write: hand leadership to the most caught-up active
    /// voter, whose disk may be fine (one whose disk is not refuses to take over, see `step`). Returns
    /// whether a hand-over started.
    fn hand_off_for_space(&mut self) -> bool {
        if !self.is_leader() || self.raw.raft.lead_transferee.is_some() {
            return false;
        }
        let me = self.cfg.id;
        let voters = self.raw.raft.prs().conf().voters().ids();
        let target = self
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(id, pr)| **id != me && pr.recent_active && voters.contains(**id))
            .max_by_key(|(_, pr)| pr.matched)
            .map(|(id, _)| *id);
        match target {
            Some(to) => {
                tracing::warn!(
                    node = me,
                    to,
                    "disk below its reserve: handing leadership over"
                );
                self.raw.transfer_leader(to);
                true
            }
            None => false,
        }
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            leader_hint: self.leader_hint(),
        }
    }

    /// Advance logical time one tick; answer `Timeout` to every request whose deadline is not after `now`.
    pub fn tick(&mut self, now: Instant) {
        self.raw.tick();
        self.ticks += 1;
        // A leader short of space tries a hand-over at most once per election timeout, looking for a
        // target every heartbeat interval (raft-rs clears `recent_active` once per election timeout,
        // so a look right after that finds no one).
        let heartbeat = u64::try_from(self.cfg.heartbeat_tick).unwrap_or(1).max(1);
        if self.space != DiskSpace::Ample
            && self.ticks.is_multiple_of(heartbeat)
            && self.ticks >= self.next_hand_off
            && self.hand_off_for_space()
        {
            let election = u64::try_from(self.cfg.election_tick).unwrap_or(1).max(1);
            self.next_hand_off = self.ticks + election;
        }
        // Reads still waiting for their read index are asked again once per heartbeat interval.
        let heartbeat = u64::try_from(self.cfg.heartbeat_tick).unwrap_or(1).max(1);
        if self.ticks.is_multiple_of(heartbeat) {
            self.resend_waiting_reads();
            self.renew_lease(now);
        }
        self.expire(now);
    }

    /// Answer and forget every request whose deadline has passed. A timed-out proposal may still commit:
    /// `Timeout` means "outcome unknown".
    fn expire(&mut self, now: Instant) {
        for p in self.pending.values_mut() {
            for slot in &mut p.waiters {
                if slot.as_ref().is_some_and(|w| w.deadline <= now) {
                    if let Some(w) = slot.take() {
                        self.pending_commands -= 1;
                        w.answer(Err(Error::Timeout));
                    }
                }
            }
        }
        self.pending
            .retain(|_, p| p.waiters.iter().any(Option::is_some));
        self.expire_reads(now);
        let expired: Vec<(u64, u64)> = self
            .conf_changes
            .iter()
            .filter(|(_, c)| c.waiter.deadline <= now)
            .map(|(&k, _)| k)
            .collect();
        for key in expired {
            if let Some(c) = self.conf_changes.remove(&key) {
                c.waiter.answer(Err(Error::Timeout));
            }
        }
    }

    /// Turn queued commands into entries: up to `max_batch_commands` and `max_entry_bytes` per entry, each
    /// entry with the next commit ts. Called once per loop iteration, after draining the command queue
    /// (batching).
    pub fn flush_proposals(&mut self, now_micros: u64) {
        while !self.queued.is_empty() {
            let take = payload::batch_len(
                self.queued.iter().map(|(c, _)| c.len()),
                self.cfg.max_batch_commands,
                self.cfg.max_entry_bytes,
            );
            let batch: Vec<_> = self.queued.drain(..take).collect();
            if !self.is_leader() {
                let hint = self.leader_hint();
                batch
                    .into_iter()
                    .for_each(|(_, w)| w.answer(Err(Error::NotLeader { leader_hint: hint })));
                continue;
            }
            let (commands, waiters): (Vec<Vec<u8>>, Vec<_>) = batch.into_iter().unzip();
            // One ts per command: the clock reserves the entry's whole range.
            let ts = self.hlc.next(now_micros);
            self.hlc.observe(
                CommitTs { first: ts, step: 1 }
                    .last(commands.len())
                    .unwrap_or(u64::MAX),
            );
            let outcome = payload::encode(ts, &commands)
                .and_then(|data| self.raw.propose(vec![], data).map_err(raft_err));
            match outcome {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    self.counters.entries_proposed += 1;
                    self.counters.commands_proposed += waiters.len() as u64;
                    self.pending_commands += waiters.len();
                    let entry = PendingEntry {
                        waiters: waiters.into_iter().map(Some).collect(),
                        proposed: Instant::now(),
                        persisted: None,
                    };
                    // An earlier proposal of ours at this index (another term) stays pending: it left
                    // our log, yet a later leader holding it could still commit it.
                    if let Some(old) = self.pending.insert((index, self.raw.raft.term), entry) {
                        self.settle(old, |_, _| Err(Error::OutcomeUnknown)); // one entry per (index, term)
                    }
                }
                Err(e) => {
                    let dropped = matches!(e, Error::Raft(_));
                    for w in waiters {
                        w.answer(Err(if dropped {
                            Error::Dropped
                        } else {
                            Error::Invalid("command batch too large")
                        }));
                    }
                }
            }
        }
    }

    /// Answer every proposal still waiting in `entry`: `answer(position, picked)` gives each one's reply.
    fn settle(
        &mut self,
        entry: PendingEntry<S::Output>,
        mut answer: impl FnMut(usize, Instant) -> Result<Committed<S::Output>, Error>,
    ) {
        for (i, slot) in entry.waiters.into_iter().enumerate() {
            if let Some(w) = slot {
                self.pending_commands -= 1;
                let result = answer(i, w.picked);
                w.answer(result);
            }
        }
    }

    /// Handle one `Ready`, in raft-rs's documented order, and return every message it produced (for
    /// callers that send them all at once: tests). See [`Node::process_ready_sending`].
    pub fn process_ready(&mut self) -> Result<Vec<Message>, Error> {
        struct Collect(Vec<Message>);
        impl ReadySink for Collect {
            fn send(&mut self, msgs: Vec<Message>) {
                self.0.extend(msgs);
            }
        }
        let mut out = Collect(Vec::new());
        self.process_ready_sending(&mut out)?;
        Ok(out.0)
    }

    /// Handle one `Ready`, in raft-rs's documented order, handing messages to `send` as soon as they may
    /// leave — the production loop sends them there and then:
    /// 1. the messages that need nothing durable (a leader's appends to its followers) go out *before*
    ///    this node's own log write, so the followers' fsyncs overlap the leader's (Raft §10.2.1; raft-rs
    ///    counts the leader's own copy towards a commit only once `advance` reports it persisted);
    /// 2. then one `persist` (one fsync, unless only the commit index moved) of the entries and hard
    ///    state;
    /// 3. then the messages that needed that write (a follower's append and vote responses) go out
    ///    *before* committed entries are applied, so a follower's acknowledgment never waits for its
    ///    state machine;
    /// 4. committed entries are applied (and acknowledged to clients) only after the write, as
    ///    etcd/raft requires; the light ready's messages follow.
    ///
    /// A change of the membership table reaches `sink` before any message that follows it (the transport
    /// must know a new member's address before the first append to it).
    ///
    /// On an error, messages already handed to `sink` stay sent: none of them claims anything that the
    /// failed write was to make durable.
    pub fn process_ready_sending(&mut self, send: &mut dyn ReadySink) -> Result<(), Error> {
        // Depends on no persisted state: it reports what our log lacks.
        let extra = std::mem::take(&mut self.extra_out);
        self.send_stamped(send, extra);
        if self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // 1. Messages a leader may send before persisting.
            let early = rd.take_messages();
            self.send_stamped(send, early);
            // 2. A snapshot from the leader: install the staged image first (durably), then the log below
            //    restarts after the snapshot in the same write as this Ready's entries and hard state. A
            //    crash between the two leaves the state machine ahead of the log, which is safe: entries
            //    at or below its applied index are skipped when they are delivered again.
            let mut snapshot_write = None;
            if !rd.snapshot().is_empty() {
                snapshot_write = Some(self.install_snapshot(rd.snapshot().clone())?);
            }
            self.staged = None;
            // 3. Read states: reads become servable once applied reaches their index.
            self.read_states(rd.take_read_states());
            // 4. Persist new entries and hard state in one write (synced unless only the commit moved).
            for e in rd.entries() {
                if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                    // An entry that does not decode carries no ts; it is applied as a no-op.
                    if let Ok(ts) = payload::last_ts(&e.data) {
                        self.hlc.observe(ts);
                        self.check_entry_clock(ts);
                    }
                }
            }
            let (snapshot, membership) = snapshot_write.unzip();
            let write = LogWrite {
                entries: rd.take_entries(),
                hard_state: rd.hs().cloned(),
                conf_state: None,
                membership,
                snapshot,
            };
            if !write.entries.is_empty() || write.hard_state.is_some() || write.snapshot.is_some() {
                fail::fail_point!("node::before_persist", |_| Err(Error::Storage(
                    "failpoint".into()
                )));
                let started = Instant::now();
                let persisted = self.raw.store().persist(&write)?;
                let done = Instant::now();
                if persisted == Persisted::Synced {
                    self.counters
                        .fsync
                        .record(done.saturating_duration_since(started));
                }
                if let (Some(first), true) = (write.entries.first(), self.is_leader()) {
                    // The leader's own copy of the entries it proposed is durable.
                    for (_, p) in self.pending.range_mut((first.index, 0)..) {
                        p.persisted.get_or_insert(done);
                    }
                }
            }
            fail::fail_point!("node::after_persist_before_send", |_| Err(Error::Storage(
                "failpoint".into()
            )));
            // 5. Messages that required the write above: out before applying.
            let persisted = rd.take_persisted_messages();
            if let Some(since) = self.append_since.take() {
                self.counters.append_ack.record(since.elapsed());
            }
            self.send_stamped(send, persisted);
            // 6. Committed entries, only now: a leader's commit may count its own entries of this very Ready,
            //    so applying (and acknowledging) them before the write above could acknowledge an entry
            //    that a crash here would lose (found by the `node::before_persist` failpoint test).
            self.apply_committed(rd.take_committed_entries())?;
            // 7. Advance; the light ready carries more messages and committed entries.
            let mut light = self.raw.advance(rd);
            let more = light.take_messages();
            self.send_stamped(send, more);
            self.apply_committed(light.take_committed_entries())?;
            self.raw.advance_apply();
            self.maybe_compact()?;
        }
        self.reissue_reads();
        self.serve_reads();
        if let Some(membership) = self.take_membership_change() {
            send.members_changed(&membership);
        }
        Ok(())
    }

    /// Hands `msgs` to `sink` (after a pending membership change), each append response stamped with this
    /// node's wall clock (`skew`).
    fn send_stamped(&mut self, sink: &mut dyn ReadySink, mut msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        if let Some(membership) = self.take_membership_change() {
            sink.members_changed(&membership);
        }
        if self.wall > 0 {
            for m in &mut msgs {
                skew::stamp(m, self.wall);
            }
        }
        sink.send(msgs);
    }

    /// The wall clock (µs since the epoch) as the loop reads it now; the production loop calls this every
    /// iteration. Without it (the simulator) no clock-skew measurement happens.
    pub fn set_wall_clock(&mut self, micros: u64) {
        self.wall = micros;
    }

    /// The physical clock to stamp the next proposals with ([`Node::flush_proposals`]): this node's wall
    /// clock, unless it leads and is more than `max_clock_skew` ahead of the cluster's view (see
    /// `node/skew.rs`); then the view + `max_clock_skew`, counted and logged.
    pub fn commit_clock(&mut self) -> u64 {
        let wall = self.wall;
        if wall == 0 || !self.is_leader() {
            self.counters.clock_ahead_micros = 0;
            return wall;
        }
        let voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        let others: Vec<u64> = voters
            .iter()
            .copied()
            .filter(|&v| v != self.cfg.id)
            .collect();
        self.peer_clocks.forget_except(&others);
        let estimates = self
            .peer_clocks
            .estimates(&others, wall, CLOCK_SAMPLE_FRESH);
        let max = u64::try_from(self.cfg.max_clock_skew.as_micros()).unwrap_or(u64::MAX);
        let Some(view) = skew::cluster_now(wall, &estimates, voters.len()) else {
            // No view yet (a new leader before its followers' first answers): the newest ts in the log
            // stands in for the cluster's clock, so a fast clock cannot stamp the first batches. A
            // lagging ts is harmless (the HLC keeps them increasing) and lasts one heartbeat round.
            return wall.min(self.hlc.last().saturating_add(max));
        };
        let ahead = wall.saturating_sub(view);
        self.counters.clock_ahead_micros = ahead;
        if ahead <= max {
            return wall;
        }
        if !self.queued.is_empty() {
            self.counters.ts_clamped += 1;
        }
        if wall.saturating_sub(self.skew_logged) >= SKEW_LOG_EVERY {
            self.skew_logged = wall;
            tracing::warn!(
                node = self.cfg.id,
                ahead_ms = ahead / 1000,
                max_ms = max / 1000,
                "this leader's clock is ahead of the cluster's; commit timestamps follow the cluster's \
                 clock plus the allowed skew (check NTP)"
            );
        }
        view.saturating_add(max)
    }

    /// A received entry stamped more than `max_clock_skew` ahead of this node's clock: count and log it.
    fn check_entry_clock(&mut self, ts: u64) {
        let max = u64::try_from(self.cfg.max_clock_skew.as_micros()).unwrap_or(u64::MAX);
        if self.wall == 0 || self.is_leader() || ts <= self.wall.saturating_add(max) {
            return;
        }
        self.counters.ts_ahead_of_clock += 1;
        if self.wall.saturating_sub(self.skew_logged) >= SKEW_LOG_EVERY {
            self.skew_logged = self.wall;
            tracing::warn!(
                node = self.cfg.id,
                ahead_ms = (ts - self.wall) / 1000,
                max_ms = max / 1000,
                "received entries stamped ahead of this node's clock by more than the allowed skew \
                 (the leader's clock or this one is off; check NTP)"
            );
        }
    }

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        for e in entries {
            self.log_bytes = self.log_bytes.saturating_add(e.data.len() as u64);
            let is_conf = matches!(
                e.get_entry_type(),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
            );
            // Raft's configuration follows its own cursor (a restart keeps the persisted conf state; a
            // snapshot brings the conf state at its index while the image may be newer).
            let conf_state = if is_conf && e.index > self.membership.conf_index {
                Some(self.apply_conf_change(&e)?)
            } else {
                None
            };
            let (applied, applied_ts) = self.sm.applied();
            if e.index <= applied {
                // Applied before (a restart, or an image newer than its snapshot): raft re-delivers from
                // its own applied index. A proposal of ours at this slot is settled by identity; its
                // result is lost.
                self.resolve(e.index, e.term, CommitTs::single(applied_ts), None);
                self.resolve_conf_changes(e.index, e.term, None);
                continue;
            }
            let mut applied_conf = None;
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {
                    self.sm.apply(e.index, CommitTs::single(applied_ts), &[])?;
                    self.resolve(e.index, e.term, CommitTs::single(applied_ts), None);
                }
                EntryType::EntryNormal => {
                    let (ts, commands) = match payload::decode(&e.data) {
                        Ok(decoded) => decoded,
                        Err(why) => {
                            // Every replica decodes the same bytes the same way: all apply it as nothing.
                            self.unappliable(e.index, "entry", &why.to_string());
                            self.sm.apply(e.index, CommitTs::single(applied_ts), &[])?;
                            self.resolve(e.index, e.term, CommitTs::single(applied_ts), None);
                            self.resolve_conf_changes(e.index, e.term, None);
                            continue;
                        }
                    };
                    self.hlc
                        .observe(ts.last(commands.len()).unwrap_or(u64::MAX));
                    fail::fail_point!("node::before_apply", |_| Err(Error::StateMachine(
                        "failpoint".into()
                    )));
                    let apply_start = Instant::now();
                    let values = self.sm.apply(e.index, ts, &commands)?;
                    let outputs = Outputs {
                        values,
                        apply_start,
                        applied: Instant::now(),
                    };
                    fail::fail_point!("node::after_apply_before_reply", |_| Err(
                        Error::StateMachine("failpoint".into())
                    ));
                    self.counters.commands_applied += commands.len() as u64;
                    self.resolve(e.index, e.term, ts, Some(outputs));
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cs = conf_state
                        .unwrap_or_else(|| Ok(self.raw.raft.prs().conf().to_conf_state()));
                    self.sm.apply(e.index, CommitTs::single(applied_ts), &[])?;
                    self.resolve(e.index, e.term, CommitTs::single(applied_ts), None);
                    applied_conf = Some(cs);
                }
            }
            self.resolve_conf_changes(e.index, e.term, applied_conf.as_ref());
        }
        Ok(())
    }

    /// Apply the committed conf change `e`: to Raft's configuration and the membership table, persisted
    /// together. `Ok(Err(why))`: it cannot be applied — its bytes or its context do not decode, or Raft
    /// refuses it (it would remove every voter, ...) — and is recorded as a no-op instead: the
    /// configuration stays as it was, an error is logged and counted
    /// ([`NodeCounters::entries_unappliable`]). Each replica decides that from the entry's bytes and the
    /// configuration before it, which are the same everywhere, so all replicas stay identical and the
    /// group goes on. `Err` only for a storage failure.
    fn apply_conf_change(&mut self, e: &Entry) -> Result<Result<ConfState, String>, Error> {
        let prepared = decode_conf_change(e).and_then(|cc| {
            // The table first (pure), so nothing is changed when its context does not decode.
            let membership = self
                .membership
                .apply(e.index, &cc)
                .map_err(|err| format!("its member context: {err}"))?;
            let encoded = membership.encode().map_err(|err| err.to_string())?;
            let cs = self
                .raw
                .apply_conf_change(&cc)
                .map_err(|err| format!("raft refuses it: {err}"))?;
            Ok((cs, membership, encoded))
        });
        let (cs, membership, encoded, outcome) = match prepared {
            Ok((cs, membership, encoded)) => (cs.clone(), membership, encoded, Ok(cs)),
            Err(why) => {
                self.unappliable(e.index, "conf change", &why);
                // Recorded as applied, so a restart does not meet it again.
                let mut membership = self.membership.clone();
                membership.conf_index = e.index;
                let encoded = membership.encode()?;
                (
                    self.raw.raft.prs().conf().to_conf_state(),
                    membership,
                    encoded,
                    Err(why),
                )
            }
        };
        let write = LogWrite {
            entries: vec![],
            hard_state: None,
            conf_state: Some(cs),
            membership: Some(encoded),
            snapshot: None,
        };
        self.raw.store().persist(&write)?;
        self.set_membership(membership);
        if outcome.is_ok() {
            self.conf_changed = true;
        }
        Ok(outcome)
    }

    /// A committed entry that cannot be applied: logged and counted (an alarm), applied as a no-op.
    fn unappliable(&mut self, index: u64, what: &str, why: &str) {
        self.counters.entries_unappliable += 1;
        tracing::error!(
            node = self.cfg.id,
            index,
            error = why,
            "a committed {what} cannot be applied: recorded as a no-op (every replica does the same); \
             nothing of it takes effect"
        );
    }

    /// The committed entry `(index, term)` is applied (`outputs`: its results, `None` if this node did not
    /// compute them): settle every proposal at or below `index` by its [`fate`]. Only a proposal at exactly
    /// this slot gets its result; one proven elsewhere is `Dropped`; the rest are `OutcomeUnknown`.
    fn resolve(
        &mut self,
        index: u64,
        term: u64,
        ts: CommitTs,
        outputs: Option<Outputs<S::Output>>,
    ) {
        let mut outputs = outputs.map(|o| Outputs {
            values: o.values.into_iter().map(Some).collect::<Vec<_>>(),
            apply_start: o.apply_start,
            applied: o.applied,
        });
        let settled: Vec<(u64, u64)> = self
            .pending
            .range(..=(index, u64::MAX))
            .map(|(&key, _)| key)
            .collect();
        for key in settled {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            match (fate(key.0, key.1, index, term), outputs.as_mut()) {
                (Fate::Applied, Some(outs))
                    if key.0 == index && outs.values.len() == p.waiters.len() =>
                {
                    let (proposed, persisted) = (p.proposed, p.persisted);
                    let (apply_start, applied) = (outs.apply_start, outs.applied);
                    self.settle(p, |i, picked| {
                        match outs.values.get_mut(i).and_then(Option::take) {
                            Some(output) => Ok(Committed {
                                index,
                                ts: ts.at(i),
                                output,
                                trace: WriteTrace {
                                    sent: picked,
                                    picked,
                                    proposed,
                                    persisted,
                                    apply_start,
                                    applied,
                                    woke: applied,
                                },
                            }),
                            None => Err(Error::OutcomeUnknown),
                        }
                    })
                }
                (Fate::NotApplied, _) => self.settle(p, |_, _| Err(Error::Dropped)),
                (Fate::Applied | Fate::Unknown, _) => {
                    self.settle(p, |_, _| Err(Error::OutcomeUnknown))
                }
            }
        }
    }

    /// Like [`resolve`](Self::resolve) for membership changes: `conf_state` is the configuration the entry
    /// at `index` produced if it is a conf change applied here (or why it could not be applied).
    fn resolve_conf_changes(
        &mut self,
        index: u64,
        term: u64,
        conf_state: Option<&Result<ConfState, String>>,
    ) {
        let settled: Vec<(u64, u64)> = self
            .conf_changes
            .range(..=(index, u64::MAX))
            .map(|(&key, _)| key)
            .collect();
        for key in settled {
            if let Some(c) = self.conf_changes.remove(&key) {
                c.waiter
                    .answer(match (fate(key.0, key.1, index, term), conf_state) {
                        (Fate::Applied, Some(Ok(cs))) if key.0 == index => Ok(cs.clone()),
                        (Fate::Applied, Some(Err(why))) if key.0 == index => {
                            Err(Error::Unappliable(why.clone()))
                        }
                        (Fate::NotApplied, _) => Err(Error::Dropped),
                        _ => Err(Error::OutcomeUnknown),
                    });
            }
        }
    }

    /// A snapshot at `(index, term)` replaced the state: settle what it covers (results are lost).
    fn resolve_below_snapshot(&mut self, index: u64, term: u64) {
        let ts = CommitTs::single(self.sm.applied().1);
        self.resolve(index, term, ts, None);
        self.resolve_conf_changes(index, term, None);
    }

    /// Fail every waiting request explicitly (shutdown, crash in the simulator).
    pub fn fail_all(&mut self) {
        // Queued commands never reached raft: definitely not applied.
        for (_, w) in self.queued.drain(..) {
            w.answer(Err(Error::Stopped));
        }
        for (_, p) in std::mem::take(&mut self.pending) {
            self.settle(p, |_, _| Err(Error::ShuttingDown));
        }
        let queued_reads = std::mem::take(&mut self.read_queue).into_iter().chain(
            std::mem::take(&mut self.lease_queue)
                .into_iter()
                .map(|(w, _)| w),
        );
        let waiting_reads = std::mem::take(&mut self.reads)
            .into_values()
            .flat_map(|r| r.waiters);
        for w in queued_reads.chain(waiting_reads) {
            w.answer(Err(Error::ShuttingDown));
        }
        for (_, c) in std::mem::take(&mut self.conf_changes) {
            c.waiter.answer(Err(Error::ShuttingDown));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{fate, Fate, Latency, WriteTrace};

    #[test]
    fn a_proposal_is_not_applied_only_when_its_slot_provably_holds_another_entry() {
        // The committed entry at its own index: ours exactly when the terms match.
        assert_eq!(fate(5, 3, 5, 3), Fate::Applied);
        assert_eq!(fate(5, 3, 5, 4), Fate::NotApplied);
        assert_eq!(fate(5, 4, 5, 3), Fate::NotApplied);
        // A later committed entry of our term: we appended it after ours, so ours is in the log.
        assert_eq!(fate(5, 3, 9, 3), Fate::Applied);
        // A later committed entry of a lower term: the slot's term is lower than ours.
        assert_eq!(fate(5, 4, 9, 3), Fate::NotApplied);
        // A later committed entry of a higher term (e.g. a snapshot's): either could be true.
        assert_eq!(fate(5, 3, 9, 4), Fate::Unknown);
    }

    #[test]
    fn write_stages_are_contiguous_and_add_up_to_the_whole_write() {
        let t0 = Instant::now();
        let at = |micros| t0 + Duration::from_micros(micros);
        let mut trace = WriteTrace {
            sent: at(0),
            picked: at(30),
            proposed: at(45),
            persisted: Some(at(300)),
            apply_start: at(700),
            applied: at(760),
            woke: at(800),
        };
        let micros = |t: &WriteTrace| {
            t.stages()
                .map(|(name, d)| (name, u64::try_from(d.as_micros()).unwrap_or(u64::MAX)))
        };
        assert_eq!(
            micros(&trace),
            [
                ("queue", 30),
                ("batch", 15),
                ("log_persist", 255),
                ("commit", 400),
                ("apply", 60),
                ("reply", 40)
            ]
        );
        // An entry made durable by another path: no persist stage, the wait is all `commit`.
        trace.persisted = None;
        assert_eq!(micros(&trace)[2], ("log_persist", 0));
        assert_eq!(micros(&trace)[3], ("commit", 655));
        let total: Duration = trace.stages().iter().map(|(_, d)| *d).sum();
        assert_eq!(total, Duration::from_micros(800));
    }

    #[test]
    fn latency_buckets_are_cumulative_and_the_last_is_the_count() {
        let mut l = Latency::default();
        for micros in [40, 50, 51, 900, 2_000_000] {
            l.record(Duration::from_micros(micros));
        }
        assert_eq!(l.count, 5);
        assert_eq!(l.total_micros, 2_000_000 + 900 + 51 + 50 + 40);
        assert_eq!(&l.buckets[..5], &[2, 3, 3, 3, 4]);
        assert_eq!(l.buckets[12], 4); // ≤ 1 s
        assert_eq!(l.buckets[13], 5); // +Inf
    }
}
