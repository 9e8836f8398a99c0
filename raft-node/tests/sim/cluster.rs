//! One simulated run: nodes, network, clients, a fault schedule, and the checks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::prelude::Message;
use raft_node::{Command, Committed, Error, Node, NodeConfig, ReadySink, Role};
use testkit::history::{outcome_of_error, History};
use testkit::kv_machine::{Disk, Images, KvMachine};
use testkit::linearizability::{CheckResult, Event, Op, Outcome, Ret};
use testkit::mem_log::MemLog;
use testkit::net::Net;
use testkit::op_codec::{decode_ret, encode_op};
use testkit::rng::Rng;

// A child of this module (it reaches the simulator's internals), kept in its own file.
#[path = "settle.rs"]
pub mod settle;
// Explicit paths: `tests/failpoints.rs` includes this file with `#[path]`, which would otherwise look
// for these beside it.
#[path = "cluster/clocks.rs"]
mod clocks;
#[path = "cluster/lease.rs"]
mod lease;
#[path = "cluster/read_burst.rs"]
mod read_burst;

use clocks::Clocks;

const STEP_MS: u64 = 10;
const TICK_MS: u64 = 100;
/// How long a simulated client waits for an answer (its request's deadline), in simulated ms.
const REQUEST_TIMEOUT_MS: u64 = 50 * TICK_MS;
const KEYS: &[&str] = &["e0/a", "e0/b", "e1/a", "k", "c0"];
const COUNTER: &str = "c0";
const CLIENT_TIMEOUT_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    pub clients: usize,
    /// Clients issue operations and faults happen until then.
    pub active_ms: u64,
    /// After healing, the cluster must converge within this.
    pub settle_ms: u64,
    /// Treat a node error (e.g. an injected failpoint) as a crash of that node instead of a failure.
    pub crash_on_error: bool,
    /// Log compaction threshold (entries): small, so snapshots are sent in most runs.
    pub compact_log_entries: u64,
    /// Each node's clock runs at its own rate, off by at most this many parts per million (within the
    /// lease's drift margin, `NodeConfig::lease_margin_percent`).
    pub max_clock_drift_ppm: u64,
    /// Percentage of reads the clients send as lease reads (the rest are ReadIndex reads).
    pub lease_read_percent: u64,
    /// Pin the election timeouts instead of drawing them from the seed: node `i` gets this many ticks
    /// plus `2 × (i − 1)` (distinct, so elections do not split forever).
    pub election_timeout: Option<usize>,
}

impl SimConfig {
    pub fn for_seed(seed: u64) -> Self {
        SimConfig {
            seed,
            nodes: if seed.is_multiple_of(2) { 3 } else { 5 },
            clients: 3,
            active_ms: 12_000,
            settle_ms: 15_000,
            crash_on_error: false,
            compact_log_entries: 16 + seed % 48,
            max_clock_drift_ppm: 40_000,
            lease_read_percent: 50,
            election_timeout: None,
        }
    }
}

enum Answer {
    Write(Result<Committed<Vec<u8>>, Error>),
    Read(Result<u64, Error>),
}

struct Client {
    target: u64,
    /// (history index, node asked, op) of the outstanding operation.
    busy: Option<(usize, u64, Op)>,
    next_at: u64,
    /// An increment answered "definitely not applied", to send again (as the HTTP layer re-runs such a
    /// request on the leader), with the retries left.
    retry: Option<(Op, u8)>,
    /// How long this client waits for an answer (its request's deadline and when it gives up).
    patience_ms: u64,
    /// The outstanding operation is a lease read.
    lease: bool,
}

