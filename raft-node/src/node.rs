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

use std::collections::BTreeMap;

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message};
use raft::{Config, RawNode, ReadOnlyOption, StateRole};

use crate::error::Error;
use crate::hlc::Hlc;
use crate::payload;
use crate::storage::LogWrite;

/// Raft log storage the node can write: `persist` must make the whole write durable (one fsync) before
/// returning — the node sends messages that depend on it right after.
pub trait LogStorage: raft::Storage {
    fn persist(&self, write: &LogWrite) -> Result<(), Error>;
}

/// The replicated state machine.
pub trait StateMachine {
    /// Index and ts of the last applied entry, as it survived a restart (may lag the log: the node replays).
    fn applied(&self) -> (u64, u64);
    /// Apply entry `index` (ts `ts`) carrying `commands` (possibly none: no-op and conf-change entries).
    /// Must be deterministic; returns one result per command. An error stops the node.
    fn apply(&mut self, index: u64, ts: u64, commands: &[&[u8]]) -> Result<Vec<Vec<u8>>, Error>;
}

pub type Reply<T> = Box<dyn FnOnce(T) + Send>;

/// The closed set of requests the node serves. Raft messages go through [`Node::step`].
pub enum Command {
    /// Replicate and apply one command; the reply carries its result.
    Propose {
        command: Vec<u8>,
        reply: Reply<Result<Vec<u8>, Error>>,
    },
    /// Linearizable read barrier (ReadIndex, or the lease if configured): the reply comes once the local
    /// state machine has applied everything committed when the request arrived; it carries that index.
    ReadIndex {
        reply: Reply<Result<u64, Error>>,
    },
    /// Membership change (joint consensus when it touches several nodes).
    ChangeMembership {
        change: ConfChangeV2,
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

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Ticks without a heartbeat before an election (one tick = 100 ms in production).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Commands batched into one entry at most.
    pub max_batch_commands: usize,
    /// Commands queued or in flight at most; beyond that proposals are refused with `Overloaded`.
    pub max_inflight_commands: usize,
    /// Serve ReadIndex from the leader lease instead of a heartbeat round (needs check_quorum, which is on).
    pub lease_reads: bool,
    /// Ticks after which an unanswered proposal or read times out.
    pub request_timeout_ticks: u64,
    /// The election timeout is drawn from `[min, max)` ticks by raft-rs's own RNG; the simulator pins it
    /// (`max = min + 1`) with a value from its seed so runs are reproducible. `None`: raft-rs's default
    /// `[election_tick, 2 × election_tick)`.
    pub election_timeout_range: Option<(usize, usize)>,
}

impl NodeConfig {
    pub fn new(id: u64) -> Self {
        NodeConfig {
            id,
            election_tick: 10,
            heartbeat_tick: 3,
            max_batch_commands: 1024,
            max_inflight_commands: 20_000,
            lease_reads: false,
            request_timeout_ticks: 50,
            election_timeout_range: None,
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
    pub inflight_commands: usize,
    pub counters: NodeCounters,
}

/// Counters for metrics and the group-commit benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub persists: u64,
    pub entries_proposed: u64,
    pub commands_proposed: u64,
    pub commands_applied: u64,
}

struct PendingEntry {
    term: u64,
    replies: Vec<Reply<Result<Vec<u8>, Error>>>,
    since_tick: u64,
}

struct PendingRead {
    reply: Reply<Result<u64, Error>>,
    index: Option<u64>,
    since_tick: u64,
}

struct PendingConfChange {
    term: u64,
    reply: Reply<Result<ConfState, Error>>,
}

pub struct Node<L: LogStorage, S: StateMachine> {
    raw: RawNode<L>,
    sm: S,
    hlc: Hlc,
    cfg: NodeConfig,
    queued: Vec<(Vec<u8>, Reply<Result<Vec<u8>, Error>>)>,
    pending: BTreeMap<u64, PendingEntry>,
    pending_commands: usize,
    reads: BTreeMap<Vec<u8>, PendingRead>,
    next_read: u64,
    conf_changes: BTreeMap<u64, PendingConfChange>,
    ticks: u64,
    counters: NodeCounters,
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
    /// state machine has not applied yet are replayed from the log.
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
        let raw = RawNode::new(&raft_cfg, storage, logger).map_err(raft_err)?;
        Ok(Node {
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
        })
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
            inflight_commands: self.pending_commands + self.queued.len(),
            counters: self.counters,
        }
    }

