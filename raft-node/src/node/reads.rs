//! The read path: linearizable reads through raft-rs's ReadIndex, lease reads, and serving each read
//! once the state machine has applied up to its index.
//!
//! Reads are batched, as etcd's read loop does: one ReadIndex round is in flight at a time. Reads that
//! arrive while it is unanswered wait in the queue and share the next round ([`Node::flush_reads`]), so
//! a thousand concurrent reads cost one heartbeat round, not a thousand (each round is a heartbeat
//! broadcast on the leader and a message to it from a follower), however many loop turns they arrive
//! over. Contexts grow with each round, and the index an answer carries was taken after its round
//! started, so it is a valid read point for that round and for every earlier one: an answer serves every
//! batch up to its context, and only the newest waiting round is ever asked again.
//!
//! Lease reads ([`super::lease`]) are answered at the commit index while the lease holds; otherwise a
//! leader falls back to a ReadIndex round (same answer, one round trip later) and any other node answers
//! `NotLeader` (the HTTP layer forwards the read to the leader).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Instant;

use raft::ReadState;

use super::{LogStorage, Node, PendingRead, StateMachine, Waiter};

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// A ReadIndex read: waits for the next batch ([`Node::flush_reads`]). With `lease_reads` it is
    /// served from the lease when this node holds one.
    pub(super) fn read_index(&mut self, waiter: Waiter<u64>) {
        if self.cfg.lease_reads {
            self.lease_queue.push((waiter, false));
        } else {
            self.read_queue.push(waiter);
        }
    }

    /// A lease read: decided at the next [`Node::flush_reads`], which knows the time.
    pub(super) fn lease_read(&mut self, waiter: Waiter<u64>) {
        self.lease_queue.push((waiter, true));
    }

    /// Start the reads that arrived since the last call, `now` being this node's clock (read just
    /// before the call). Lease reads are answered at the commit index while the lease holds; every
    /// other read of this turn shares one ReadIndex context. Called once per loop iteration, after
    /// draining the command queue.
    pub fn flush_reads(&mut self, now: Instant) {
        self.observe_leadership(now);
        if !self.lease_queue.is_empty() {
            let lease = self.lease_valid(now);
            let mut served = Vec::new();
            for (waiter, leader_only) in std::mem::take(&mut self.lease_queue) {
                if lease {
                    served.push(waiter);
                } else if leader_only && !self.is_leader() {
                    waiter.answer(Err(self.not_leader()));
                } else {
                    self.read_queue.push(waiter);
                }
            }
            if !served.is_empty() {
                let index = self.raw.raft.raft_log.committed;
                let ctx = self.next_read_ctx();
                self.reads.insert(
                    ctx,
                    PendingRead {
                        waiters: served,
                        index: Some(index),
                    },
                );
            }
        }
        if self.read_queue.is_empty() || self.read_in_flight() {
            return;
        }
        let ctx = self.next_read_ctx();
        self.raw.read_index(ctx.clone());
        self.counters.read_index_rounds += 1;
        self.lease_round_sent(&ctx, now);
        let waiters = std::mem::take(&mut self.read_queue);
        self.reads.insert(
            ctx,
            PendingRead {
                waiters,
                index: None,
            },
        );
    }

    /// A fresh read context: this run's prefix ([`ctx_prefix`]) and a counter, so contexts never
    /// collide across nodes or runs, and sort in the order they were made.
    pub(super) fn next_read_ctx(&mut self) -> Vec<u8> {
        self.next_read += 1;
        let mut ctx = self.read_ctx_prefix.to_vec();
        ctx.extend_from_slice(&self.next_read.to_be_bytes());
        ctx
    }

    /// A ReadIndex round is out and unanswered: new reads wait for the next one.
    fn read_in_flight(&self) -> bool {
        self.reads.values().any(|r| r.index.is_none())
    }

    /// Whether the loop should take another turn at once: reads are queued and no round is in flight
    /// (the one they waited behind was answered in the last turn), so starting theirs need not wait for
    /// a message or the next tick.
    pub fn reads_ready_to_flush(&self) -> bool {
        !self.read_queue.is_empty() && !self.read_in_flight()
    }

    /// Read states raft-rs returned: the index serves every batch up to its context (each was made
    /// before that round started), and a lease round renews the lease.
    pub(super) fn read_states(&mut self, states: Vec<ReadState>) {
        for rs in states {
            if rs.request_ctx.len() == CTX_LEN && rs.request_ctx.starts_with(&self.read_ctx_prefix)
            {
                for r in self
                    .reads
                    .range_mut(..=rs.request_ctx.clone())
                    .map(|(_, r)| r)
                {
                    r.index.get_or_insert(rs.index);
                }
            }
            self.lease_acked(&rs.request_ctx);
        }
    }

    /// A ReadIndex is lost without an answer when there is no leader, when the leader it went to dies, or
    /// when it reaches a leader that has not committed an entry of its term yet (raft-rs drops it then).
    /// Batches still waiting for their index are therefore asked again as soon as the term or the leader
    /// changes, and once per heartbeat interval, instead of waiting for the request timeout. A batch
    /// answered twice uses the first index (either is a valid read point: both were taken after its
    /// reads arrived).
    pub(super) fn reissue_reads(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.leader_id);
        if now == self.read_epoch {
            return;
        }
        self.read_epoch = now;
        self.resend_waiting_reads();
    }

    /// Ask again for the newest batch still without an index: its answer serves the older ones too.
    pub(super) fn resend_waiting_reads(&mut self) {
        if self.raw.raft.leader_id == raft::INVALID_ID {
            return; // no leader yet: ask again once one is known
        }
        let newest = self
            .reads
            .iter()
            .rev()
            .find(|(_, r)| r.index.is_none())
            .map(|(ctx, _)| ctx.clone());
        if let Some(ctx) = newest {
            self.raw.read_index(ctx);
            self.counters.read_index_rounds += 1;
        }
    }

    /// Answer every batch whose index is applied here.
    pub(super) fn serve_reads(&mut self) {
        let applied = self.sm.applied().0;
        let ready: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(c, _)| c.clone())
            .collect();
        for ctx in ready {
            if let Some(r) = self.reads.remove(&ctx) {
                let index = r.index.unwrap_or(applied);
                for w in r.waiters {
                    w.answer(Ok(index));
                }
            }
        }
    }

    /// Answer `Timeout` to every read whose deadline is not after `now` (queued or in a batch); a batch
    /// left empty is forgotten.
    pub(super) fn expire_reads(&mut self, now: Instant) {
        expire(&mut self.read_queue, now);
        for r in self.reads.values_mut() {
            expire(&mut r.waiters, now);
        }
        self.reads.retain(|_, r| !r.waiters.is_empty());
    }
}

/// Answer `Timeout` to the waiters in `waiters` whose deadline is not after `now`, and drop them.
fn expire(waiters: &mut Vec<Waiter<u64>>, now: Instant) {
    for w in waiters.extract_if(.., |w| w.deadline <= now) {
        w.answer(Err(super::Error::Timeout));
    }
}

/// Length of a read context: [`ctx_prefix`] and a counter.
const CTX_LEN: usize = 24;

/// The first 16 bytes of this run's read contexts: the node's id and a number drawn at start.
pub(super) fn ctx_prefix(id: u64) -> [u8; 16] {
    let run = RandomState::new().hash_one(id);
    let mut prefix = [0u8; 16];
    prefix[..8].copy_from_slice(&id.to_be_bytes());
    prefix[8..].copy_from_slice(&run.to_be_bytes());
    prefix
}
