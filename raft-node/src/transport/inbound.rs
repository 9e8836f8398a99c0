//! The accepting side: one task per accepted connection runs the handshake, then reads a raft stream
//! (or hands a snapshot stream to [`super::snapshot::receive`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::counters::inc;
use super::frame;
use super::handshake::{self, AcceptError, Kind, Reject};
use super::shared::Shared;
use super::snapshot;

/// Accept peer connections, at most `max_inbound_connections` open at once (handshaking or serving):
/// beyond that a connection is closed at once, so unauthenticated dialers cannot exhaust the process's
/// file descriptors or memory. Genuine peers hold one raft and at most one snapshot connection each.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(shared.cfg.max_inbound_connections));
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    inc(&shared.counters.connections_refused);
                    tracing::warn!(%remote, limit = shared.cfg.max_inbound_connections,
                        "peer connection refused: too many open peer connections");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let task = serve(shared.clone(), stream, remote);
                shared.spawn(async move {
                    task.await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Typically out of file descriptors: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream, remote: SocketAddr) {
    let c = &shared.counters;
    let local = shared.local();
    let handshake = handshake::accept(&mut stream, &local, |id| shared.members().standing(id));
    let hello = match timeout(shared.cfg.handshake_timeout, handshake).await {
        Ok(Ok(hello)) => hello,
        Err(_) => {
            inc(&c.handshakes_timed_out);
            tracing::warn!(%remote, "peer connection rejected: handshake timed out");
            return;
        }
        Ok(Err(AcceptError::Io(e))) => {
            tracing::debug!(%remote, error = %e, "peer connection failed during handshake");
            return;
        }
        Ok(Err(AcceptError::Rejected { reason, sender })) => {
            inc(match reason {
                Reject::Malformed => &c.bad_frames,
                Reject::Cluster => &c.handshakes_rejected_cluster,
                Reject::Proof => &c.handshakes_rejected_proof,
                Reject::Receiver => &c.handshakes_rejected_receiver,
                Reject::Removed => &c.handshakes_rejected_removed,
                Reject::UnknownId => &c.handshakes_rejected_unknown_id,
            });
            tracing::warn!(%remote, claimed_id = ?sender, %reason, "peer connection rejected");
            return;
        }
    };
    inc(&c.handshakes_accepted);
    let sender = hello.sender;
    tracing::debug!(%remote, peer = sender, kind = ?hello.kind, "peer connection accepted");
    shared
        .inbound
        .peer_addresses(sender, &hello.advertise_peer, &hello.advertise_client);
    match hello.kind {
        Kind::Raft => {
            let conn = shared.register_inbound(sender);
            tokio::select! {
                () = read_raft(&shared, stream, sender, remote) => {}
                () = shared.stopped(|m| {
                    !m.admits(sender) || m.latest_inbound.get(&sender) != Some(&conn)
                }) => tracing::debug!(%remote, peer = sender, "closing superseded or removed peer connection"),
            }
        }
        Kind::Snapshot => {
            tokio::select! {
                () = snapshot::receive(&shared, stream, sender, remote) => {}
                () = shared.stopped(|m| !m.admits(sender)) => {}
            }
        }
    }
}

/// Deliver each message of an authenticated raft stream until it ends or misbehaves.
async fn read_raft(shared: &Shared, stream: TcpStream, sender: u64, remote: SocketAddr) {
    let c = &shared.counters;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut buf = Vec::new();
    loop {
        match frame::read(&mut reader, shared.cfg.max_frame, &mut buf).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                if e.is_bad_input() {
                    inc(&c.bad_frames);
                    tracing::warn!(%remote, peer = sender, error = %e, "bad frame, closing");
                } else {
                    tracing::debug!(%remote, peer = sender, error = %e, "peer connection failed");
                }
                return;
            }
        }
        let msg = match Message::decode(buf.as_slice()) {
            Ok(msg) => msg,
            Err(e) => {
                inc(&c.bad_frames);
                tracing::warn!(%remote, peer = sender, error = %e, "undecodable raft message, closing");
                return;
            }
        };
        if msg.from != sender
            || msg.to != shared.cfg.node_id
            || msg.get_msg_type() == MessageType::MsgSnapshot
        {
            inc(&c.messages_dropped_wrong_sender);
            tracing::warn!(%remote, peer = sender, from = msg.from, to = msg.to,
                msg_type = ?msg.get_msg_type(), "misaddressed raft message dropped");
            continue;
        }
        inc(&c.messages_received);
        shared.inbound.message(msg);
        if buf.capacity() > 1 << 20 {
            buf = Vec::new();
        }
    }
}