pub struct Sim {
    /// The `Instant` of simulated time 0.
    base: Instant,
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    nodes: BTreeMap<u64, Option<Node<MemLog, KvMachine>>>,
    logs: BTreeMap<u64, MemLog>,
    disks: BTreeMap<u64, Disk>,
    images: Images,
    snapshots: u64,
    restart_at: BTreeMap<u64, u64>,
    net: Net,
    clients: Vec<Client>,
    history: History,
    /// (client, history index of the request, answer)
    inbox: Arc<Mutex<Vec<(usize, usize, Answer)>>>,
    leaders: HashMap<u64, u64>,
    logger: slog::Logger,
    crashes: u64,
    error_crashes: u64,
    partitions: u64,
    /// Scripted faults of `settle.rs` (an isolated leader waiting for a snapshot, clocks set back).
    settle: settle::SettleFaults,
    clocks: Clocks,
    lease_reads: u64,
    /// Messages sent, by type.
    sent_by_type: BTreeMap<i32, u64>,
}

pub struct Stats {
    pub error_crashes: u64,
    ops: usize,
    crashes: u64,
    partitions: u64,
    sent: u64,
    dropped: u64,
    snapshots: u64,
    lease_reads: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ops, {} crashes ({} injected), {} partitions, {} msgs ({} dropped), {} snapshots, {} lease reads",
            self.ops,
            self.crashes,
            self.error_crashes,
            self.partitions,
            self.sent,
            self.dropped,
            self.snapshots,
            self.lease_reads
        )
    }
}

impl Sim {
    /// Simulated time `ms` as node `id`'s own clock reads it, as an `Instant` for its deadlines and
    /// lease: an offset from one base taken at start, scaled by that node's clock rate, so every
    /// comparison the nodes make depends only on simulated time.
    fn local_instant(&self, id: u64, ms: u64) -> Instant {
        self.clocks.instant(id, ms, self.base)
    }

    pub fn new(cfg: SimConfig) -> Self {
        let ids: Vec<u64> = (1..=cfg.nodes).collect();
        let logs: BTreeMap<u64, MemLog> = ids
            .iter()
            .map(|&id| (id, MemLog::bootstrap(ids.clone())))
            .collect();
        let mut rng = Rng::new(cfg.seed);
        let clients = (0..cfg.clients)
            .map(|i| Client {
                target: 1 + (i as u64 % cfg.nodes),
                busy: None,
                next_at: 0,
                retry: None,
                // One client outwaits a leader isolated until a snapshot reaches it (see `settle.rs`).
                patience_ms: if i == 0 {
                    settle::PATIENT_MS
                } else {
                    CLIENT_TIMEOUT_MS
                },
                lease: false,
            })
            .collect();
        let mut net = Net::default();
        net.max_delay_ms = 30;
        let clocks = Clocks::new(&ids, cfg.max_clock_drift_ppm, &mut rng);
        let mut sim = Sim {
            cfg,
            rng,
            now: 0,
            base: Instant::now(),
            nodes: BTreeMap::new(),
            logs,
            disks: BTreeMap::new(),
            images: Images::default(),
            snapshots: 0,
            restart_at: BTreeMap::new(),
            net,
            clients,
            history: History::default(),
            inbox: Arc::new(Mutex::new(Vec::new())),
            leaders: HashMap::new(),
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            crashes: 0,
            error_crashes: 0,
            partitions: 0,
            settle: settle::SettleFaults::default(),
            clocks,
            lease_reads: 0,
            sent_by_type: BTreeMap::new(),
        };
        for id in ids {
            sim.start(id);
        }
        sim
    }

