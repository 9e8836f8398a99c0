//! The TCP transport between the nodes of one Raft group (SPEC §5, §9).
//!
//! [`TcpTransport`] is what the ready loop sends through ([`crate::runner::Transport`]); it never blocks.
//! [`TransportHandle`] is the control side: membership ([`TransportHandle::set_peers`],
//! [`TransportHandle::set_removed`]), counters and shutdown. What arrives is handed to the node through
//! the [`Inbound`] callbacks; snapshot images are read from a [`SnapshotSource`].
//!
//! # Connections
//!
//! Every connection is used in one direction only: each node dials its own outbound connection to each
//! peer and only writes on it; the connections it accepts it only reads. So A→B messages travel on the
//! connection A dialed, B→A on the one B dialed. There is no simultaneous-open tie-break to get wrong, and
//! a reconnect is always the sender's business. Two kinds of connection exist: a long-lived *raft stream*
//! per peer, and a short-lived *snapshot stream* per snapshot sent.
//!
//! # Handshake (mutual, HMAC-SHA256 over fresh nonces)
//!
//! ```text
//! (with peer TLS: the TLS handshake first, then everything below inside it; see [`tls`])
//! acceptor → dialer   challenge: "KVSR" | version u8 (=2) | nonce_a [32]
//! dialer → acceptor   hello:     len u32 BE | body | tag [32]            (len = body + tag, at most 4 KiB)
//!                     body  = "KVSR" | version u8 | kind u8 (1 raft, 2 snapshot)
//!                             | cluster_id str | sender u64 BE | receiver u64 BE
//!                             | advertise_peer str | advertise_client str | nonce_d [32]
//!                     str   = len u16 BE | UTF-8 bytes
//!                     tag   = HMAC-SHA256(secret, "kvs-raft/2 hello" | nonce_a | body)
//! acceptor → dialer   accepted:  0u8 | HMAC-SHA256(secret, "kvs-raft/2 welcome" | nonce_d | tag)
//!                     rejected:  reason u8 (1 malformed, 2 cluster, 3 proof, 4 receiver, 5 removed,
//!                                6 unknown id, 7 TLS certificate does not name the sender), then close
//! both                session = HMAC-SHA256(secret, "kvs-raft/2 session" | nonce_a | nonce_d | tag)
//!                     key_d→a = HMAC-SHA256(session, "dialer to acceptor"), key_a→d likewise
//! ```
//!
//! The acceptor checks, in this order: well-formed hello, cluster id, proof (constant-time), with TLS the
//! client certificate names `node-<sender>`, receiver id is itself, sender not removed, sender a current
//! peer. Any failure closes the connection, increments the
//! matching counter, logs at warn with the remote address, and delivers nothing. The dialer checks the
//! acceptor's proof the same way, so both sides know the other holds the secret; a recorded handshake
//! cannot be replayed because both nonces are fresh. The whole handshake runs under `handshake_timeout`.
//!
//! # Frames
//!
//! After the handshake everything is a frame: `len u32 BE | payload | tag [32]`, with `len <= max_frame`
//! and `tag = HMAC-SHA256(key of this direction, seq u64 BE | len | payload)`, `seq` counting this
//! direction's frames from 0 (never sent). A longer length prefix, a connection closed mid-frame, a tag
//! that does not verify (altered, replayed, reordered, injected) or a payload that does not decode is a
//! *bad frame*: the connection is closed and `bad_frames` incremented.
//!
//! * raft stream: each payload is one prost-encoded `raft::prelude::Message`. Messages whose `from` is not
//!   the authenticated sender, whose `to` is not this node, or that are `MsgSnapshot`, are dropped
//!   (`messages_dropped_wrong_sender`).
//! * snapshot stream: one frame with the `MsgSnapshot` message, then one frame per chunk whose payload is
//!   `1u8 | chunk bytes`, then an empty frame (end). The receiver answers one frame holding `1` once the
//!   image is fsynced and delivered. Closing without the end frame aborts the transfer.
//!
//! # Tasks and queues
//!
//! ```text
//! ready loop ─ TcpTransport::send ─┬─ try_send ─▶ per-peer queue (bounded, peer_queue) ─▶ writer task ─▶ socket
//!   (never blocks; full queue or   │                 writer: dial + handshake, batches every queued message
//!    unknown peer → drop+counter)  │                 into one write, reconnects with capped jittered backoff
//!                                  └─ MsgSnapshot ─▶ snapshot sender task (≤ 1 per peer)
//!                                        spawn_blocking(source.stream) ─▶ channel(4 chunks) ─▶ socket
//! listener ─ accept task ─▶ one task per connection: handshake, then
//!      raft stream:     read frames ─▶ Inbound::message
//!      snapshot stream: read frames ─▶ channel(4 chunks) ─▶ spawn_blocking file writer (fsync, rename)
//!                                      ─▶ Inbound::snapshot, then ack
//! ```
//!
//! Flow control for snapshots comes from the two 4-chunk channels and TCP: a slow receiver disk stops the
//! socket reads, which stops the sender's writes, which blocks the producer's `sink`. No queue grows without
//! bound; nothing blocks a tokio worker on file I/O. While a peer is unreachable its writer reports
//! [`Inbound::unreachable`] once per failure episode and discards what was queued before each new dial.
//! Every task watches one shared signal: it stops on [`TransportHandle::shutdown`], and per-peer tasks and
//! accepted connections also stop when membership changes make them obsolete.

