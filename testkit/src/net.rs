//! The simulated network: per-message drop, delay (which also reorders) and duplication, partitions and
//! one-way links. Delivery is decided at send time and re-checked at delivery (a link cut meanwhile drops).

use std::collections::{BTreeMap, HashSet};

use raft::prelude::Message;

use crate::rng::Rng;

#[derive(Default)]
pub struct Net {
    /// (deliver_at_ms, seq) → message
    queue: BTreeMap<(u64, u64), Message>,
    seq: u64,
    pub drop_percent: u64,
    pub dup_percent: u64,
    pub max_delay_ms: u64,
    /// Directed links that deliver nothing.
    blocked: HashSet<(u64, u64)>,
    pub sent: u64,
    pub dropped: u64,
}

impl Net {
    pub fn blocked(&self, from: u64, to: u64) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn block(&mut self, from: u64, to: u64) {
        self.blocked.insert((from, to));
    }

    /// Cut every link between the two sides, both ways.
    pub fn partition(&mut self, a: &[u64], b: &[u64]) {
        for &x in a {
            for &y in b {
                self.block(x, y);
                self.block(y, x);
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Returns whether at least one copy is on its way.
    pub fn send(&mut self, msg: Message, now: u64, rng: &mut Rng) -> bool {
        self.sent += 1;
        let copies = if rng.chance(self.dup_percent) { 2 } else { 1 };
        let mut queued = false;
        for _ in 0..copies {
            if self.blocked(msg.from, msg.to) || rng.chance(self.drop_percent) {
                self.dropped += 1;
                continue;
            }
            let at = now + 1 + rng.below(self.max_delay_ms.max(1));
            self.seq += 1;
            self.queue.insert((at, self.seq), msg.clone());
            queued = true;
        }
        queued
    }

    /// Messages due at `now`, in delivery order, split into those delivered and those whose link was cut
    /// meanwhile (dropped).
    pub fn due_and_cut(&mut self, now: u64) -> (Vec<Message>, Vec<Message>) {
        let later = self.queue.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.queue, later);
        due.into_values()
            .partition(|m| !self.blocked.contains(&(m.from, m.to)))
    }
}