    /// Deliver a Raft message from a peer. Messages from unknown ids are the transport's to drop.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(node = self.cfg.id, error = %e, "raft message ignored");
        }
    }

    pub fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Propose { command, reply } => {
                if !self.is_leader() {
                    return reply(Err(Error::NotLeader {
                        leader_hint: self.leader_hint(),
                    }));
                }
                if self.pending_commands + self.queued.len() >= self.cfg.max_inflight_commands {
                    return reply(Err(Error::Overloaded));
                }
                self.queued.push((command, reply));
            }
            Command::ReadIndex { reply } => {
                self.next_read += 1;
                let mut ctx = self.cfg.id.to_be_bytes().to_vec();
                ctx.extend_from_slice(&self.next_read.to_be_bytes());
                self.raw.read_index(ctx.clone());
                self.reads.insert(
                    ctx,
                    PendingRead {
                        reply,
                        index: None,
                        since_tick: self.ticks,
                    },
                );
            }
            Command::ChangeMembership { change, reply } => {
                match self.raw.propose_conf_change(vec![], change) {
                    Ok(()) => {
                        let index = self.raw.raft.raft_log.last_index();
                        self.conf_changes.insert(
                            index,
                            PendingConfChange {
                                term: self.raw.raft.term,
                                reply,
                            },
                        );
                    }
                    Err(raft::Error::ProposalDropped) if !self.is_leader() => {
                        reply(Err(Error::NotLeader {
                            leader_hint: self.leader_hint(),
                        }))
                    }
                    Err(e) => reply(Err(raft_err(e))),
                }
            }
            Command::TransferLeader { to, reply } => {
                if !self.is_leader() {
                    return reply(Err(Error::NotLeader {
                        leader_hint: self.leader_hint(),
                    }));
                }
                self.raw.transfer_leader(to);
                reply(Ok(()))
            }
            Command::Status { reply } => reply(self.status()),
        }
    }

    /// Advance logical time one tick; time out requests that waited too long.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.ticks += 1;
        let deadline = self.ticks.saturating_sub(self.cfg.request_timeout_ticks);
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since_tick < deadline)
            .map(|(&i, _)| i)
            .collect();
        for index in expired {
            if let Some(p) = self.pending.remove(&index) {
                self.pending_commands -= p.replies.len();
                p.replies.into_iter().for_each(|r| r(Err(Error::Timeout)));
            }
        }
        let expired: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| r.since_tick < deadline)
            .map(|(c, _)| c.clone())
            .collect();
        for ctx in expired {
            if let Some(r) = self.reads.remove(&ctx) {
                (r.reply)(Err(Error::Timeout));
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
                    .for_each(|(_, r)| r(Err(Error::NotLeader { leader_hint: hint })));
                continue;
            }
            let (commands, replies): (Vec<Vec<u8>>, Vec<_>) = batch.into_iter().unzip();
            let ts = self.hlc.next(now_micros);
            let outcome = payload::encode(ts, &commands)
                .and_then(|data| self.raw.propose(vec![], data).map_err(raft_err));
            match outcome {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    self.counters.entries_proposed += 1;
                    self.counters.commands_proposed += replies.len() as u64;
                    self.pending_commands += replies.len();
                    let entry = PendingEntry {
                        term: self.raw.raft.term,
                        replies,
                        since_tick: self.ticks,
                    };
                    if let Some(old) = self.pending.insert(index, entry) {
                        // Our own earlier proposal at this index was truncated away by a new leader.
                        self.pending_commands -= old.replies.len();
                        old.replies.into_iter().for_each(|r| r(Err(Error::Dropped)));
                    }
                }
                Err(e) => {
                    let dropped = matches!(e, Error::Raft(_));
                    for r in replies {
                        r(Err(if dropped {
                            Error::Dropped
                        } else {
                            Error::Invalid("command batch too large")
                        }));
                    }
                }
            }
        }
    }

    /// Handle one `Ready`, in raft-rs's documented order. Returns the messages to send; all of them depend
    /// only on state that is durable by the time this returns (one `persist`, one fsync, per Ready), and
    /// committed entries are applied (and acknowledged) only after that write, as etcd/raft requires.
    pub fn process_ready(&mut self) -> Result<Vec<Message>, Error> {
        let mut out = Vec::new();
        if self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // 1. Messages a leader may send before persisting (we send them after; that is also correct).
            out.extend(rd.take_messages());
            // 2. A snapshot from the leader.
            if !rd.snapshot().is_empty() {
                return Err(Error::Invalid(
                    "snapshot install is not supported by this node yet",
                ));
            }
            // 3. Read states: reads become servable once applied reaches their index.
            for rs in rd.take_read_states() {
                if let Some(r) = self.reads.get_mut(&rs.request_ctx) {
                    r.index = Some(rs.index);
                }
            }
            // 4. Persist new entries and hard state in one synced write.
            for e in rd.entries() {
                if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                    self.hlc.observe(payload::decode_ts(&e.data)?);
                }
            }
            let write = LogWrite {
                entries: rd.take_entries(),
                hard_state: rd.hs().cloned(),
                conf_state: None,
                snapshot: None,
            };
            if !write.entries.is_empty() || write.hard_state.is_some() {
                fail::fail_point!("node::before_persist", |_| Err(Error::Storage(
                    "failpoint".into()
                )));
                self.raw.store().persist(&write)?;
                self.counters.persists += 1;
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
        }
        self.serve_reads();
        Ok(out)
    }

    fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        for e in entries {
            let (applied, applied_ts) = self.sm.applied();
            if e.index <= applied {
                continue; // applied before a restart; raft re-delivers from its own applied index
            }
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {
                    self.sm.apply(e.index, applied_ts, &[])?;
                    self.resolve(e.index, e.term, None);
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
                    self.resolve(e.index, e.term, Some(results));
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let cs = self.apply_conf_change(&e)?;
                    self.sm.apply(e.index, applied_ts, &[])?;
                    self.resolve(e.index, e.term, None);
                    if let Some(p) = self.conf_changes.remove(&e.index) {
                        (p.reply)(if p.term == e.term {
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
                (entry.remove().reply)(Err(Error::Dropped));
            }
        }
        Ok(())
    }

    fn apply_conf_change(&mut self, e: &Entry) -> Result<ConfState, Error> {
        let corrupt = |err: prost::DecodeError| Error::Corruption {
            at: format!("entry {}", e.index),
            detail: err.to_string(),
        };
        let cs = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            let cc = ConfChangeV2::decode(&e.data[..]).map_err(corrupt)?;
            self.raw.apply_conf_change(&cc)
        } else {
            let cc = ConfChange::decode(&e.data[..]).map_err(corrupt)?;
            self.raw.apply_conf_change(&cc)
        }
        .map_err(raft_err)?;
        let write = LogWrite {
            entries: vec![],
            hard_state: None,
            conf_state: Some(cs.clone()),
            snapshot: None,
        };
        self.raw.store().persist(&write)?;
        Ok(cs)
    }

    /// Answer the proposals waiting on `index`: ours if the entry has the term we proposed it in.
    fn resolve(&mut self, index: u64, term: u64, results: Option<Vec<Vec<u8>>>) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > index {
                break;
            }
            let at = *entry.key();
            let p = entry.remove();
            self.pending_commands -= p.replies.len();
            match &results {
                Some(results)
                    if at == index && p.term == term && results.len() == p.replies.len() =>
                {
                    for (reply, result) in p.replies.into_iter().zip(results.iter().cloned()) {
                        reply(Ok(result));
                    }
                }
                _ => p.replies.into_iter().for_each(|r| r(Err(Error::Dropped))),
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.sm.applied().0;
        let ready: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(c, _)| c.clone())
            .collect();
        for ctx in ready {
            if let Some(r) = self.reads.remove(&ctx) {
                (r.reply)(Ok(r.index.unwrap_or(applied)));
            }
        }
    }

    /// Fail every waiting request explicitly (shutdown, crash in the simulator).
    pub fn fail_all(&mut self) {
        for (_, r) in self.queued.drain(..) {
            r(Err(Error::ShuttingDown));
        }
        for (_, p) in std::mem::take(&mut self.pending) {
            p.replies
                .into_iter()
                .for_each(|r| r(Err(Error::ShuttingDown)));
        }
        self.pending_commands = 0;
        for (_, r) in std::mem::take(&mut self.reads) {
            (r.reply)(Err(Error::ShuttingDown));
        }
        for (_, c) in std::mem::take(&mut self.conf_changes) {
            (c.reply)(Err(Error::ShuttingDown));
        }
    }
}
