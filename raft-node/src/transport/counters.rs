//! The transport's counters: relaxed atomics inside, a plain copy outside.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A copy of the transport's counters; each only grows from start.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct TransportCounters {
            $($(#[$doc])* pub $name: u64,)*
        }

        #[derive(Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> TransportCounters {
                TransportCounters { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Frames written: raft messages plus snapshot message, chunk and end frames.
    frames_sent,
    /// Raft messages written to a raft stream.
    messages_sent,
    /// Write calls on raft streams; each carries every message that was queued at the time.
    batches_written,
    /// Messages dropped by `send` because the peer's queue was full.
    messages_dropped_queue_full,
    /// Messages dropped by `send` because `to` is not a current peer.
    messages_dropped_unknown_peer,
    /// Queued messages discarded by a writer before redialing (they went stale while the peer was down).
    messages_dropped_disconnected,
    /// Messages dropped because their encoding exceeds `max_frame`.
    messages_dropped_too_large,
    /// Outbound connections established (dial and handshake succeeded).
    connects,
    /// Dials or dialer-side handshakes that failed.
    connect_failures,
    /// Inbound connections closed at once because `max_inbound_connections` were open.
    connections_refused,
    /// Inbound handshakes accepted.
    handshakes_accepted,
    /// Inbound handshakes rejected: another cluster id.
    handshakes_rejected_cluster,
    /// Inbound handshakes rejected: the sender is not a current peer.
    handshakes_rejected_unknown_id,
    /// Inbound handshakes rejected: the sender was removed from the group.
    handshakes_rejected_removed,
    /// Inbound handshakes rejected: the HMAC proof is wrong (another secret).
    handshakes_rejected_proof,
    /// Inbound handshakes rejected: the dialer meant another node.
    handshakes_rejected_receiver,
    /// Inbound handshakes rejected: the TLS certificate does not name the claimed sender (`node-<id>`).
    handshakes_rejected_identity,
    /// Inbound TLS handshakes that failed (no certificate, another CA, not TLS at all, ...).
    handshakes_failed_tls,
    /// Inbound handshakes not completed within `handshake_timeout`.
    handshakes_timed_out,
    /// Malformed hellos and bad frames: oversized length, truncated, undecodable or unexpected payload.
    bad_frames,
    /// Raft messages delivered to `Inbound::message`.
    messages_received,
    /// Inbound messages dropped: `from` is not the authenticated sender, `to` is not this node, or a
    /// `MsgSnapshot` arrived on a raft stream.
    messages_dropped_wrong_sender,
    /// Snapshots sent and acknowledged.
    snapshots_sent,
    /// Snapshots received, fsynced and delivered to `Inbound::snapshot`.
    snapshots_received,
    /// Snapshot transfers that failed, on either side.
    snapshots_failed,
    /// `MsgSnapshot`s dropped because a transfer to that peer was already in flight.
    snapshots_dropped_busy,
}

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}
