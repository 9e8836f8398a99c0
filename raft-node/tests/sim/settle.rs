//! Faults for how proposals are settled and stamped (issue 9, items 1 and 4), kept apart from the rest of
//! the simulator: a leader isolated until a snapshot holding its own pending proposals reaches it, clients
//! re-sending increments answered "definitely not applied", clocks set back on restart, a power loss of the
//! whole site right after an election (a no-op tail behind entries not known committed), distinct pinned
//! election timeouts; and a scripted run of the first: a leader whose proposals were replicated but whose
//! followers it no longer hears steps down; the others commit the entries, compact their logs past them
//! and later send the old leader a snapshot that contains them. Every proposal's answer must then match
//! its fate: applied → `Ok` or an unknown outcome, never "definitely not applied".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use raft_node::{Command, Committed, Error};
use testkit::history::outcome_of_error;
use testkit::linearizability::{Op, Outcome};
use testkit::op_codec::encode_op;

use super::{Sim, SimConfig, COUNTER};

type Answers = Arc<Mutex<Vec<Result<Committed<Vec<u8>>, Error>>>>;

/// How long the patient client waits: longer than a leader stays isolated in
/// [`Sim::isolate_leader_until_snapshot`], so its proposal is still pending when the snapshot arrives.
pub const PATIENT_MS: u64 = 15_000;
/// How often a client sends an increment again after "definitely not applied".
const INCR_RETRIES: u8 = 3;

/// The simulator's faults for settling proposals and commit timestamps (issue 9, items 1 and 4).
#[derive(Default)]
pub struct SettleFaults {
    /// A leader cut off from its followers' answers, waiting for a snapshot.
    pub isolated: Option<Isolation>,
    /// How far each node's physical clock is behind simulated time (µs): set back on every restart.
    behind_us: BTreeMap<u64, u64>,
    /// Retries left for each client's increment in flight.
    retries_left: BTreeMap<usize, u8>,
    /// The election timeout (ticks) each node was started with.
    timeouts: BTreeMap<u64, usize>,
    /// The highest term when a power loss was armed: it strikes once a leader of a later term appears.
    power_loss_after: Option<u64>,
}

pub struct Isolation {
    leader: u64,
    /// When the one-way cut (it still reaches its followers, hears nothing back) becomes a partition.
    cut_at: u64,
    heal_at: u64,
}

impl Sim {
    /// The physical clock node `id` stamps commits with, in µs: simulated time, minus how far restarts
    /// set it back.
    pub(super) fn clock_micros(&self, id: u64) -> u64 {
        let behind = self.settle.behind_us.get(&id).copied().unwrap_or(0);
        (1_000_000_000 + self.now * 1000).saturating_sub(behind)
    }

    /// A crashed node comes back with its clock set back by up to 5 s more.
    pub(super) fn set_clock_back(&mut self, id: u64) {
        let back = self.rng.range(1_000, 5_000_000);
        *self.settle.behind_us.entry(id).or_default() += back;
    }

    /// `drawn`, or the next election timeout in [10, 20) no other running node has: two nodes pinned to
    /// the same timeout campaign in lockstep after losing their leader and can split their votes forever
    /// (raft-rs would draw a fresh timeout each time; the simulator pins one per start).
    pub(super) fn distinct_timeout(&mut self, id: u64, drawn: usize) -> usize {
        let taken: Vec<usize> = self
            .settle
            .timeouts
            .iter()
            .filter(|&(&other, _)| {
                other != id && self.nodes.get(&other).is_some_and(Option::is_some)
            })
            .map(|(_, &t)| t)
            .collect();
        let timeout = (0..10)
            .map(|k| 10 + (drawn - 10 + k) % 10)
            .find(|t| !taken.contains(t))
            .unwrap_or(drawn);
        self.settle.timeouts.insert(id, timeout);
        timeout
    }

    /// The client's next operation: an increment to send again, or a fresh random one.
    pub(super) fn next_op(&mut self, client: usize) -> Op {
        if let Some((op, left)) = self.clients[client].retry.take() {
            self.settle.retries_left.insert(client, left);
            return op;
        }
        self.settle.retries_left.insert(client, INCR_RETRIES);
        self.random_op()
    }