    fn start(&mut self, id: u64) {
        // raft-rs would draw the election timeout from its own RNG; pin it from the seed instead.
        let drawn = self.rng.range(10, 20) as usize;
        let timeout = match self.cfg.election_timeout {
            Some(t) => t + 2 * (id as usize - 1),
            None => self.distinct_timeout(id, drawn),
        };
        let cfg = NodeConfig {
            // The simulator's own timing (in its 100 ms ticks), not the production defaults.
            tick: Duration::from_millis(TICK_MS),
            election_tick: 10,
            heartbeat_tick: 3,
            election_timeout_range: Some((timeout, timeout + 1)),
            // Compact often, so crashed and partitioned nodes come back behind the log and need snapshots.
            compact_log_entries: self.cfg.compact_log_entries,
            ..NodeConfig::new(id)
        };
        let disk = self.disks.entry(id).or_default().clone();
        let node = Node::new(
            cfg,
            self.logs[&id].clone(),
            KvMachine::restore(disk, self.images.clone()),
            &self.logger,
        )
        .unwrap_or_else(|e| panic!("node {id} cannot start from its persisted log: {e}"));
        self.nodes.insert(id, Some(node));
    }

    /// Crash a node as a power loss: it loses everything but its synced log (a commit index written
    /// lazily since the last synced write goes back) and the state machine's durable copy (it replays
    /// the log after that copy), and every request waiting on it gets an explicit failure.
    fn crash(&mut self, id: u64, down_ms: u64) {
        if let Some(mut node) = self.nodes.insert(id, None).flatten() {
            node.fail_all();
            if let Some(log) = self.logs.get(&id) {
                log.lose_unsynced();
            }
            self.set_clock_back(id);
            self.crashes += 1;
            self.restart_at.insert(id, self.now + down_ms);
        }
    }

    /// A snapshot reaches its follower with an image of the sender's state machine taken now (as the TCP
    /// transport streams one), and the sender learns the outcome (raft-rs waits for it).
    fn deliver_snapshot(&mut self, msg: raft::prelude::Message) {
        let (from, to) = (msg.from, msg.to);
        let image = match self.nodes.get(&from) {
            Some(Some(sender)) => sender.state_machine().image(),
            _ => return, // the sender crashed meanwhile; its successor starts afresh
        };
        let Some(Some(receiver)) = self.nodes.get_mut(&to) else {
            return self.report_snapshot(from, to, false);
        };
        receiver.step_snapshot(msg, Box::new(self.images.send(image)));
        self.snapshots += 1;
        self.report_snapshot(from, to, true);
    }

    fn report_snapshot(&mut self, from: u64, to: u64, delivered: bool) {
        if let Some(Some(sender)) = self.nodes.get_mut(&from) {
            sender.report_snapshot(to, delivered);
        }
    }

    fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    fn random_fault(&mut self) {
        let ids = self.ids();
        match self.rng.below(9) {
            0 | 1 => {
                // Split into two sides, at random.
                let mut side: Vec<u64> = ids
                    .iter()
                    .copied()
                    .filter(|_| self.rng.chance(50))
                    .collect();
                if side.is_empty() || side.len() == ids.len() {
                    side = vec![*self.rng.pick(&ids)];
                }
                let other: Vec<u64> = ids.iter().copied().filter(|i| !side.contains(i)).collect();
                self.net.heal(); // a new split replaces the previous one
                self.net.partition(&side, &other);
                self.partitions += 1;
            }
            2 => {
                // Isolate the current leader, if any.
                if let Some(leader) = self.current_leader() {
                    let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
                    self.net.heal();
                    self.net.partition(&[leader], &rest);
                    self.partitions += 1;
                }
            }
            3 => {
                let (a, b) = (*self.rng.pick(&ids), *self.rng.pick(&ids));
                if a != b {
                    self.net.block(a, b); // one-way link
                }
            }
            4 => {
                let id = *self.rng.pick(&ids);
                let down = self.rng.range(200, 3_000);
                self.crash(id, down);
            }
            5 => self.net.heal(),
            7 => self.isolate_leader_until_snapshot(),
            8 => self.arm_power_loss_after_election(),
            _ => {
                self.net.drop_percent = self.rng.below(20);
                self.net.dup_percent = self.rng.below(10);
                self.net.max_delay_ms = self.rng.range(5, 80);
            }
        }
    }

