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

    /// `reads` ReadIndex reads handed to a follower in one loop turn, once the cluster is settled.
    pub fn read_burst(seed: u64, reads: usize) -> Result<Burst, String> {
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
        let all = Arc::clone(&answers);
        sim.step_until(6_000, "every read answered", |_| {
            all.lock().unwrap().len() == reads
        })?;
        let answered = std::mem::take(&mut *answers.lock().unwrap());
        let (ok, failed): (Vec<_>, Vec<_>) = answered.into_iter().partition(Result::is_ok);
        Ok(Burst {
            ok: ok.len(),
            failed: failed.into_iter().filter_map(Result::err).collect(),
            read_index_msgs: sim.sent_of(MessageType::MsgReadIndex) - read_index_before,
            heartbeats: sim.sent_of(MessageType::MsgHeartbeat) - heartbeats_before,
            took_ms: sim.now - start,
        })
    }
}
