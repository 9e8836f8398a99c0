//! Followers that need a snapshot rather than the log: a node that joins (it has no configuration, and
//! replaying the log from index 1 would apply conf changes to an empty configuration), and a node whose
//! data dir was wiped while the leader still remembers what it had acknowledged.

use raft::prelude::{Message, MessageType};
use raft::ProgressState;

use super::{LogStorage, Node, StateMachine};
use crate::error::Error;

/// Marker in `request_snapshot` of a rejection from a follower that needs a snapshot (see
/// `guard_lost_log`). Never a real raft-rs snapshot request: nothing in this crate asks raft-rs for one.
const NEEDS_SNAPSHOT: u64 = u64::MAX;

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// raft-rs assumes a follower never loses what it acknowledged and that every node starts with a
    /// configuration. Neither holds for a wiped data dir or a joining node:
    /// * a wiped follower would panic on a heartbeat committing past its log, and the leader would
    ///   ignore its rejections as stale forever;
    /// * a joining node (no voters, no learners) would replay the log from index 1 and apply the first
    ///   member's conf change to an empty configuration.
    ///
    /// Follower side: a heartbeat whose commit lies beyond our log does not advance our commit (our log
    /// may hold uncommitted entries that conflict with the leader's, so clamping to our last index would
    /// be wrong); an unconfigured node drops appends. Either way we answer with a rejection carrying
    /// [`NEEDS_SNAPSHOT`] and our last index.
    ///
    /// Leader side: on that marker, a hint below what the follower had acknowledged restarts its progress
    /// from the hint, and the follower gets a snapshot registered at the current applied index (so its
    /// conf state includes the follower). Only this explicit marker does that: an ordinary late rejection
    /// can carry a low hint too.
    ///
    /// Caveat (as for etcd): a wiped voter has also forgotten its vote and the entries it helped commit;
    /// the group stays safe while the other voters keep a quorum of copies. Replacing a lost disk under a
    /// new node id (remove + add) is the procedure that is safe in every case.
    ///
    /// Returns whether the message should still be stepped into raft.
    pub(super) fn guard_lost_log(&mut self, msg: &mut Message) -> Result<bool, Error> {
        let last_index = self.raw.raft.raft_log.last_index();
        let conf = self.raw.raft.prs().conf();
        let unconfigured =
            conf.voters().ids().iter().next().is_none() && conf.learners().is_empty();
        match msg.get_msg_type() {
            MessageType::MsgHeartbeat if msg.commit > last_index => {
                tracing::warn!(
                    node = self.cfg.id,
                    leader = msg.from,
                    commit = msg.commit,
                    last_index,
                    "leader believes we hold entries we do not have (wiped data dir?)"
                );
                msg.commit = self.raw.raft.raft_log.committed;
                self.ask_for_snapshot(msg);
                Ok(true)
            }
            MessageType::MsgAppend if unconfigured => {
                self.ask_for_snapshot(msg);
                Ok(false)
            }
            MessageType::MsgAppendResponse if msg.request_snapshot == NEEDS_SNAPSHOT => {
                if !self.is_leader() || msg.term != self.raw.raft.term {
                    return Ok(false);
                }
                let in_flight = self
                    .raw
                    .raft
                    .prs()
                    .get(msg.from)
                    .is_none_or(|pr| pr.state == ProgressState::Snapshot);
                if in_flight {
                    return Ok(false);
                }
                let index = self.register_snapshot()?;
                if let Some(pr) = self.raw.raft.mut_prs().get_mut(msg.from) {
                    if msg.reject_hint < pr.matched {
                        tracing::warn!(
                            node = self.cfg.id,
                            peer = msg.from,
                            acknowledged = pr.matched,
                            now_has = msg.reject_hint,
                            "follower lost acknowledged entries (wiped data dir?); sending it a snapshot"
                        );
                        pr.matched = msg.reject_hint;
                        pr.become_probe();
                    }
                    pr.pending_request_snapshot = index;
                }
                Ok(false) // handled here; raft-rs would read the marker as its own snapshot request
            }
            _ => Ok(true),
        }
    }

    fn ask_for_snapshot(&mut self, from_leader: &Message) {
        let mut ask = Message::default();
        ask.set_msg_type(MessageType::MsgAppendResponse);
        ask.to = from_leader.from;
        ask.from = self.cfg.id;
        ask.term = from_leader.term;
        ask.reject = true;
        ask.reject_hint = self.raw.raft.raft_log.last_index();
        ask.request_snapshot = NEEDS_SNAPSHOT;
        self.extra_out.push(ask);
    }
}
