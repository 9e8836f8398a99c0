//! Reads at scale: a burst of reads arriving in one loop turn on a follower must cost one ReadIndex
//! round, not one per read (each round is a message to the leader and a heartbeat broadcast there).

use std::sync::{Arc, Mutex};

use raft::prelude::MessageType;
use raft_node::{Command, Error};

use super::Sim;

/// What a burst of reads cost and got.
#[derive(Debug)]
pub struct Burst {
    /// Reads answered `Ok`.
    pub ok: usize,
    /// Other answers.
    pub failed: Vec<Error>,
    /// MsgReadIndex messages sent (follower → leader) while the burst was served.
    pub read_index_msgs: u64,
    /// MsgHeartbeat messages sent while the burst was served.
    pub heartbeats: u64,
    /// How long the burst took, in simulated ms.
    pub took_ms: u64,
}

impl Sim {
    fn sent_of(&self, t: MessageType) -> u64 {
        self.sent_by_type.get(&(t as i32)).copied().unwrap_or(0)
    }

    /// Step until `reads` answers are in `answers` (at most `max_ms`): (how many were `Ok`, the errors).
    fn await_answers(
        &mut self,
        answers: &Arc<Mutex<Vec<Result<u64, Error>>>>,
        reads: usize,
        max_ms: u64,
    ) -> Result<(usize, Vec<Error>), String> {
        let all = Arc::clone(answers);
        self.step_until(max_ms, "every read answered", |_| {
            all.lock().unwrap().len() == reads
        })?;
        let answered = std::mem::take(&mut *answers.lock().unwrap());
        let (ok, failed): (Vec<_>, Vec<_>) = answered.into_iter().partition(Result::is_ok);
        Ok((
            ok.len(),
            failed.into_iter().filter_map(Result::err).collect(),
        ))
    }

    /// A quiet 3-node cluster 2 s after its first election: (the simulator, the leader, a follower).
    fn settled(seed: u64) -> Result<(Sim, u64, u64), String> {
        let mut sim = Sim::quiet(seed, 10);
        sim.step_until(10_000, "first leader", |s| s.current_leader().is_some())?;
        let until = sim.now + 2_000;
        sim.step_until(3_000, "settle", |s| s.now >= until)?;
        let leader = sim.current_leader().ok_or("no leader")?;
        let follower = sim
            .ids()
            .into_iter()
            .find(|&i| i != leader)
            .ok_or("no follower")?;
        Ok((sim, leader, follower))
    }

    /// `reads` ReadIndex reads handed to a follower in one loop turn, once the cluster is settled.
    pub fn read_burst(seed: u64, reads: usize) -> Result<Burst, String> {
        let (mut sim, _leader, follower) = Sim::settled(seed)?;
        let answers: Arc<Mutex<Vec<Result<u64, Error>>>> = Arc::default();
        let deadline = sim.local_instant(follower, sim.now + 5_000);
        let (read_index_before, heartbeats_before) = (
            sim.sent_of(MessageType::MsgReadIndex),
            sim.sent_of(MessageType::MsgHeartbeat),
        );
        let start = sim.now;
        let Some(Some(node)) = sim.nodes.get_mut(&follower) else {
            return Err(format!("follower {follower} is down"));
        };
        for _ in 0..reads {
            let inbox = Arc::clone(&answers);
            node.handle(Command::ReadIndex {
                deadline,
                reply: Box::new(move |r| inbox.lock().unwrap().push(r)),
            });
        }
        let (ok, failed) = sim.await_answers(&answers, reads, 6_000)?;
        Ok(Burst {
            ok,
            failed,
            read_index_msgs: sim.sent_of(MessageType::MsgReadIndex) - read_index_before,
            heartbeats: sim.sent_of(MessageType::MsgHeartbeat) - heartbeats_before,
            took_ms: sim.now - start,
        })
    }
}

/// What reads arriving turn after turn cost while the answers to them are held up.
#[derive(Debug)]
pub struct Trickle {
    /// Reads answered `Ok` (of `2 × turns`: one on the leader and one on a follower per turn).
    pub ok: usize,
    /// Other answers.
    pub failed: Vec<Error>,
    /// MsgHeartbeat messages the leader sent while the links to it were cut.
    pub heartbeats: u64,
    /// MsgReadIndex messages the follower sent meanwhile.
    pub read_index_msgs: u64,
}

impl Sim {
    /// Every step for `cut_ms`, one ReadIndex read is handed to the leader and one to a follower, while
    /// every message to the leader is lost (its heartbeats still reach the followers; nothing comes
    /// back). Then the links heal and every read must be answered.
    pub fn read_trickle(seed: u64, cut_ms: u64) -> Result<Trickle, String> {
        let (mut sim, leader, follower) = Sim::settled(seed)?;
        for id in sim.ids() {
            if id != leader {
                sim.net.block(id, leader);
            }
        }
        let answers: Arc<Mutex<Vec<Result<u64, Error>>>> = Arc::default();
        let (read_index_before, heartbeats_before) = (
            sim.sent_of(MessageType::MsgReadIndex),
            sim.sent_of(MessageType::MsgHeartbeat),
        );
        let end = sim.now + cut_ms;
        let mut reads = 0;
        while sim.now < end {
            for id in [leader, follower] {
                let deadline = sim.local_instant(id, sim.now + 10_000);
                let inbox = Arc::clone(&answers);
                let Some(Some(node)) = sim.nodes.get_mut(&id) else {
                    return Err(format!("node {id} is down"));
                };
                node.handle(Command::ReadIndex {
                    deadline,
                    reply: Box::new(move |r| inbox.lock().unwrap().push(r)),
                });
                reads += 1;
            }
            sim.step(false)?;
        }
        let heartbeats = sim.sent_of(MessageType::MsgHeartbeat) - heartbeats_before;
        let read_index_msgs = sim.sent_of(MessageType::MsgReadIndex) - read_index_before;
        sim.net.heal();
        let (ok, failed) = sim.await_answers(&answers, reads, 8_000)?;
        Ok(Trickle {
            ok,
            failed,
            heartbeats,
            read_index_msgs,
        })
    }
}