    fn current_leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .flatten()
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.status().term)
            .map(|n| n.id())
    }

    fn random_op(&mut self) -> Op {
        let key = self.rng.pick(KEYS).as_bytes().to_vec();
        if key == COUNTER.as_bytes() {
            return if self.rng.chance(70) {
                Op::incr(key, 1)
            } else {
                Op::get(key)
            };
        }
        let value = format!("v{}", self.rng.below(1000)).into_bytes();
        match self.rng.below(10) {
            0..=2 => Op::Put { key, value },
            3..=5 => Op::Get { key },
            6 => Op::Delete { key },
            7 => {
                let expected = if self.rng.chance(30) {
                    None
                } else {
                    Some(format!("v{}", self.rng.below(1000)).into_bytes())
                };
                Op::Cas {
                    key,
                    expected,
                    new: value,
                }
            }
            8 => Op::Incr {
                key,
                delta: self.rng.range(1, 5) as i64,
            },
            _ => Op::Checkpoint {
                entity: self.rng.pick(&["e0", "e1"]).as_bytes().to_vec(),
            },
        }
    }

    fn issue(&mut self, client: usize) {
        let op = self.next_op(client);
        let target = self.clients[client].target;
        let idx = self.history.invoke(client as u64, op.clone(), self.now);
        let patience = self.clients[client].patience_ms.max(REQUEST_TIMEOUT_MS);
        let deadline = self.local_instant(target, self.now + patience);
        let lease = op.is_read_only() && self.rng.chance(self.cfg.lease_read_percent);
        let Some(Some(node)) = self.nodes.get_mut(&target) else {
            // Connection refused: nothing was sent.
            self.history.complete(idx, self.now, Outcome::Failed);
            self.note_retry(client, &op, true);
            self.clients[client].target = 1 + self.rng.below(self.cfg.nodes);
            self.clients[client].next_at = self.now + 20;
            return;
        };
        let inbox = Arc::clone(&self.inbox);
        let cmd = if lease {
            Command::LeaseRead {
                deadline,
                reply: Box::new(move |r| {
                    inbox.lock().unwrap().push((client, idx, Answer::Read(r)))
                }),
            }
        } else if op.is_read_only() {
            Command::ReadIndex {
                deadline,
                reply: Box::new(move |r| {
                    inbox.lock().unwrap().push((client, idx, Answer::Read(r)))
                }),
            }
        } else {
            let command = encode_op(&op);
            Command::Propose {
                command,
                deadline,
                reply: Box::new(move |r| {
                    inbox.lock().unwrap().push((client, idx, Answer::Write(r)))
                }),
            }
        };
        node.handle(cmd);
        self.clients[client].busy = Some((idx, target, op));
        self.clients[client].lease = lease;
    }

    /// What a read that its node just answered sees: that node's applied state.
    fn read_value(&self, op: &Op, node_id: u64) -> Outcome {
        match (op, self.nodes.get(&node_id)) {
            (Op::Get { key }, Some(Some(node))) => Outcome::Ok(Ret::Value(
                node.state_machine().model().get(key).map(<[u8]>::to_vec),
            )),
            _ => Outcome::Failed,
        }
    }

    fn complete(&mut self, client: usize, request: usize, answer: Answer) {
        // An answer to a request the client already gave up on changes nothing: that op stays unknown.
        if self.clients[client]
            .busy
            .as_ref()
            .is_none_or(|(idx, _, _)| *idx != request)
        {
            return;
        }
        let Some((idx, node_id, op)) = self.clients[client].busy.take() else {
            return;
        };
        let lease = std::mem::take(&mut self.clients[client].lease);
        let mut hinted = false;
        let outcome = match answer {
            Answer::Read(Ok(_)) if lease => {
                self.lease_reads += 1;
                self.read_value(&op, node_id)
            }
            Answer::Read(Ok(_)) => self.read_value(&op, node_id),
            Answer::Read(Err(Error::NotLeader {
                leader_hint: Some(l),
            })) => {
                // Lease reads are served by the leader only.
                self.clients[client].target = l;
                hinted = true;
                Outcome::Failed
            }
            Answer::Read(Err(_)) => Outcome::Failed,
            Answer::Write(Ok(Committed { output: bytes, .. })) => match decode_ret(&bytes) {
                Some(Some(ret)) => Outcome::Ok(ret),
                Some(None) => Outcome::Failed, // rejected by the state machine, no effect
                None => panic!("undecodable result {bytes:?}"),
            },
            Answer::Write(Err(e)) => {
                self.note_retry(client, &op, outcome_of_error(&e) == Outcome::Failed);
                if let Error::NotLeader {
                    leader_hint: Some(l),
                } = e
                {
                    self.clients[client].target = l;
                } else if matches!(e, Error::NotLeader { .. }) {
                    self.clients[client].target = 1 + self.rng.below(self.cfg.nodes);
                }
                outcome_of_error(&e)
            }
        };
        if matches!(outcome, Outcome::Failed) && op.is_read_only() && !hinted {
            self.clients[client].target = 1 + self.rng.below(self.cfg.nodes);
        }
        self.history.complete(idx, self.now, outcome);
        self.clients[client].next_at = self.now + self.rng.range(0, 60);
    }

    /// One 10 ms step of the world.
    fn step(&mut self, active: bool) -> Result<(), String> {
        self.now += STEP_MS;
        let due: Vec<u64> = self
            .restart_at
            .iter()
            .filter(|(_, &at)| at <= self.now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.restart_at.remove(&id);
            self.start(id);
        }
        let (due, cut) = self.net.due_and_cut(self.now);
        for msg in due {
            if msg.get_msg_type() == raft::prelude::MessageType::MsgSnapshot {
                self.deliver_snapshot(msg);
            } else if let Some(Some(node)) = self.nodes.get_mut(&msg.to) {
                node.step(msg);
            }
        }
        for msg in cut {
            if msg.get_msg_type() == raft::prelude::MessageType::MsgSnapshot {
                self.report_snapshot(msg.from, msg.to, false);
            }
        }
        // Each node ticks by its own clock.
        for id in self.ids() {
            if let Some(now) = self.clocks.tick_due(id, self.now, self.base) {
                if let Some(Some(node)) = self.nodes.get_mut(&id) {
                    node.tick(now);
                }
            }
        }
        if active {
            for c in 0..self.clients.len() {
                if self.clients[c].busy.is_none() && self.clients[c].next_at <= self.now {
                    self.issue(c);
                }
            }
        }
        let clocks: BTreeMap<u64, u64> = self
            .ids()
            .into_iter()
            .map(|id| (id, self.clock_micros(id)))
            .collect();
        let mut outgoing = Vec::new();
        let mut failed = Vec::new();
        for node in self.nodes.values_mut().flatten() {
            node.flush_reads(self.clocks.instant(node.id(), self.now, self.base));
            node.flush_proposals(clocks[&node.id()]);
            // As the production loop: messages handed out before a failing write stay sent.
            match node.process_ready_sending(&mut Outgoing(&mut outgoing)) {
                Ok(()) => {}
                Err(_) if self.cfg.crash_on_error => failed.push(node.id()),
                Err(e) => return Err(format!("node {} ready failed: {e}", node.id())),
            }
        }
        for id in failed {
            self.error_crashes += 1;
            let down = self.rng.range(100, 1_000);
            self.crash(id, down);
        }
        for msg in outgoing {
            *self
                .sent_by_type
                .entry(msg.get_msg_type() as i32)
                .or_default() += 1;
            let (from, to) = (msg.from, msg.to);
            let snapshot = msg.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
            if !self.net.send(msg, self.now, &mut self.rng) && snapshot {
                self.report_snapshot(from, to, false);
            }
        }
        let answers = std::mem::take(&mut *self.inbox.lock().unwrap());
        for (client, request, answer) in answers {
            self.complete(client, request, answer);
        }
        // Clients give up after a second: the op's outcome stays unknown and the client tries another node.
        for c in 0..self.clients.len() {
            if let Some((idx, _, _)) = self.clients[c].busy {
                if self.history.events()[idx].invoke + self.clients[c].patience_ms <= self.now {
                    self.clients[c].busy = None;
                    self.clients[c].target = 1 + self.rng.below(self.cfg.nodes);
                    self.clients[c].next_at = self.now;
                }
            }
        }
        if self.now.is_multiple_of(1000) && std::env::var("KVS_RAFT_SIM_DEBUG").is_ok() {
            let st: Vec<String> = self
                .nodes
                .values()
                .map(|n| {
                    n.as_ref().map_or("down".into(), |n| {
                        let s = n.status();
                        format!(
                            "{}:{:?} t{} c{} a{} l{}",
                            s.id, s.role, s.term, s.commit, s.applied, s.last_index
                        )
                    })
                })
                .collect();
            eprintln!(
                "t={} ops={} sent={} {st:?}",
                self.now,
                self.history.len(),
                self.net.sent
            );
        }
        // At most one leader per term, ever.
        for node in self.nodes.values().flatten() {
            let st = node.status();
            if st.role == Role::Leader {
                let first = *self.leaders.entry(st.term).or_insert(st.id);
                if first != st.id {
                    return Err(format!(
                        "two leaders in term {}: {first} and {}",
                        st.term, st.id
                    ));
                }
            }
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        let nodes: Vec<_> = self.nodes.values().flatten().collect();
        if nodes.len() as u64 != self.cfg.nodes || self.current_leader().is_none() {
            return false;
        }
        let st: Vec<_> = nodes.iter().map(|n| n.status()).collect();
        // Every entry committed (the leader's own no-op included): a node may restart with an older commit
        // index than it had (a power loss takes back commit-only writes), so commits of an earlier term
        // are known again only once the leader has committed in its own, as before any linearizable read.
        st.iter().all(|s| {
            s.applied == st[0].commit
                && s.commit == st[0].commit
                && s.last_index == st[0].last_index
                && s.commit == s.last_index
        }) && self.clients.iter().all(|c| c.busy.is_none())
    }

    fn simulate(&mut self) -> Result<(), String> {
        // Every run has at least one partition and one crash, at random times, plus random faults.
        let partition_at = self.rng.range(1_000, self.cfg.active_ms / 2);
        let crash_at = self
            .rng
            .range(self.cfg.active_ms / 2, self.cfg.active_ms - 1_000);
        let mut next_fault = self.rng.range(500, 2_000);
        while self.now < self.cfg.active_ms {
            if self.now == partition_at / STEP_MS * STEP_MS {
                let ids = self.ids();
                let victim = *self.rng.pick(&ids);
                let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != victim).collect();
                self.net.partition(&[victim], &rest);
                self.partitions += 1;
            }
            if self.now == crash_at / STEP_MS * STEP_MS {
                let id = self.current_leader().unwrap_or(1);
                let down = self.rng.range(300, 2_000);
                self.crash(id, down);
            }
            self.advance_settle_faults();
            if self.now >= next_fault && !self.settle_fault_running() {
                self.random_fault();
                next_fault = self.now + self.rng.range(300, 2_500);
            }
            self.step(true)?;
        }
        // Heal everything and let the cluster converge.
        self.net.heal();
        (
            self.net.drop_percent,
            self.net.dup_percent,
            self.net.max_delay_ms,
        ) = (0, 0, 20);
        for (id, _) in std::mem::take(&mut self.restart_at) {
            self.start(id);
        }
        self.settle.isolated = None;
        let deadline = self.now + self.cfg.settle_ms;
        while !self.converged() {
            if self.now >= deadline {
                let st: Vec<_> = self.nodes.values().flatten().map(|n| n.status()).collect();
                return Err(format!(
                    "no convergence {} ms after healing: {st:?}",
                    self.cfg.settle_ms
                ));
            }
            self.step(false)?;
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let nodes: Vec<&Node<MemLog, KvMachine>> = self.nodes.values().flatten().collect();
        // Log matching: identical logs up to the commit index (all nodes converged on it).
        let commit = nodes[0].status().commit;
        // Below every node's first index the entries are compacted into the state machines.
        let low = nodes
            .iter()
            .map(|n| n.status().first_index)
            .max()
            .unwrap_or(1)
            .min(commit + 1);
        let first = &self.logs[&nodes[0].id()];
        let reference = raft::Storage::entries(
            first,
            low,
            commit + 1,
            None,
            raft::GetEntriesContext::empty(false),
        )
        .map_err(|e| e.to_string())?;
        for n in &nodes[1..] {
            let log = raft::Storage::entries(
                &self.logs[&n.id()],
                low,
                commit + 1,
                None,
                raft::GetEntriesContext::empty(false),
            )
            .map_err(|e| e.to_string())?;
            if log != reference {
                return Err(format!(
                    "logs of node {} and {} differ below commit {commit}",
                    nodes[0].id(),
                    n.id()
                ));
            }
        }
        // Applied state identical everywhere.
        for n in &nodes[1..] {
            if n.state_machine().model() != nodes[0].state_machine().model() {
                return Err(format!(
                    "state of node {} differs from node {}",
                    n.id(),
                    nodes[0].id()
                ));
            }
        }
        // The final state, read after every operation ended, joins the history: acknowledged writes must be
        // in it (the checker rejects a lost write as a non-linearizable final read).
        let end = self.now + 1;
        let model = nodes[0].state_machine().model();
        for (i, key) in KEYS.iter().enumerate() {
            let value = model.get(key.as_bytes()).map(<[u8]>::to_vec);
            let read = self
                .history
                .invoke(1000 + i as u64, Op::get(key.as_bytes()), end);
            self.history
                .complete(read, end + 1, Outcome::Ok(Ret::Value(value)));
        }
        // Counters: the final value is within [acknowledged, acknowledged + unknown] increments.
        let bounds = self
            .history
            .counter_bounds(COUNTER.as_bytes())
            .expect("the counter is only incremented by 1");
        let counter: i64 = model
            .get(COUNTER.as_bytes())
            .map_or(Ok(0), |v| std::str::from_utf8(v).unwrap().parse())
            .unwrap();
        if !bounds.contains(&counter) {
            return Err(format!(
                "counter {counter} outside [{}, {}]",
                bounds.start(),
                bounds.end()
            ));
        }
        match self.history.check() {
            CheckResult::Linearizable => Ok(()),
            other => Err(format!("history not linearizable: {other:?}")),
        }
    }

    pub fn run(mut self) -> Result<Stats, String> {
        self.simulate()?;
        self.check()?;
        Ok(Stats {
            error_crashes: self.error_crashes,
            ops: self.history.len(),
            crashes: self.crashes,
            partitions: self.partitions,
            sent: self.net.sent,
            dropped: self.net.dropped,
            snapshots: self.snapshots,
            lease_reads: self.lease_reads,
        })
    }

    pub fn run_and_take_history(&mut self) -> Result<Vec<Event>, String> {
        self.simulate()?;
        self.check()?;
        Ok(std::mem::take(&mut self.history).into_events())
    }
}

/// The simulator's [`ReadySink`]: every message into this step's outgoing list, which the simulated
/// network delivers (messages handed out before a failing write stay sent, as in production).
struct Outgoing<'a>(&'a mut Vec<Message>);

impl ReadySink for Outgoing<'_> {
    fn send(&mut self, msgs: Vec<Message>) {
        self.0.extend(msgs);
    }
}
