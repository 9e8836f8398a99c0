//! Clock skew between the members, and the bound on the physical clock a leader stamps commits with.
//!
//! A commit ts is the leader's physical clock (through the HLC). A leader whose clock runs hours ahead
//! would stamp every entry hours ahead, and everything derived from commit timestamps — `at=` reads, the
//! retention window, the GC safepoint carried in snapshots — would follow it. So the leader compares its
//! clock with the cluster's: followers stamp their wall clock on the append responses they send (in the
//! message's `context`, which raft-rs does not use for that type), the leader keeps each voter's offset,
//! and the cluster's view of now is the median of the voters' clocks (its own included, only offsets
//! measured recently count). A leader more than `max_clock_skew` ahead of that view stamps
//! `view + max_clock_skew` instead (the HLC still keeps timestamps strictly increasing), counts it and
//! logs it. A follower that receives entries stamped more than `max_clock_skew` ahead of its own clock
//! counts and logs that too. Both are alarms: the fix is the operator's (NTP).
//!
//! The offset a follower's stamp gives is its clock minus the leader's at receipt, so it undercounts the
//! follower's clock by the one-way delay: with loopback or LAN delays far below any sensible
//! `max_clock_skew`, that only makes the bound a little stricter.

use std::collections::BTreeMap;

use raft::prelude::{Message, MessageType};

/// Marks a wall-clock stamp in a message's context (distinguishes it from any other use of the field).
const TAG: u8 = 0xC1;
const STAMP_LEN: usize = 9;

/// Put `wall` (µs) on an outgoing append response that carries no context.
pub(crate) fn stamp(msg: &mut Message, wall: u64) {
    if msg.get_msg_type() == MessageType::MsgAppendResponse && msg.context.is_empty() {
        let mut ctx = Vec::with_capacity(STAMP_LEN);
        ctx.push(TAG);
        ctx.extend_from_slice(&wall.to_be_bytes());
        msg.context = ctx;
    }
}

/// The wall clock a peer stamped on this message, if any.
pub(crate) fn read(msg: &Message) -> Option<u64> {
    if msg.get_msg_type() != MessageType::MsgAppendResponse {
        return None;
    }
    let ctx: &[u8] = msg.context.as_ref();
    match ctx {
        [TAG, rest @ ..] => <[u8; 8]>::try_from(rest).ok().map(u64::from_be_bytes),
        _ => None,
    }
}

/// The cluster's view of now: the lower median of this node's clock and the voters' estimated clocks.
/// `None` unless this node plus the estimates make a majority of `voters`.
pub(crate) fn cluster_now(own: u64, others: &[u64], voters: usize) -> Option<u64> {
    if others.len() + 1 < voters / 2 + 1 {
        return None;
    }
    let mut all: Vec<u64> = others.to_vec();
    all.push(own);
    all.sort_unstable();
    all.get((all.len() - 1) / 2).copied()
}

/// The leader's record of its voters' clocks.
#[derive(Debug, Default)]
pub(crate) struct PeerClocks {
    /// Peer → (its clock minus ours when its stamp arrived, µs; our clock then).
    offsets: BTreeMap<u64, (i128, u64)>,
}

impl PeerClocks {
    pub(crate) fn observe(&mut self, peer: u64, theirs: u64, ours: u64) {
        let offset = i128::from(theirs) - i128::from(ours);
        self.offsets.insert(peer, (offset, ours));
    }

    /// The estimated clocks now of `peers` measured within `fresh` µs of `now`.
    pub(crate) fn estimates(&self, peers: &[u64], now: u64, fresh: u64) -> Vec<u64> {
        peers
            .iter()
            .filter_map(|p| self.offsets.get(p))
            .filter(|(_, at)| now.saturating_sub(*at) <= fresh)
            .map(|(offset, _)| {
                let est = i128::from(now) + offset;
                u64::try_from(est.max(0)).unwrap_or(u64::MAX)
            })
            .collect()
    }

    pub(crate) fn forget_except(&mut self, keep: &[u64]) {
        self.offsets.retain(|id, _| keep.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_travel_only_on_append_responses_and_survive_the_round_trip() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        stamp(&mut m, 123_456);
        assert_eq!(read(&m), Some(123_456));
        let mut hb = Message::default();
        hb.set_msg_type(MessageType::MsgHeartbeatResponse);
        hb.context = b"read-ctx".to_vec();
        stamp(&mut hb, 1);
        assert_eq!(&hb.context[..], b"read-ctx");
        assert_eq!(read(&hb), None);
        let mut other = Message::default();
        other.set_msg_type(MessageType::MsgAppendResponse);
        other.context = vec![TAG, 1, 2];
        assert_eq!(read(&other), None, "a short stamp is ignored");
    }

    #[test]
    fn the_cluster_view_is_the_median_of_a_majority_of_clocks() {
        const H: u64 = 3_600_000_000;
        // A leader three hours ahead of two good followers: the view is theirs.
        assert_eq!(cluster_now(10 + 3 * H, &[10, 12], 3), Some(12));
        // One follower ahead: the view stays with the good ones.
        assert_eq!(cluster_now(10, &[11, 10 + 3 * H], 3), Some(11));
        // Only one of two followers measured: with us, still a majority; the lower of the two.
        assert_eq!(cluster_now(10 + H, &[10], 3), Some(10));
        // No follower measured in a three-voter group: no view.
        assert_eq!(cluster_now(10, &[], 3), None);
        // A single voter is its own majority.
        assert_eq!(cluster_now(10, &[], 1), Some(10));
    }

    #[test]
    fn estimates_follow_the_offset_and_drop_stale_samples() {
        let mut c = PeerClocks::default();
        c.observe(2, 1_500, 1_000); // 500 ahead
        c.observe(3, 900, 1_000); // 100 behind
        assert_eq!(c.estimates(&[2, 3], 2_000, 10_000), vec![2_500, 1_900]);
        assert_eq!(c.estimates(&[2, 3], 20_000, 10_000), Vec::<u64>::new());
        c.forget_except(&[3]);
        assert_eq!(c.estimates(&[2, 3], 2_000, 10_000), vec![1_900]);
    }
}
