//! The leader lease: how long this leader may answer reads from its own commit index without a round
//! of heartbeats.
//!
//! Why it is safe. A follower that has heard from the leader ignores vote requests for `election_tick`
//! ticks (raft-rs's check-quorum "in lease" rule; leader transfer excepted), so no other leader can be
//! elected while a quorum is inside that window. The leader keeps asking its quorum: every heartbeat
//! interval it sends a ReadIndex round with a context of its own and records the (monotonic) time it
//! *sent* it. When raft-rs returns that context a quorum acknowledged a heartbeat sent no earlier than
//! that time, so no new leader can exist before `sent + lease_duration()`, where the duration is
//! `election_tick − 1` ticks (a follower's election counter can reach `election_tick` that long after
//! the heartbeat reset it, ticks being discrete) less the clock-drift margin (`lease_margin_percent`):
//! the followers' clocks may run that much faster than the leader's.
//!
//! What voids it:
//! * not being leader, or leading another term: the lease belongs to one term's leadership;
//! * a leader transfer in progress: the transferee's election bypasses the followers' lease rule, so the
//!   lease is dropped together with every round sent before the transfer ended;
//! * the first election timeout after becoming leader: a previous leader may still hold a lease (e.g. if
//!   this node was elected by a transfer) — lease reads fall back to ReadIndex meanwhile;
//! * a restarted node has forgotten the leader it heard from, so it would vote at once: [`Node::step`]
//!   ignores vote requests (not transfer ones) for its first `election_tick` ticks, as if it had just
//!   heard from a leader.
//!
//! Time is the node's local monotonic clock as given to [`Node::tick`] and [`Node::flush_reads`]; the
//! simulator drives it with per-node clock rates within the margin.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft::prelude::{Message, MessageType};

use super::{LogStorage, Node, StateMachine};

/// Lease state of one term's leadership.
#[derive(Default)]
pub(super) struct Lease {
    /// The term this lease belongs to; 0 while not leader.
    term: u64,
    /// When this node first saw itself leader in `term`.
    leader_since: Option<Instant>,
    /// Rounds sent as leader in `term` and not yet acknowledged: context → send time.
    rounds: BTreeMap<Vec<u8>, Instant>,
    /// Reads may be answered from the lease strictly before this instant.
    until: Option<Instant>,
}

