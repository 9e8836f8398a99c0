//! A follower that lost its log (a wiped data dir) and the leader that still remembers it.

use raft::prelude::{Message, MessageType};

use super::{LogStorage, Node, StateMachine};

/// Marker in `request_snapshot` of a rejection from a follower that lost its log (see `guard_lost_log`).
/// Never a real snapshot request: nothing in this crate asks raft-rs for one.
const LOST_LOG: u64 = u64::MAX;

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// A node whose data dir was wiped comes back with an empty log while the leader still remembers what
    /// it had acknowledged. raft-rs assumes that never happens: the follower would panic on a heartbeat
    /// committing past its log, and the leader would ignore its rejections as stale forever. Both sides
    /// are handled here:
    /// * follower: a heartbeat whose commit lies beyond our log does not advance our commit (our log may
    ///   hold uncommitted entries that conflict with the leader's, so clamping to our last index would be
    ///   wrong), and we tell the leader explicitly: a rejection carrying [`LOST_LOG`] and our last index;
    /// * leader: on that rejection, if the hint lies below what the follower had acknowledged, its
    ///   progress restarts from the hint, probing (and a snapshot if the log is compacted). Only this
    ///   explicit marker resets progress: an ordinary late rejection can carry a low hint too.
    ///
    /// Returns whether the message should still be stepped into raft.
    /// Caveat (as for etcd): a wiped voter has also forgotten its vote and the entries it helped commit;
    /// the group stays safe while the other voters keep a quorum of copies. Replacing a lost disk under a
    /// new node id (remove + add) is the procedure that is safe in every case.
    pub(super) fn guard_lost_log(&mut self, msg: &mut Message) -> bool {
        match msg.get_msg_type() {
            MessageType::MsgHeartbeat if msg.commit > self.raw.raft.raft_log.last_index() => {
                let last_index = self.raw.raft.raft_log.last_index();
                tracing::warn!(
                    node = self.cfg.id,
                    leader = msg.from,
                    commit = msg.commit,
                    last_index,
                    "leader believes we hold entries we do not have (wiped data dir?)"
                );
                msg.commit = self.raw.raft.raft_log.committed;
                let mut lost = Message::default();
                lost.set_msg_type(MessageType::MsgAppendResponse);
                lost.to = msg.from;
                lost.from = self.cfg.id;
                lost.term = msg.term;
                lost.reject = true;
                lost.reject_hint = last_index;
                lost.request_snapshot = LOST_LOG;
                self.extra_out.push(lost);
                true
            }
            MessageType::MsgAppendResponse if msg.request_snapshot == LOST_LOG => {
                if !self.is_leader() || msg.term != self.raw.raft.term {
                    return false;
                }
                if let Some(pr) = self.raw.raft.mut_prs().get_mut(msg.from) {
                    if msg.reject_hint < pr.matched {
                        tracing::warn!(
                            node = self.cfg.id,
                            peer = msg.from,
                            acknowledged = pr.matched,
                            now_has = msg.reject_hint,
                            "follower lost acknowledged entries (wiped data dir?); replicating to it again"
                        );
                        pr.matched = msg.reject_hint;
                        pr.become_probe();
                    }
                }
                false // handled here; raft-rs would read the marker as a snapshot request
            }
            _ => true,
        }
    }
}
