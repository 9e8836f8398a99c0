//! One writer task per peer: dial, handshake, then write every queued message in batches; on failure report
//! the peer unreachable, back off, and redial.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::prelude::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::backoff::Backoff;
use super::counters::{add, inc};
use super::frame::{self, FrameKey};
use super::handshake::{self, DialError, Kind, Session};
use super::shared::{Link, Shared};
use super::tls;
use super::{Peer, Stream};

/// A batch is written once it holds this many bytes or messages (or the queue is empty).
const BATCH_BYTES: usize = 1 << 20;
const BATCH_MESSAGES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("dial and handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Handshake(#[from] DialError),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
}

impl ConnectError {
    /// A configuration problem on one side (as opposed to the network or a peer being down).
    fn is_misconfiguration(&self) -> bool {
        match self {
            ConnectError::Handshake(d) => d.is_misconfiguration(),
            ConnectError::Tls(_) => true,
            ConnectError::Timeout(_) => false,
        }
    }
}

/// Dial `addr` and authenticate as this node to `peer` (TLS first when peer TLS is on: the acceptor's
/// certificate must name `node-<peer>`), all within `handshake_timeout`.
pub(crate) async fn connect(
    shared: &Shared,
    peer: u64,
    addr: &str,
    kind: Kind,
) -> Result<(Stream, Session), ConnectError> {
    let limit = shared.cfg.handshake_timeout;
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(DialError::Io)?;
        tcp.set_nodelay(true).map_err(DialError::Io)?;
        let mut stream: Stream = match &shared.tls {
            None => Box::new(tcp),
            Some(peer_tls) => {
                let name = rustls::ServerName::try_from(tls::node_name(peer).as_str())
                    .map_err(|e| ConnectError::Tls(std::io::Error::other(e)))?;
                Box::new(
                    peer_tls
                        .connector()
                        .connect(name, tcp)
                        .await
                        .map_err(ConnectError::Tls)?,
                )
            }
        };
        let session = handshake::dial(&mut stream, &shared.me(), peer, kind).await?;
        Ok::<_, ConnectError>((stream, session))
    };
    match timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

/// A new link to `peer`: its bounded queue, and its writer task (a fresh generation) started.
pub(crate) fn start_link(shared: &Arc<Shared>, peer: Peer) -> Link {
    let (tx, rx) = mpsc::channel(shared.cfg.peer_queue);
    let epoch = shared.next_id();
    shared.spawn(run(shared.clone(), peer.id, peer.addr.clone(), epoch, rx));
    Link {
        addr: peer.addr,
        epoch,
        tx,
        snapshot_busy: Arc::new(AtomicBool::new(false)),
    }
}

/// The writer of generation `epoch` for `peer`; ends when its queue closes (the peer left the set) or
/// when the transport stops it.
async fn run(
    shared: Arc<Shared>,
    peer: u64,
    addr: String,
    epoch: u64,
    mut rx: mpsc::Receiver<Message>,
) {
    let writer = async {
        let mut backoff = Backoff::new(shared.cfg.backoff_min, shared.cfg.backoff_max);
        let mut down = false;
        loop {
            if down {
                // Queued while the peer was down: stale by now, and Raft resends what still matters.
                let mut stale = 0;
                while rx.try_recv().is_ok() {
                    stale += 1;
                }
                add(&shared.counters.messages_dropped_disconnected, stale);
            }
            match connect(&shared, peer, &addr, Kind::Raft).await {
                Ok((stream, session)) => {
                    inc(&shared.counters.connects);
                    tracing::debug!(peer, %addr, "connected");
                    backoff.reset();
                    down = false;
                    match write_batches(&shared, stream, session.send, &mut rx).await {
                        Ok(()) => return, // queue closed
                        Err(reason) => tracing::info!(peer, %addr, %reason, "connection lost"),
                    }
                }
                Err(e) => {
                    inc(&shared.counters.connect_failures);
                    match &e {
                        e if e.is_misconfiguration() => {
                            tracing::warn!(peer, %addr, error = %e, "peer refused our handshake")
                        }
                        _ if !down => tracing::info!(peer, %addr, error = %e, "cannot reach peer"),
                        _ => tracing::debug!(peer, %addr, error = %e, "cannot reach peer"),
                    }
                }
            }
            if rx.is_closed() {
                return;
            }
            if !down {
                down = true;
                shared.inbound.unreachable(peer);
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    };
    tokio::select! {
        () = writer => {}
        () = shared.stopped(|m| !m.is_current(peer, epoch)) => {}
    }
}

/// Write queued messages until the queue closes (`Ok`) or the connection fails (`Err` with the reason).
/// The peer never writes on this connection, so anything readable (EOF included) means it is gone.
async fn write_batches(
    shared: &Shared,
    stream: Stream,
    mut key: FrameKey,
    rx: &mut mpsc::Receiver<Message>,
) -> Result<(), String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut probe = [0u8; 1];
    let mut batch = Vec::with_capacity(64 << 10);
    loop {
        let first = tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => msg,
                None => return Ok(()),
            },
            read = reader.read(&mut probe) => return Err(match read {
                Ok(0) => "closed by the peer".to_string(),
                Ok(_) => "unexpected data from the peer".to_string(),
                Err(e) => e.to_string(),
            }),
        };
        batch.clear();
        let mut count = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            if encode(shared, &msg, &mut batch, &mut key) {
                count += 1;
            }
            if batch.len() < BATCH_BYTES && count < BATCH_MESSAGES {
                next = rx.try_recv().ok();
            }
        }
        if count == 0 {
            continue;
        }
        let write = async {
            writer.write_all(&batch).await?;
            writer.flush().await // pushes out what TLS still buffers
        };
        match timeout(shared.cfg.io_timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("write timed out: the peer is not reading".to_string()),
        }
        inc(&shared.counters.batches_written);
        add(&shared.counters.messages_sent, count);
        add(&shared.counters.frames_sent, count);
        if batch.capacity() > 4 * BATCH_BYTES {
            batch = Vec::with_capacity(64 << 10);
        }
    }
}

/// Append `msg` as one frame tagged with `key`; `false` (and a counter) if it is larger than `max_frame`.
fn encode(shared: &Shared, msg: &Message, out: &mut Vec<u8>, key: &mut FrameKey) -> bool {
    let Some(header) = frame::header(msg.encoded_len(), shared.cfg.max_frame) else {
        inc(&shared.counters.messages_dropped_too_large);
        tracing::warn!(
            to = msg.to,
            size = msg.encoded_len(),
            "raft message exceeds max_frame, dropped"
        );
        return false;
    };
    let start = out.len();
    out.extend_from_slice(&header);
    if msg.encode(out).is_err() {
        out.truncate(start); // cannot happen: a Vec grows as needed
        return false;
    }
    let tag = key.tag(&header, &[&out[start + frame::HEADER..]]);
    out.extend_from_slice(&tag);
    true
}
