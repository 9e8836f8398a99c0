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
//!   A proposal is `Dropped` when the log index it was given is applied with another entry (another term).
//! * [`Error::Timeout`], [`Error::ShuttingDown`] for a proposal — outcome unknown: it may still commit.
//! * [`Error::Stopped`] — the command never reached raft (the loop is gone or stopping): not applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, ReadOnlyOption, SnapshotStatus, StateRole};

use crate::error::Error;
use crate::hlc::Hlc;
use crate::membership::{Membership, MembershipChange};
use crate::payload;
use crate::storage::{LogStorage, LogWrite};

mod lost_log;
mod reads;
mod snapshots;

/// The replicated state machine.
pub trait StateMachine {
    /// What applying one command gives back to its proposer (handed over in-process, never encoded).
    type Output: Send + 'static;
    /// Index and ts of the last applied entry, as it survived a restart (may lag the log: the node replays).
    fn applied(&self) -> (u64, u64);
    /// Apply entry `index` (ts `ts`) carrying `commands` (possibly none: no-op and conf-change entries).
    /// Must be deterministic; returns one output per command. An error stops the node.
    fn apply(
        &mut self,
        index: u64,
        ts: u64,
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

/// A committed command: where it landed in the log, its commit ts, and what the state machine gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<O> {
    pub index: u64,
    pub ts: u64,
    pub output: O,
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
    /// Lease read: answered at once on a leader that has committed an entry of its term (check_quorum
    /// makes a leader that lost its quorum step down within an election timeout); `NotLeader` elsewhere.
    /// The reply carries the commit index the local state machine must reach before reading.
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

/// Raft timing: the length of a tick and the election and heartbeat intervals in ticks. The defaults are
/// the production values (heartbeats every 100 ms, elections after 1–2 s drawn from 50 distinct
/// timeouts); every other layer takes them from here.
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
            election_ticks: 50,
            heartbeat_ticks: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Ticks without a heartbeat before an election (see [`Timing`] for the production values).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Commands batched into one entry at most.
    pub max_batch_commands: usize,
    /// Commands queued or in flight at most; beyond that proposals are refused with `Overloaded`.
    pub max_inflight_commands: usize,
    /// Serve ReadIndex from the leader lease instead of a heartbeat round (needs check_quorum, which is on).
    pub lease_reads: bool,
    /// The election timeout is drawn from `[min, max)` ticks by raft-rs's own RNG; the simulator pins it
    /// (`max = min + 1`) with a value from its seed so runs are reproducible. `None`: raft-rs's default
    /// `[election_tick, 2 × election_tick)`.
    pub election_timeout_range: Option<(usize, usize)>,
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
            election_tick: timing.election_ticks,
            heartbeat_tick: timing.heartbeat_ticks,
            max_batch_commands: 1024,
            max_inflight_commands: 20_000,
            lease_reads: false,
            election_timeout_range: None,
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

/// Upper bounds (µs) of the Raft log fsync latency histogram buckets.
pub const FSYNC_BUCKETS_MICROS: [u64; 10] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000,
];

/// Counters for metrics and the group-commit benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub persists: u64,
    pub entries_proposed: u64,
    pub commands_proposed: u64,
    pub commands_applied: u64,
    pub compactions: u64,
    /// Latency of the synced Raft log writes: total µs and a histogram over [`FSYNC_BUCKETS_MICROS`]
    /// (cumulative counts, the last bucket is +Inf), for the metrics endpoint.
    pub fsync_micros_total: u64,
    pub fsync_buckets: [u64; FSYNC_BUCKETS_MICROS.len() + 1],
    pub snapshots_installed: u64,
}

/// A reply with the deadline of its request.
pub(super) struct Waiter<T> {
    deadline: Instant,
    reply: Reply<Result<T, Error>>,
}

impl<T> Waiter<T> {
    fn answer(self, result: Result<T, Error>) {
        (self.reply)(result)
    }
}

/// A command waiting for the next batch: its bytes and its proposer.
type Queued<O> = (Vec<u8>, Waiter<Committed<O>>);

/// The proposals of one entry, in command order; a proposal whose deadline passed is answered `Timeout`
/// and leaves `None` behind, so the others still line up with the entry's outputs.
struct PendingEntry<O> {
    term: u64,
    waiters: Vec<Option<Waiter<Committed<O>>>>,
}

pub(super) struct PendingRead {
    waiter: Waiter<u64>,
    index: Option<u64>,
}

