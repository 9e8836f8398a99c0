//! Lease-read scenarios, driven step by step on a quiet simulated network (no clients, no random faults):
//! the old leader cut off from the others must stop answering lease reads before a new leader can
//! acknowledge a write, and a healthy leader answers them without a round trip.

use std::sync::{Arc, Mutex};

use raft_node::{Command, Error};
use testkit::linearizability::Op;
use testkit::op_codec::encode_op;

use super::{Sim, SimConfig, STEP_MS, TICK_MS};

type Mailbox<T> = Arc<Mutex<Vec<T>>>;

/// What happened to the lease reads sent to a partitioned old leader.
#[derive(Debug, Default)]
pub struct PartitionedLeader {
    /// Lease reads the old leader answered `Ok` after the new leader had acknowledged a newer write,
    /// showing the old value: (simulated ms, value seen).
    pub stale: Vec<(u64, Option<Vec<u8>>)>,
    /// Lease reads it answered `Ok` while still in its lease (before the new leader's write).
    pub served: u64,
    /// When the new leader acknowledged its write.
    pub new_write_at: Option<u64>,
}

impl Sim {
    /// A 3-node cluster on a quiet network with every election timeout pinned to `election_timeout`
    /// ticks and clocks that run exactly at real time.
    pub fn quiet(seed: u64, election_timeout: usize) -> Sim {
        let mut cfg = SimConfig::for_seed(seed);
        cfg.nodes = 3;
        cfg.clients = 0;
        cfg.max_clock_drift_ppm = 0;
        cfg.election_timeout = Some(election_timeout);
        let mut sim = Sim::new(cfg);
        sim.net.max_delay_ms = 5;
        sim
    }