impl Lease {
    /// Forget the lease and every round sent so far (their acknowledgements no longer count).
    fn revoke(&mut self) {
        self.rounds.clear();
        self.until = None;
    }
}

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// How long an acknowledged round keeps the lease, from its send time.
    fn lease_duration(&self) -> Duration {
        let ticks = u32::try_from(self.cfg.election_tick.saturating_sub(1)).unwrap_or(u32::MAX);
        let margin = u32::from(self.cfg.lease_margin_percent.min(100));
        self.cfg.tick.saturating_mul(ticks) * (100 - margin) / 100
    }

    /// The election timeout as time: how long a new leader waits before using its lease.
    fn election_timeout(&self) -> Duration {
        let ticks = u32::try_from(self.cfg.election_tick).unwrap_or(u32::MAX);
        self.cfg.tick.saturating_mul(ticks)
    }

    fn transferring(&self) -> bool {
        self.raw.raft.lead_transferee.is_some()
    }

    /// Bring the lease in line with the current role and term, `now` being this node's clock.
    pub(super) fn observe_leadership(&mut self, now: Instant) {
        let term = self.raw.raft.term;
        if !self.is_leader() {
            if self.lease.term != 0 {
                self.lease = Lease::default();
            }
        } else if self.lease.term != term {
            self.lease = Lease {
                term,
                leader_since: Some(now),
                ..Lease::default()
            };
        }
        if self.transferring() {
            self.lease.revoke();
        }
    }

    /// Drop the lease now (a leader transfer starts).
    pub(super) fn revoke_lease(&mut self) {
        self.lease.revoke();
    }

    /// Whether a read may be answered from the lease at `now`.
    pub(super) fn lease_valid(&self, now: Instant) -> bool {
        let log = &self.raw.raft.raft_log;
        let committed_in_term = log.term(log.committed).unwrap_or(0) == self.raw.raft.term;
        self.is_leader()
            && committed_in_term
            && !self.transferring()
            && self.lease.term == self.raw.raft.term
            && self
                .lease
                .leader_since
                .is_some_and(|since| since + self.election_timeout() <= now)
            && self.lease.until.is_some_and(|until| now < until)
    }

    /// A ReadIndex round with context `ctx` leaves now: as leader, its acknowledgement renews the lease.
    pub(super) fn lease_round_sent(&mut self, ctx: &[u8], now: Instant) {
        if self.is_leader() && self.lease.term == self.raw.raft.term && !self.transferring() {
            self.lease.rounds.entry(ctx.to_vec()).or_insert(now);
        }
    }

    /// Every heartbeat interval: a round of our own renews the lease while nothing else asks the quorum.
    /// Rounds that can no longer extend the lease are forgotten.
    pub(super) fn renew_lease(&mut self, now: Instant) {
        let duration = self.lease_duration();
        self.lease.rounds.retain(|_, sent| *sent + duration > now);
        let log = &self.raw.raft.raft_log;
        let committed_in_term = log.term(log.committed).unwrap_or(0) == self.raw.raft.term;
        // raft-rs drops a ReadIndex on a leader that has not committed in its term yet.
        if !self.is_leader() || self.transferring() || !committed_in_term {
            return;
        }
        self.observe_leadership(now);
        let ctx = self.next_read_ctx();
        self.raw.read_index(ctx.clone());
        self.counters.read_index_rounds += 1;
        self.lease_round_sent(&ctx, now);
    }

    /// raft-rs returned `ctx`: if it is one of this leadership's rounds, a quorum acknowledged a
    /// heartbeat sent after its send time.
    pub(super) fn lease_acked(&mut self, ctx: &[u8]) {
        let Some(sent) = self.lease.rounds.remove(ctx) else {
            return;
        };
        if self.is_leader() && self.lease.term == self.raw.raft.term && !self.transferring() {
            let until = sent + self.lease_duration();
            if self.lease.until.is_none_or(|u| u < until) {
                self.lease.until = Some(until);
            }
        }
    }

    /// A restarted node does not know which leader it last heard from, so raft-rs would grant a vote at
    /// once — and elect a new leader while the old one still holds its lease. For its first
    /// `election_tick` ticks it ignores vote requests (leader transfers excepted), as raft-rs does
    /// after hearing from a leader. Returns whether `msg` is to be ignored.
    pub(super) fn vote_within_start_lease(&self, msg: &Message) -> bool {
        let vote = matches!(
            msg.get_msg_type(),
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        );
        vote && msg.term > self.raw.raft.term
            && msg.context != raft::CAMPAIGN_TRANSFER
            && self.ticks < u64::try_from(self.cfg.election_tick).unwrap_or(u64::MAX)
    }

    /// Called once before the loop starts (by `Group::start`; the simulator keeps raft-rs's timing). A
    /// sole voter campaigns at once: no other node can lead or hold a lease, so waiting out an election
    /// timeout only delayed the first write (a fresh single-node site took 1.4–1.9 s to be ready). A
    /// voter of a larger group moves its election clock so that its first campaign comes right after
    /// the start-lease window of [`Node::vote_within_start_lease`] — every restarted voter ignores votes
    /// for its first `election_tick` ticks, so an earlier campaign could not win — spread by `random`
    /// over two heartbeat intervals so voters restarted together do not split the vote, instead of
    /// anywhere in raft-rs's `[election_tick, 2 × election_tick)`. Pre-vote and check-quorum are
    /// untouched: a voter that still hears its leader refuses the pre-vote, so this never disturbs a
    /// working leader.
    pub fn start_election_early(&mut self, random: u64) {
        let voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        if !voters.contains(&self.cfg.id) {
            return;
        }
        if voters.len() == 1 {
            if let Err(e) = self.raw.campaign() {
                tracing::warn!(node = self.cfg.id, error = %e, "cannot campaign at start");
            }
            return;
        }
        let spread = u64::try_from(self.cfg.heartbeat_tick.saturating_mul(2).max(1)).unwrap_or(1);
        let jitter = usize::try_from(random % spread).unwrap_or(0);
        let first_campaign = self.cfg.election_tick.saturating_add(jitter);
        let timeout = self.raw.raft.randomized_election_timeout();
        self.raw.raft.election_elapsed = timeout.saturating_sub(first_campaign);
    }
}