struct PendingConfChange {
    term: u64,
    waiter: Waiter<ConfState>,
}

pub struct Node<L: LogStorage, S: StateMachine> {
    raw: RawNode<L>,
    sm: S,
    hlc: Hlc,
    cfg: NodeConfig,
    queued: Vec<Queued<S::Output>>,
    pending: BTreeMap<u64, PendingEntry<S::Output>>,
    pending_commands: usize,
    reads: BTreeMap<Vec<u8>, PendingRead>,
    next_read: u64,
    conf_changes: BTreeMap<u64, PendingConfChange>,
    ticks: u64,
    counters: NodeCounters,
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
    /// `ticks` when the leader last reached this node (see [`NodeStatus::ticks_since_leader`]).
    leader_contact_tick: u64,
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
        // Every ts in the log is below the next one we hand out.
        if last_index > 0 {
            if let Ok(ents) = storage.entries(
                last_index,
                last_index + 1,
                None,
                raft::GetEntriesContext::empty(false),
            ) {
                for e in ents
                    .iter()
                    .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
                {
                    hlc.observe(payload::decode_ts(&e.data)?);
                }
            }
        }
        let raft_cfg = Config {
            id: cfg.id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            // The state machine may be ahead of the persisted commit index (it is persisted lazily);
            // entries at or below its applied index are skipped when raft re-delivers them.
            applied: applied.min(state.hard_state.commit),
            check_quorum: true,
            pre_vote: true,
            read_only_option: if cfg.lease_reads {
                ReadOnlyOption::LeaseBased
            } else {
                ReadOnlyOption::Safe
            },
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
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
        let mut node = Node {
            raw,
            sm,
            hlc,
            cfg,
            queued: Vec::new(),
            pending: BTreeMap::new(),
            pending_commands: 0,
            reads: BTreeMap::new(),
            next_read: 0,
            conf_changes: BTreeMap::new(),
            ticks: 0,
            counters: NodeCounters::default(),
            membership,
            membership_changed: true,
            staged: None,
            log_bytes: 0,
            conf_changed: false,
            extra_out: Vec::new(),
            read_epoch: (0, 0),
            learned: BTreeMap::new(),
            leader_contact_tick: 0,
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
                        recent_active: id == self.cfg.id || pr.recent_active,
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

    /// The membership table if it changed since the last call (the loop hands it to the transport).
    pub fn take_membership_change(&mut self) -> Option<Membership> {
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

    /// Deliver a Raft message from a peer. Messages from unknown ids are the transport's to drop.
    pub fn step(&mut self, mut msg: Message) {
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
        let from_leader = matches!(
            msg.get_msg_type(),
            MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
        )
        .then_some(msg.from);
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
                if !self.is_leader() {
                    return reply(Err(self.not_leader()));
                }
                if self.pending_commands + self.queued.len() >= self.cfg.max_inflight_commands {
                    return reply(Err(Error::Overloaded));
                }
                self.queued.push((command, Waiter { deadline, reply }));
            }
            Command::LeaseRead { deadline, reply } => self.lease_read(Waiter { deadline, reply }),
            Command::ReadIndex { deadline, reply } => self.read_index(Waiter { deadline, reply }),
            Command::ChangeMembership {
                change,
                deadline,
                reply,
            } => {
                if !self.is_leader() {
                    return reply(Err(self.not_leader()));
                }
                let cc = change.to_conf_change();
                let status = self.status();
                if let Err(e) = self.membership.check(&cc, &status.voters, &status.learners) {
                    return reply(Err(e));
                }
                match self.raw.propose_conf_change(vec![], cc) {
                    Ok(()) => {
                        let index = self.raw.raft.raft_log.last_index();
                        self.conf_changes.insert(
                            index,
                            PendingConfChange {
                                term: self.raw.raft.term,
                                waiter: Waiter { deadline, reply },
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
                self.raw.transfer_leader(to);
                reply(Ok(()))
            }
            Command::Status { reply } => reply(self.status()),
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
        // Reads still waiting for their read index are asked again once per heartbeat interval.
        let heartbeat = u64::try_from(self.cfg.heartbeat_tick).unwrap_or(1).max(1);
        if self.ticks.is_multiple_of(heartbeat) {
            self.resend_waiting_reads();
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
        let expired: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| r.waiter.deadline <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for ctx in expired {
            if let Some(r) = self.reads.remove(&ctx) {
                r.waiter.answer(Err(Error::Timeout));
            }
        }
        let expired: Vec<u64> = self
            .conf_changes
            .iter()
            .filter(|(_, c)| c.waiter.deadline <= now)
            .map(|(&i, _)| i)
            .collect();
        for index in expired {
            if let Some(c) = self.conf_changes.remove(&index) {
                c.waiter.answer(Err(Error::Timeout));
            }
        }
    }

    /// Turn queued commands into entries: up to `max_batch_commands` per entry, each entry with the next
    /// commit ts. Called once per loop iteration, after draining the command queue (batching).
    pub fn flush_proposals(&mut self, now_micros: u64) {
        while !self.queued.is_empty() {
            let take = self.queued.len().min(self.cfg.max_batch_commands);
            let batch: Vec<_> = self.queued.drain(..take).collect();
            if !self.is_leader() {
                let hint = self.leader_hint();
                batch
                    .into_iter()
                    .for_each(|(_, w)| w.answer(Err(Error::NotLeader { leader_hint: hint })));
                continue;
            }
            let (commands, waiters): (Vec<Vec<u8>>, Vec<_>) = batch.into_iter().unzip();
            let ts = self.hlc.next(now_micros);
            let outcome = payload::encode(ts, &commands)
                .and_then(|data| self.raw.propose(vec![], data).map_err(raft_err));
            match outcome {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    self.counters.entries_proposed += 1;
                    self.counters.commands_proposed += waiters.len() as u64;
                    self.pending_commands += waiters.len();
                    let entry = PendingEntry {
                        term: self.raw.raft.term,
                        waiters: waiters.into_iter().map(Some).collect(),
                    };
                    if let Some(old) = self.pending.insert(index, entry) {
                        // Our own earlier proposal at this index was truncated away by a new leader.
                        self.settle(old, |_| Err(Error::Dropped));
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

    /// Answer every proposal still waiting in `entry`: `answer(position)` gives each one's reply.
    fn settle(
        &mut self,
        entry: PendingEntry<S::Output>,
        mut answer: impl FnMut(usize) -> Result<Committed<S::Output>, Error>,
    ) {
        for (i, slot) in entry.waiters.into_iter().enumerate() {
            if let Some(w) = slot {
                self.pending_commands -= 1;
                w.answer(answer(i));
            }
        }
    }

    /// Handle one `Ready`, in raft-rs's documented order. Returns the messages to send; all of them depend
    /// only on state that is durable by the time this returns (one `persist`, one fsync, per Ready), and
    /// committed entries are applied (and acknowledged) only after that write, as etcd/raft requires.
    pub fn process_ready(&mut self) -> Result<Vec<Message>, Error> {
        // Depends on no persisted state: it reports what our log lacks.
        let mut out = std::mem::take(&mut self.extra_out);
        if self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // 1. Messages a leader may send before persisting (we send them after; that is also correct).
            out.extend(rd.take_messages());
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
            for rs in rd.take_read_states() {
                if let Some(r) = self.reads.get_mut(&rs.request_ctx) {
                    r.index.get_or_insert(rs.index);
                }
            }
            // 4. Persist new entries and hard state in one synced write.
            for e in rd.entries() {
                if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                    self.hlc.observe(payload::decode_ts(&e.data)?);
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
                let started = std::time::Instant::now();
                self.raw.store().persist(&write)?;
                self.record_fsync(started.elapsed());
            }
            fail::fail_point!("node::after_persist_before_send", |_| Err(Error::Storage(
                "failpoint".into()
            )));
            // 5. Committed entries, only now: a leader's commit may count its own entries of this very Ready,
            //    so applying (and acknowledging) them before the write above could acknowledge an entry
            //    that a crash here would lose (found by the `node::before_persist` failpoint test).
            self.apply_committed(rd.take_committed_entries())?;
            // 6. Messages that required the write above.
            out.extend(rd.take_persisted_messages());
            // 7. Advance; the light ready carries more messages and committed entries.
            let mut light = self.raw.advance(rd);
            out.extend(light.take_messages());
            self.apply_committed(light.take_committed_entries())?;
            self.raw.advance_apply();
            self.maybe_compact()?;
        }
        self.reissue_reads();
        self.serve_reads();
        Ok(out)
    }

    fn record_fsync(&mut self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let c = &mut self.counters;
        c.persists += 1;
        c.fsync_micros_total = c.fsync_micros_total.saturating_add(micros);
        for (i, bound) in FSYNC_BUCKETS_MICROS.iter().enumerate() {
            if micros <= *bound {
                c.fsync_buckets[i] += 1;
            }
        }
        c.fsync_buckets[FSYNC_BUCKETS_MICROS.len()] += 1;
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
                continue; // applied before a restart; raft re-delivers from its own applied index
            }
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {
                    self.sm.apply(e.index, applied_ts, &[])?;
                    self.resolve(e.index, e.term, applied_ts, None);
                }
                EntryType::EntryNormal => {
                    let (ts, commands) = payload::decode(&e.data)?;
                    self.hlc.observe(ts);
                    fail::fail_point!("node::before_apply", |_| Err(Error::StateMachine(
                        "failpoint".into()
                    )));
                    let results = self.sm.apply(e.index, ts, &commands)?;
                    fail::fail_point!("node::after_apply_before_reply", |_| Err(
                        Error::StateMachine("failpoint".into())
                    ));
                    self.counters.commands_applied += commands.len() as u64;
                    self.resolve(e.index, e.term, ts, Some(results));
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cs =
                        conf_state.unwrap_or_else(|| self.raw.raft.prs().conf().to_conf_state());
                    self.sm.apply(e.index, applied_ts, &[])?;
                    self.resolve(e.index, e.term, applied_ts, None);
                    if let Some(p) = self.conf_changes.remove(&e.index) {
                        p.waiter.answer(if p.term == e.term {
                            Ok(cs)
                        } else {
                            Err(Error::Dropped)
                        });
                    }
                }
            }
            // Conf changes proposed at indexes now passed with other entries are gone.
            while let Some(entry) = self.conf_changes.first_entry() {
                if *entry.key() > e.index {
                    break;
                }
                entry.remove().waiter.answer(Err(Error::Dropped));
            }
        }
        Ok(())
    }

    fn apply_conf_change(&mut self, e: &Entry) -> Result<ConfState, Error> {
        let corrupt = |err: prost::DecodeError| Error::Corruption {
            at: format!("entry {}", e.index),
            detail: err.to_string(),
        };
        let cc = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            ConfChangeV2::decode(&e.data[..]).map_err(corrupt)?
        } else {
            let v1 = ConfChange::decode(&e.data[..]).map_err(corrupt)?;
            let mut single = raft::prelude::ConfChangeSingle::default();
            single.set_change_type(v1.get_change_type());
            single.node_id = v1.node_id;
            let mut v2 = ConfChangeV2::default();
            v2.changes.push(single);
            v2.context = v1.context;
            v2
        };
        let cs = self.raw.apply_conf_change(&cc).map_err(raft_err)?;
        let membership = self.membership.apply(e.index, &cc)?;
        let write = LogWrite {
            entries: vec![],
            hard_state: None,
            conf_state: Some(cs.clone()),
            membership: Some(membership.encode()),
            snapshot: None,
        };
        self.raw.store().persist(&write)?;
        self.set_membership(membership);
        self.conf_changed = true;
        Ok(cs)
    }

    /// Answer the proposals waiting on `index`: ours if the entry has the term we proposed it in.
    fn resolve(&mut self, index: u64, term: u64, ts: u64, outputs: Option<Vec<S::Output>>) {
        let mut outputs: Option<Vec<Option<S::Output>>> =
            outputs.map(|o| o.into_iter().map(Some).collect());
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > index {
                break;
            }
            let at = *entry.key();
            let p = entry.remove();
            match outputs.as_mut() {
                Some(outs) if at == index && p.term == term && outs.len() == p.waiters.len() => {
                    self.settle(p, |i| match outs.get_mut(i).and_then(Option::take) {
                        Some(output) => Ok(Committed { index, ts, output }),
                        None => Err(Error::Dropped),
                    })
                }
                _ => self.settle(p, |_| Err(Error::Dropped)),
            }
        }
    }

    /// Fail every waiting request explicitly (shutdown, crash in the simulator).
    pub fn fail_all(&mut self) {
        // Queued commands never reached raft: definitely not applied.
        for (_, w) in self.queued.drain(..) {
            w.answer(Err(Error::Stopped));
        }
        for (_, p) in std::mem::take(&mut self.pending) {
            self.settle(p, |_| Err(Error::ShuttingDown));
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            r.waiter.answer(Err(Error::ShuttingDown));
        }
        for (_, c) in std::mem::take(&mut self.conf_changes) {
            c.waiter.answer(Err(Error::ShuttingDown));
        }
    }
}