mod backoff;
mod counters;
mod frame;
#[cfg(test)]
mod fuzz;
mod handshake;
mod inbound;
mod outbound;
mod shared;
mod snapshot;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use raft::prelude::{Message, MessageType};

pub use counters::TransportCounters;
pub use snapshot::{SnapshotChunks, SnapshotImage};
pub use tls::{TlsError, TlsFiles};

use counters::inc;
use shared::Shared;

/// What a peer connection runs over: TCP, or TLS over TCP.
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Default bound of each peer's outbound queue, in messages.
pub const DEFAULT_PEER_QUEUE: usize = 4096;
/// Default largest frame accepted or sent.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;
/// Default bound of inbound peer connections open at once: a few per peer of the largest sensible
/// group, with room for connections a restarting peer leaves half-open.
pub const DEFAULT_MAX_INBOUND_CONNECTIONS: usize = 64;

/// Everything the transport needs to know; build with [`TransportConfig::new`] and adjust fields.
/// (`Debug` does not print the secret.)
#[derive(Clone)]
pub struct TransportConfig {
    pub cluster_id: String,
    pub node_id: u64,
    /// Shared secret for the HMAC proofs (an empty secret still means HMAC, with an empty key).
    pub secret: Vec<u8>,
    /// This node's peer address as the others should dial it; sent in the handshake.
    pub advertise_peer: String,
    /// This node's client (HTTP) address; sent in the handshake, learned by peers.
    pub advertise_client: String,
    /// Where received snapshot images are staged. Created if missing; stale images are removed at start.
    pub snapshot_dir: PathBuf,
    /// Bound of each peer's outbound queue, in messages.
    pub peer_queue: usize,
    /// Largest frame payload sent or accepted; a longer length prefix is a bad frame.
    pub max_frame: usize,
    /// Inbound peer connections open at once (handshaking or serving); more are closed when accepted.
    pub max_inbound_connections: usize,
    /// Reconnect backoff: capped exponential with jitter, from `backoff_min` up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Deadline for dialing plus the whole handshake, on both sides.
    pub handshake_timeout: Duration,
    /// Deadline for one batch write on a raft stream, and for each frame read or written on a snapshot
    /// stream; a peer that stalls longer is disconnected.
    pub io_timeout: Duration,
    /// How long a snapshot sender waits for the receiver's ack after the last chunk (the receiver fsyncs
    /// the whole image first).
    pub snapshot_ack_timeout: Duration,
    /// Mutual TLS on every peer connection (both directions, raft and snapshot streams); `None`: plain
    /// TCP, the frames still authenticated with the session keys of the HMAC handshake.
    pub tls: Option<TlsFiles>,
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("cluster_id", &self.cluster_id)
            .field("node_id", &self.node_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("advertise_peer", &self.advertise_peer)
            .field("advertise_client", &self.advertise_client)
            .field("snapshot_dir", &self.snapshot_dir)
            .field("peer_queue", &self.peer_queue)
            .field("max_frame", &self.max_frame)
            .field("max_inbound_connections", &self.max_inbound_connections)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("snapshot_ack_timeout", &self.snapshot_ack_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl TransportConfig {
    /// A configuration with the defaults: queue 4096 messages, frames up to 16 MiB, 64 inbound
    /// connections, backoff 50 ms..2 s, handshake 2 s, I/O 10 s, snapshot ack 60 s.
    pub fn new(
        cluster_id: impl Into<String>,
        node_id: u64,
        secret: impl Into<Vec<u8>>,
        advertise_peer: impl Into<String>,
        advertise_client: impl Into<String>,
        snapshot_dir: impl Into<PathBuf>,
    ) -> Self {
        TransportConfig {
            cluster_id: cluster_id.into(),
            node_id,
            secret: secret.into(),
            advertise_peer: advertise_peer.into(),
            advertise_client: advertise_client.into(),
            snapshot_dir: snapshot_dir.into(),
            peer_queue: DEFAULT_PEER_QUEUE,
            max_frame: DEFAULT_MAX_FRAME,
            max_inbound_connections: DEFAULT_MAX_INBOUND_CONNECTIONS,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(10),
            snapshot_ack_timeout: Duration::from_secs(60),
            tls: None,
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let invalid = |what: &str| Err(TransportError::Config(what.to_string()));
        if self.node_id == 0 {
            return invalid("node_id must not be 0 (raft's 'none')");
        }
        for (name, s) in [
            ("cluster_id", &self.cluster_id),
            ("advertise_peer", &self.advertise_peer),
            ("advertise_client", &self.advertise_client),
        ] {
            if s.len() > handshake::MAX_FIELD {
                return Err(TransportError::Config(format!(
                    "{name} is longer than {} bytes",
                    handshake::MAX_FIELD
                )));
            }
        }
        if self.peer_queue == 0 {
            return invalid("peer_queue must be at least 1");
        }
        if self.max_frame < 1024 || u32::try_from(self.max_frame).is_err() {
            return invalid("max_frame must be between 1 KiB and 4 GiB");
        }
        if self.max_inbound_connections == 0 {
            return invalid("max_inbound_connections must be at least 1");
        }
        if self.backoff_max < self.backoff_min {
            return invalid("backoff_max must not be below backoff_min");
        }
        Ok(())
    }
}

/// A member of the group as the transport sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// Where to dial it (`host:port`).
    pub addr: String,
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration is unusable; nothing was started.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The TLS files do not load; nothing was started.
    #[error("peer TLS: {0}")]
    Tls(#[from] TlsError),
    /// The listener or the snapshot directory failed; nothing was started.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Callbacks into the node. All must not block: they are called from transport tasks, and
/// `snapshot_status(_, false)` for an unknown peer from within [`TcpTransport`]'s `send` (the ready loop).
pub trait Inbound: Send + Sync + 'static {
    /// A Raft message from an authenticated, current peer (`from` is that peer, `to` is this node).
    fn message(&self, msg: Message);
    /// A `MsgSnapshot` whose image is fully received and fsynced. Removing the image is the callee's job.
    fn snapshot(&self, msg: Message, image: SnapshotImage);
    /// Dialing `peer` failed or its connection was lost (raft's `report_unreachable`); once per episode.
    fn unreachable(&self, peer: u64);
    /// Outcome of sending a snapshot to `peer` (raft's `report_snapshot`): exactly once per `MsgSnapshot`
    /// the transport started sending (until shutdown), and `false` for one addressed to an unknown peer.
    fn snapshot_status(&self, peer: u64, delivered: bool);
    /// Addresses `peer` advertised in its (authenticated) handshake.
    fn peer_addresses(&self, _peer: u64, _peer_addr: &str, _client_addr: &str) {}
}

/// The state-machine image sent with `MsgSnapshot`.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Emit the image as opaque chunks, in order. Runs on a blocking thread; `sink` blocks while the
    /// network is behind (flow control) and fails once the transfer is abandoned, after which `stream`
    /// should return promptly. Each chunk must be smaller than `max_frame`.
    fn stream(&self, sink: &mut dyn FnMut(Vec<u8>) -> Result<(), String>) -> Result<(), String>;
}

/// The sending side, owned by the ready loop.
pub struct TcpTransport {
    shared: Arc<Shared>,
}

/// The control side; cheap to clone.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl TcpTransport {
    /// Start accepting on `listener` (its tasks run on the current tokio runtime). No peer is known until
    /// [`TransportHandle::set_peers`]: until then every connection is refused and every message dropped.
    pub async fn start(
        cfg: TransportConfig,
        listener: tokio::net::TcpListener,
        inbound: Arc<dyn Inbound>,
        source: Arc<dyn SnapshotSource>,
    ) -> Result<(TcpTransport, TransportHandle), TransportError> {
        cfg.validate()?;
        let tls = match &cfg.tls {
            Some(files) => Some(tls::PeerTls::load(cfg.node_id, files.clone())?),
            None => None,
        };
        let local_addr = listener.local_addr().map_err(|source| TransportError::Io {
            context: "listener address".into(),
            source,
        })?;
        let dir = cfg.snapshot_dir.clone();
        tokio::task::spawn_blocking(move || snapshot::prepare_dir(&dir))
            .await
            .map_err(|e| TransportError::Io {
                context: "prepare snapshot dir".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| TransportError::Io {
                context: format!("prepare snapshot dir {}", cfg.snapshot_dir.display()),
                source,
            })?;
        let shared = Shared::new(cfg, tls, inbound, source, local_addr);
        shared.spawn(inbound::accept_loop(shared.clone(), listener));
        tracing::info!(node = shared.cfg.node_id, addr = %local_addr, "transport listening");
        Ok((
            TcpTransport {
                shared: shared.clone(),
            },
            TransportHandle { shared },
        ))
    }
}

impl crate::runner::Transport for TcpTransport {
    /// Route each message to its peer's queue. Never blocks: a full queue or an unknown peer drops the
    /// message (Raft retries). A `MsgSnapshot` starts a snapshot transfer unless one to that peer is
    /// already in flight (then it is dropped; the first transfer's status report makes Raft retry).
    fn send(&mut self, msgs: Vec<Message>) {
        let shared = &self.shared;
        let mut snapshots = Vec::new();
        let mut undeliverable_snapshots = Vec::new();
        {
            let members = shared.members();
            for msg in msgs {
                let Some(link) = members.links.get(&msg.to) else {
                    inc(&shared.counters.messages_dropped_unknown_peer);
                    if msg.get_msg_type() == MessageType::MsgSnapshot {
                        undeliverable_snapshots.push(msg.to);
                    }
                    continue;
                };
                if msg.get_msg_type() == MessageType::MsgSnapshot {
                    snapshots.push((
                        msg,
                        link.addr.clone(),
                        link.epoch,
                        link.snapshot_busy.clone(),
                    ));
                    continue;
                }
                match link.tx.try_send(msg) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        inc(&shared.counters.messages_dropped_queue_full)
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        inc(&shared.counters.messages_dropped_unknown_peer)
                    }
                }
            }
        }
        // Callbacks run outside the membership lock.
        for to in undeliverable_snapshots {
            shared.inbound.snapshot_status(to, false);
        }
        for (msg, addr, epoch, busy) in snapshots {
            if busy.swap(true, Ordering::SeqCst) {
                inc(&shared.counters.snapshots_dropped_busy);
                continue;
            }
            let to = msg.to;
            let task = snapshot::send(shared.clone(), to, addr, epoch, msg, busy.clone());
            if !shared.spawn(task) {
                busy.store(false, Ordering::SeqCst); // shutting down
            }
        }
    }
}

impl TransportHandle {
    /// Replace the set of peers (this node's own id is ignored). New peers get a queue and a writer;
    /// peers no longer present lose theirs, and their connections (both directions) are closed. A peer
    /// whose address changed is redialed.
    pub fn set_peers(&self, peers: Vec<Peer>) {
        self.shared
            .set_peers(peers, |peer| outbound::start_link(&self.shared, peer));
    }

    /// Ids that are never accepted again (removed members); replaces the previous list. Their open
    /// inbound connections are closed.
    pub fn set_removed(&self, removed: Vec<u64>) {
        self.shared.set_removed(removed);
    }

    /// Read the peer TLS files again: new connections use them, open ones keep theirs. `Ok(false)`:
    /// peer TLS is off. On an error the previous certificates stay in use.
    pub fn reload_tls(&self) -> Result<bool, TlsError> {
        match &self.shared.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    pub fn counters(&self) -> TransportCounters {
        self.shared.counters.snapshot()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Stop accepting, close every connection and wait for every task to stop. Idempotent; afterwards
    /// `send` drops everything. Blocking snapshot producers stop at their next `sink` call.
    pub async fn shutdown(&self) {
        self.shared.shutdown().await;
    }
}
