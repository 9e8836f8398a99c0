//! The read path: linearizable reads through raft-rs's ReadIndex, lease reads, and serving each read
//! once the state machine has applied up to its index.

use super::{LogStorage, Node, PendingRead, StateMachine, Waiter};

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// Ask raft-rs for a read index; the read is answered once it is applied locally.
    pub(super) fn read_index(&mut self, waiter: Waiter<u64>) {
        let ctx = self.next_read_ctx();
        self.raw.read_index(ctx.clone());
        self.reads.insert(
            ctx,
            PendingRead {
                waiter,
                index: None,
            },
        );
    }

    /// Lease read: answered at the commit index on a leader that has committed in its term.
    pub(super) fn lease_read(&mut self, waiter: Waiter<u64>) {
        let log = &self.raw.raft.raft_log;
        let committed_in_term = log.term(log.committed).unwrap_or(0) == self.raw.raft.term;
        if !self.is_leader() || !committed_in_term {
            let not_leader = self.not_leader();
            return waiter.answer(Err(not_leader));
        }
        let index = log.committed;
        let ctx = self.next_read_ctx();
        self.reads.insert(
            ctx,
            PendingRead {
                waiter,
                index: Some(index),
            },
        );
    }

    /// A fresh read context: this node's id and a counter, so contexts never collide across nodes.
    fn next_read_ctx(&mut self) -> Vec<u8> {
        self.next_read += 1;
        let mut ctx = self.cfg.id.to_be_bytes().to_vec();
        ctx.extend_from_slice(&self.next_read.to_be_bytes());
        ctx
    }

    /// A ReadIndex is lost without an answer when there is no leader, when the leader it went to dies, or
    /// when it reaches a leader that has not committed an entry of its term yet (raft-rs drops it then).
    /// Reads still waiting for their index are therefore asked again as soon as the term or the leader
    /// changes, and once per heartbeat interval, instead of waiting for the request timeout. A read
    /// answered twice uses the first index (either is a valid read point: both were taken after the request
    /// arrived).
    pub(super) fn reissue_reads(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.leader_id);
        if now == self.read_epoch {
            return;
        }
        self.read_epoch = now;
        self.resend_waiting_reads();
    }

    pub(super) fn resend_waiting_reads(&mut self) {
        if self.raw.raft.leader_id == raft::INVALID_ID {
            return; // no leader yet: ask again once one is known
        }
        let waiting: Vec<Vec<u8>> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_none())
            .map(|(ctx, _)| ctx.clone())
            .collect();
        for ctx in waiting {
            self.raw.read_index(ctx);
        }
    }

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
                r.waiter.answer(Ok(r.index.unwrap_or(applied)));
            }
        }
    }
}