    /// A client whose increment was answered "definitely not applied" (`failed`) sends it again (as the
    /// HTTP layer re-runs a request on the leader): if it had been applied after all, the counter's bounds
    /// and the linearizability check catch the double effect.
    pub(super) fn note_retry(&mut self, client: usize, op: &Op, failed: bool) {
        let left = self.settle.retries_left.get(&client).copied().unwrap_or(0);
        if failed && matches!(op, Op::Incr { .. }) && left > 0 {
            self.clients[client].retry = Some((op.clone(), left - 1));
        }
    }

    /// Cut the leader off from its followers' answers (it still reaches them): its proposals are
    /// replicated, it never learns they commit, check_quorum makes it step down and the others elect a
    /// leader, which commits them. Then a full partition, while the others compact their logs, and a
    /// heal: the old leader gets a snapshot holding its own pending proposals.
    pub(super) fn isolate_leader_until_snapshot(&mut self) {
        let Some(leader) = self.current_leader() else {
            return;
        };
        self.net.heal();
        for id in self.ids() {
            if id != leader {
                self.net.block(id, leader);
            }
        }
        self.partitions += 1;
        let cut_at = self.now + 3_000;
        let heal_at = cut_at + self.rng.range(3_000, 6_000);
        self.settle.isolated = Some(Isolation {
            leader,
            cut_at,
            heal_at,
        });
    }

    /// Arm a power loss of the whole site for right after the next election: a new leader's no-op is the
    /// tail of its log, behind entries it never learned were committed; everyone restarts with its clock
    /// set back, and whoever leads next must still stamp above every ts in its log.
    pub(super) fn arm_power_loss_after_election(&mut self) {
        let term = self
            .nodes
            .values()
            .flatten()
            .map(|n| n.status().term)
            .max()
            .unwrap_or(0);
        self.settle.power_loss_after = Some(term);
    }

    /// Move the isolation and the armed power loss on; called every step while clients are active.
    pub(super) fn advance_settle_faults(&mut self) {
        if let Some(term) = self.settle.power_loss_after {
            if self
                .nodes
                .values()
                .flatten()
                .any(|n| n.is_leader() && n.status().term > term)
            {
                self.settle.power_loss_after = None;
                for id in self.ids() {
                    let down = self.rng.range(100, 1_500);
                    self.crash(id, down);
                }
            }
        }
        let Some(iso) = &self.settle.isolated else {
            return;
        };
        let leader = iso.leader;
        if self.now >= iso.heal_at {
            self.net.heal();
            self.settle.isolated = None;
        } else if self.now >= iso.cut_at {
            let rest: Vec<u64> = self.ids().into_iter().filter(|&i| i != leader).collect();
            self.net.partition(&[leader], &rest);
        }
    }

    /// Random faults wait while an isolation runs (a heal would end it early).
    pub(super) fn settle_fault_running(&self) -> bool {
        self.settle.isolated.is_some()
    }