    /// Step (no clients) until `done` holds; an error after `max_ms` simulated ms.
    pub(super) fn step_until(
        &mut self,
        max_ms: u64,
        what: &str,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Result<(), String> {
        let until = self.now + max_ms;
        while !done(self) {
            if self.now >= until {
                return Err(format!("{what}: not within {max_ms} ms"));
            }
            self.step(false)?;
        }
        Ok(())
    }

    /// Propose `key = value` on `node` and step until it is acknowledged.
    fn write(&mut self, node: u64, key: &str, value: &str) -> Result<(), String> {
        let answers: Mailbox<Result<(), Error>> = Arc::default();
        let deadline = self.local_instant(node, self.now + 10_000);
        let inbox = Arc::clone(&answers);
        let Some(Some(n)) = self.nodes.get_mut(&node) else {
            return Err(format!("node {node} is down"));
        };
        n.handle(Command::Propose {
            command: encode_op(&Op::put(key, value)),
            deadline,
            reply: Box::new(move |r| inbox.lock().unwrap().push(r.map(|_| ()))),
        });
        self.step_until(10_000, "write acknowledged", |_| {
            !answers.lock().unwrap().is_empty()
        })?;
        let result = answers.lock().unwrap().remove(0);
        result.map_err(|e| format!("write {key}={value} on node {node}: {e}"))
    }

    /// Send a lease read to `node`; its answer lands in `mailbox` as (ms it was sent, result).
    fn lease_read(&mut self, node: u64, mailbox: &Mailbox<(u64, Result<u64, Error>)>) {
        let sent = self.now;
        let deadline = self.local_instant(node, self.now + 2_000);
        let inbox = Arc::clone(mailbox);
        if let Some(Some(n)) = self.nodes.get_mut(&node) {
            n.handle(Command::LeaseRead {
                deadline,
                reply: Box::new(move |r| inbox.lock().unwrap().push((sent, r))),
            });
        }
    }

    fn value_at(&self, node: u64, key: &str) -> Option<Vec<u8>> {
        self.nodes.get(&node)?.as_ref().and_then(|n| {
            n.state_machine()
                .model()
                .get(key.as_bytes())
                .map(<[u8]>::to_vec)
        })
    }

    fn term_of(&self, node: u64) -> u64 {
        self.nodes
            .get(&node)
            .and_then(|n| n.as_ref())
            .map_or(0, |n| n.status().term)
    }

    /// The leader writes `k = old`, then is cut off from the others `offset_ms` later; it is sent a lease
    /// read every step from then on, while the others elect a new leader that writes `k = new`.
    pub fn partitioned_leader_lease_reads(
        seed: u64,
        offset_ms: u64,
    ) -> Result<PartitionedLeader, String> {
        let mut sim = Sim::quiet(seed, 10);
        sim.step_until(10_000, "first leader", |s| s.current_leader().is_some())?;
        let old = sim.current_leader().unwrap_or(1);
        sim.write(old, "k", "old")?;
        // Let the leader hold its lease (well past its first election timeout), then shift the phase of
        // the cut against its check-quorum rounds.
        let settle = 2 * 10 * TICK_MS + offset_ms;
        let until = sim.now + settle;
        sim.step_until(settle + STEP_MS, "settle", |s| s.now >= until)?;
        let old_term = sim.term_of(old);
        let rest: Vec<u64> = sim.ids().into_iter().filter(|&i| i != old).collect();
        sim.net.partition(&[old], &rest);

        sim.watch_lease_reads(old, old_term, &rest, 6_000, |_| {})
    }

    /// Send lease reads to the old leader `old` (one at a time, each step) for `span_ms`, calling `event`
    /// after every step; once one of `others` leads a newer term than `old_term` it writes `k = new`.
    /// Records the reads sent after that write was acknowledged that do not see it.
    fn watch_lease_reads(
        &mut self,
        old: u64,
        old_term: u64,
        others: &[u64],
        span_ms: u64,
        mut event: impl FnMut(&mut Sim),
    ) -> Result<PartitionedLeader, String> {
        let reads: Mailbox<(u64, Result<u64, Error>)> = Arc::default();
        let mut out = PartitionedLeader::default();
        let mut outstanding = false;
        let end = self.now + span_ms;
        while self.now < end {
            if !outstanding {
                self.lease_read(old, &reads);
                outstanding = true;
            }
            self.step(false)?;
            event(self);
            let answered: Vec<_> = std::mem::take(&mut *reads.lock().unwrap());
            for (sent, result) in answered {
                outstanding = false;
                if result.is_err() {
                    continue;
                }
                let seen = self.value_at(old, "k");
                match out.new_write_at {
                    // Sent after the new write was acknowledged: it must see it.
                    Some(at) if sent >= at && seen.as_deref() != Some(b"new".as_slice()) => {
                        out.stale.push((self.now, seen))
                    }
                    Some(_) => {}
                    None => out.served += 1,
                }
            }
            if out.new_write_at.is_none() {
                let new = others
                    .iter()
                    .copied()
                    .find(|&i| self.is_leader(i) && self.term_of(i) > old_term);
                if let Some(new) = new {
                    self.write(new, "k", "new")?;
                    out.new_write_at = Some(self.now);
                }
            }
            if !matches!(self.nodes.get(&old), Some(Some(_))) {
                outstanding = false; // crashed: its reads were failed
            }
        }
        if out.new_write_at.is_none() {
            return Err(format!("no new leader wrote within {span_ms} ms"));
        }
        Ok(out)
    }

    /// The leader `L` writes `k = old`; the link between `L` and node `C` is cut, so `C` campaigns after
    /// its election timeout; the third node `V` — whose acknowledgements keep `L`'s lease — crashes and
    /// comes back `restart_ms` after the cut, having forgotten that it heard from `L`. `C` writes
    /// `k = new` if it gets elected; lease reads are sent to `L` all along.
    pub fn restarted_voter_lease_reads(
        seed: u64,
        restart_ms: u64,
    ) -> Result<PartitionedLeader, String> {
        let mut sim = Sim::quiet(seed, 10);
        sim.step_until(10_000, "first leader", |s| s.current_leader().is_some())?;
        let old = sim.current_leader().unwrap_or(1);
        sim.write(old, "k", "old")?;
        let until = sim.now + 2 * 10 * TICK_MS;
        sim.step_until(3 * 10 * TICK_MS, "settle", |s| s.now >= until)?;
        let old_term = sim.term_of(old);
        let others: Vec<u64> = sim.ids().into_iter().filter(|&i| i != old).collect();
        // The candidate is the node with the longer election timeout (higher id: 14 ticks, not a
        // multiple of the 3-tick heartbeat interval, so its campaigns do not always land right after a
        // heartbeat has reached the voter).
        let (voter, candidate) = (others[0], others[1]);
        sim.net.block(old, candidate);
        sim.net.block(candidate, old);
        let crash_at = sim.now + restart_ms;
        let mut crashed = false;
        let result = sim.watch_lease_reads(old, old_term, &[candidate], 4_000, |s| {
            if !crashed && s.now >= crash_at {
                crashed = true;
                s.crash(voter, STEP_MS);
            }
        });
        match result {
            // Never elected: nothing to be stale against.
            Err(e) if e.starts_with("no new leader") => Ok(PartitionedLeader::default()),
            other => other,
        }
    }

    /// The leader `L` writes `k = old` and hands leadership to node `T`; `T`'s messages to `L` are lost
    /// (a one-way cut), so `L` does not hear of `T`'s election from `T`. The transferee's campaign ignores
    /// the followers' lease, so `L` must stop using its own when the transfer starts. `T` writes
    /// `k = new`; lease reads are sent to `L` all along.
    pub fn transfer_lease_reads(seed: u64) -> Result<PartitionedLeader, String> {
        let mut sim = Sim::quiet(seed, 10);
        sim.step_until(10_000, "first leader", |s| s.current_leader().is_some())?;
        let old = sim.current_leader().unwrap_or(1);
        sim.write(old, "k", "old")?;
        let until = sim.now + 2 * 10 * TICK_MS;
        sim.step_until(3 * 10 * TICK_MS, "settle", |s| s.now >= until)?;
        let old_term = sim.term_of(old);
        let others: Vec<u64> = sim.ids().into_iter().filter(|&i| i != old).collect();
        let target = others[0];
        sim.net.block(target, old);
        let mut asked = false;
        sim.watch_lease_reads(old, old_term, &[target], 3_000, |s| {
            if !asked {
                asked = true;
                if let Some(Some(n)) = s.nodes.get_mut(&old) {
                    n.handle(Command::TransferLeader {
                        to: target,
                        reply: Box::new(|_| {}),
                    });
                }
            }
        })
    }

    fn is_leader(&self, node: u64) -> bool {
        matches!(self.nodes.get(&node), Some(Some(n)) if n.is_leader())
    }

    /// After the first leader is elected: for each step, whether a lease read sent to it at the start of
    /// the step was answered within that step (no message can travel in one step, so only the lease
    /// answers that fast). Returns (ms since it became leader, answered at once) per step, for `span_ms`.
    pub fn lease_reads_from_election(seed: u64, span_ms: u64) -> Result<Vec<(u64, bool)>, String> {
        let mut sim = Sim::quiet(seed, 10);
        sim.step_until(10_000, "first leader", |s| s.current_leader().is_some())?;
        let leader = sim.current_leader().unwrap_or(1);
        let elected = sim.now;
        let reads: Mailbox<(u64, Result<u64, Error>)> = Arc::default();
        let mut out = Vec::new();
        while sim.now < elected + span_ms {
            reads.lock().unwrap().clear();
            sim.lease_read(leader, &reads);
            sim.step(false)?;
            let at_once = reads.lock().unwrap().iter().any(|(_, r)| r.is_ok());
            out.push((sim.now - elected, at_once));
            // Let a read that fell back to a ReadIndex round finish before the next probe.
            if !at_once {
                let answered = Arc::clone(&reads);
                sim.step_until(3_000, "fallback read answered", |_| {
                    !answered.lock().unwrap().is_empty()
                })?;
            }
        }
        if !sim.is_leader(leader) {
            return Err(format!(
                "node {leader} lost its leadership on a quiet network"
            ));
        }
        Ok(out)
    }
}
