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
use super::frame;
use super::handshake::{self, DialError, Kind};
use super::shared::{Link, Shared};
use super::Peer;

/// A batch is written once it holds this many bytes or messages (or the queue is empty).
const BATCH_BYTES: usize = 1 << 20;
const BATCH_MESSAGES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("dial and handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Handshake(#[from] DialError),
}

/// Dial `addr` and authenticate as this node to `peer`, all within `handshake_timeout`.
pub(crate) async fn connect(
    shared: &Shared,
    peer: u64,
    addr: &str,
    kind: Kind,
) -> Result<TcpStream, ConnectError> {
    let limit = shared.cfg.handshake_timeout;
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        handshake::dial(&mut stream, &shared.me(), peer, kind).await?;
        Ok::<_, DialError>(stream)
    };
    match timeout(limit, attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.into()),
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
                Ok(stream) => {
                    inc(&shared.counters.connects);
                    tracing::debug!(peer, %addr, "connected");
                    backoff.reset();
                    down = false;
                    match write_batches(&shared, stream, &mut rx).await {
                        Ok(()) => return, // queue closed
                        Err(reason) => tracing::info!(peer, %addr, %reason, "connection lost"),
                    }
                }
                Err(e) => {
                    inc(&shared.counters.connect_failures);
                    match &e {
                        ConnectError::Handshake(d) if d.is_misconfiguration() => {
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
    stream: TcpStream,
    rx: &mut mpsc::Receiver<Message>,
) -> Result<(), String> {
    let (mut reader, mut writer) = stream.into_split();
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
            if encode(shared, &msg, &mut batch) {
                count += 1;
            }
            if batch.len() < BATCH_BYTES && count < BATCH_MESSAGES {
                next = rx.try_recv().ok();
            }
        }
        if count == 0 {
            continue;
        }
        match timeout(shared.cfg.io_timeout, writer.write_all(&batch)).await {
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

/// Append `msg` as one frame; `false` (and a counter) if it is larger than `max_frame`.
fn encode(shared: &Shared, msg: &Message, out: &mut Vec<u8>) -> bool {
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
    true
}