    /// Step the world (no clients, no random faults) until `done` holds; `Err` after `limit_ms`.
    fn step_until_or_report(
        &mut self,
        what: &str,
        limit_ms: u64,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Result<(), String> {
        let until = self.now + limit_ms;
        while !done(self) {
            if self.now >= until {
                let st: Vec<String> = self
                    .nodes
                    .values()
                    .flatten()
                    .map(|n| {
                        let s = n.status();
                        format!(
                            "{}:{:?} t{} c{} a{} f{} l{}",
                            s.id, s.role, s.term, s.commit, s.applied, s.first_index, s.last_index
                        )
                    })
                    .collect();
                return Err(format!("{what}: not within {limit_ms} ms: {st:?}"));
            }
            self.step(false)?;
        }
        Ok(())
    }

    /// Hand `op` to node `id` directly (no simulated client); its answer lands in `answers`.
    fn propose_to(&mut self, id: u64, op: &Op, answers: &Answers) {
        let answers = Arc::clone(answers);
        let deadline = self.local_instant(id, self.now + 600_000);
        if let Some(Some(node)) = self.nodes.get_mut(&id) {
            node.handle(Command::Propose {
                command: encode_op(op),
                deadline,
                reply: Box::new(move |r| answers.lock().unwrap().push(r)),
            });
        }
    }

    fn applied_of(&self, id: u64) -> u64 {
        self.nodes[&id].as_ref().map_or(0, |n| n.status().applied)
    }
}

/// The scripted run: `Err` if the old leader answered an increment the new one applied "definitely not
/// applied", or left one unanswered.
pub fn snapshot_over_pending_proposals(seed: u64) -> Result<(), String> {
    let mut sim = Sim::new(SimConfig {
        nodes: 3,
        compact_log_entries: 16,
        ..SimConfig::for_seed(seed)
    });
    (
        sim.net.drop_percent,
        sim.net.dup_percent,
        sim.net.max_delay_ms,
    ) = (0, 0, 5);
    sim.step_until_or_report("first leader", 20_000, |s| {
        s.current_leader()
            .is_some_and(|l| s.applied_of(l) > 0 && s.nodes.values().flatten().count() == 3)
    })?;
    let old = sim.current_leader().ok_or("no leader")?;
    let others: Vec<u64> = sim.ids().into_iter().filter(|&i| i != old).collect();
    // The old leader still reaches its followers, but hears nothing back: its increments are replicated,
    // it never learns they commit, and check_quorum makes it step down.
    for &f in &others {
        sim.net.block(f, old);
    }
    let increments: Answers = Answers::default();
    const INCREMENTS: i64 = 5;
    for _ in 0..INCREMENTS {
        sim.propose_to(old, &Op::incr(COUNTER.as_bytes(), 1), &increments);
    }
    sim.step_until_or_report("a new leader", 20_000, |s| {
        s.current_leader().is_some_and(|l| l != old)
    })?;
    let new = sim.current_leader().ok_or("no new leader")?;
    // Cut the old leader off completely; the new one commits the increments and enough writes to compact
    // its log past them.
    sim.net.partition(&[old], &others);
    let writes: Answers = Answers::default();
    for i in 0..40 {
        sim.propose_to(new, &Op::put("k", format!("w{i}")), &writes);
        sim.step(false)?;
    }
    sim.step_until_or_report("compaction on the new leader", 20_000, |s| {
        s.nodes[&new]
            .as_ref()
            .is_some_and(|n| n.status().first_index > 10 && writes.lock().unwrap().len() == 40)
    })?;
    // Heal: the old leader is behind the compacted log and gets a snapshot holding its increments; one
    // more write is applied after it.
    sim.net.heal();
    sim.step_until_or_report("a snapshot reaching the old leader", 20_000, |s| {
        s.snapshots > 0 && s.applied_of(old) >= s.applied_of(new)
    })?;
    sim.propose_to(new, &Op::put("k", "after"), &writes);
    sim.step_until_or_report("the old leader catching up", 20_000, |s| {
        s.applied_of(old) >= s.applied_of(new) && writes.lock().unwrap().len() == 41
    })?;
    let counter: i64 = sim.nodes[&new]
        .as_ref()
        .and_then(|n| n.state_machine().model().get(COUNTER.as_bytes()))
        .map_or(Ok(0), |v| std::str::from_utf8(v).unwrap().parse())
        .map_err(|e| format!("counter: {e}"))?;
    let answers = increments.lock().unwrap();
    // What the old leader told its proposers must be consistent with what happened.
    let acknowledged = answers.iter().filter(|a| a.is_ok()).count() as i64;
    let not_applied: Vec<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().err())
        .filter(|e| outcome_of_error(e) == Outcome::Failed)
        .map(|e| e.to_string())
        .collect();
    if counter != INCREMENTS {
        return Err(format!(
            "the new leader applied {counter} of the {INCREMENTS} increments (scenario broken)"
        ));
    }
    if !not_applied.is_empty() {
        return Err(format!(
            "{counter} increments applied, {acknowledged} acknowledged, yet {} answered \"definitely not \
             applied\": {not_applied:?}",
            not_applied.len()
        ));
    }
    if answers.len() as i64 != INCREMENTS {
        return Err(format!(
            "{} of {INCREMENTS} increments answered",
            answers.len()
        ));
    }
    Ok(())
}
