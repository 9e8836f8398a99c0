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
use super::handshake::{self, AcceptError, Kind, Reject, Session};
use super::shared::Shared;
use super::snapshot;
use super::tls;
use super::Stream;

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

/// The TLS handshake (when peer TLS is on), then the hello, both under one deadline. With TLS the
/// hello's sender must be the id the client certificate names.
async fn handshake(
    shared: &Shared,
    stream: TcpStream,
) -> Result<(Stream, handshake::Hello, Session), AcceptError> {
    let local = shared.local();
    let standing = |id| shared.members().standing(id);
    match &shared.tls {
        None => {
            let mut stream: Stream = Box::new(stream);
            let (hello, session) =
                handshake::accept(&mut stream, &local, standing, |_| true).await?;
            Ok((stream, hello, session))
        }
        Some(peer_tls) => {
            let mut stream = peer_tls
                .acceptor()
                .accept(stream)
                .await
                .map_err(AcceptError::Tls)?;
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| cert.0.clone());
            let identity = |id| leaf.is_some_and(|leaf| tls::names(&leaf, &tls::node_name(id)));
            let (hello, session) =
                handshake::accept(&mut stream, &local, standing, identity).await?;
            Ok((Box::new(stream), hello, session))
        }
    }
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    let c = &shared.counters;
    let (stream, hello, session) = match timeout(
        shared.cfg.handshake_timeout,
        handshake(&shared, stream),
    )
    .await
    {
        Ok(Ok(accepted)) => accepted,
        Err(_) => {
            inc(&c.handshakes_timed_out);
            tracing::warn!(%remote, "peer connection rejected: handshake timed out");
            return;
        }
        Ok(Err(AcceptError::Io(e))) => {
            tracing::debug!(%remote, error = %e, "peer connection failed during handshake");
            return;
        }
        Ok(Err(AcceptError::Tls(e))) => {
            inc(&c.handshakes_failed_tls);
            tracing::warn!(%remote, error = %e, "peer connection rejected: TLS handshake failed");
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
                Reject::Identity => &c.handshakes_rejected_identity,
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
                () = read_raft(&shared, stream, session, sender, remote) => {}
                () = shared.stopped(|m| {
                    !m.admits(sender) || m.latest_inbound.get(&sender) != Some(&conn)
                }) => tracing::debug!(%remote, peer = sender, "closing superseded or removed peer connection"),
            }
        }
        Kind::Snapshot => {
            tokio::select! {
                () = snapshot::receive(&shared, stream, session, sender, remote) => {}
                () = shared.stopped(|m| !m.admits(sender)) => {}
            }
        }
    }
}

/// Deliver each message of an authenticated raft stream until it ends or misbehaves.
async fn read_raft(
    shared: &Shared,
    stream: Stream,
    mut session: Session,
    sender: u64,
    remote: SocketAddr,
) {
    let c = &shared.counters;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut buf = Vec::new();
    loop {
        match frame::read(
            &mut reader,
            shared.cfg.max_frame,
            &mut buf,
            &mut session.recv,
        )
        .await
        {
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
