//! Connections the double can cut: every accepted TCP stream is wrapped so the double can drop it
//! (reads and writes fail at once), hold it (nothing moves, as in a network partition), or let
//! it flow again. A server that "stops serving" refuses or holds new connections too.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::Connected;

/// How a stopped server treats its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Connections are reset, new ones closed at once: the client fails fast and reconnects.
    Refuse,
    /// Connections stay open but nothing moves either way, new ones included (TCP accepts them,
    /// the HTTP/2 handshake never completes): the client waits, as behind a real partition.
    Blackhole,
}

const LIVE: u8 = 0;
const HELD: u8 = 1;
const DEAD: u8 = 2;

/// The id of one accepted connection, in each request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

#[derive(Debug)]
struct ConnState {
    mode: AtomicU8,
    waker: AtomicWaker,
}

impl ConnState {
    fn set(&self, mode: u8) {
        // A dead connection stays dead.
        let _ = self
            .mode
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                (m != DEAD).then_some(mode)
            });
        self.waker.wake();
    }
}

#[derive(Debug, Default)]
struct RegistryState {
    conns: HashMap<ConnId, Arc<ConnState>>,
    stopped: Option<Partition>,
}

/// The connections of one server, and whether it serves.
#[derive(Debug, Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stop serving: existing and new connections are reset or held.
    pub fn stop(&self, how: Partition) {
        let mut state = self.lock();
        state.stopped = Some(how);
        let mode = match how {
            Partition::Refuse => DEAD,
            Partition::Blackhole => HELD,
        };
        for conn in state.conns.values() {
            conn.set(mode);
        }
    }

    /// Serve again: held connections flow again (as when a partition heals).
    pub fn resume(&self) {
        let mut state = self.lock();
        state.stopped = None;
        for conn in state.conns.values() {
            conn.set(LIVE);
        }
    }

    /// Drop one connection.
    pub fn kill(&self, id: ConnId) {
        if let Some(conn) = self.lock().conns.get(&id) {
            conn.set(DEAD);
        }
    }

    /// Drop every connection (at shutdown).
    pub fn kill_all(&self) {
        for conn in self.lock().conns.values() {
            conn.set(DEAD);
        }
    }

    fn admit(self: &Arc<Self>, io: TcpStream) -> Option<Conn> {
        let mut state = self.lock();
        let mode = match state.stopped {
            Some(Partition::Refuse) => return None,
            Some(Partition::Blackhole) => HELD,
            None => LIVE,
        };
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let conn_state = Arc::new(ConnState {
            mode: AtomicU8::new(mode),
            waker: AtomicWaker::new(),
        });
        state.conns.insert(id, conn_state.clone());
        Some(Conn {
            io,
            id,
            state: conn_state,
            registry: Arc::downgrade(self),
        })
    }
}

/// The stream of admitted connections a tonic server serves.
pub fn incoming(
    listener: TcpListener,
    registry: Arc<Registry>,
) -> impl Stream<Item = io::Result<Conn>> {
    futures_util::stream::unfold((listener, registry), |(listener, registry)| async move {
        loop {
            match listener.accept().await {
                Ok((io, _)) => {
                    let _ = io.set_nodelay(true);
                    if let Some(conn) = registry.admit(io) {
                        return Some((Ok(conn), (listener, registry)));
                    }
                    // Refused: the stream is dropped, which closes it.
                }
                Err(e) => {
                    // Out of descriptors or the like: try again shortly, do not end the server.
                    tracing::warn!(error = %e, "tikv-double: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// One accepted connection.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    id: ConnId,
    state: Arc<ConnState>,
    registry: Weak<Registry>,
}

impl Conn {
    /// `Ready(Some(result))` when the connection is not live (dead: the error; held: pending).
    fn gate<T>(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<T>>> {
        self.state.waker.register(cx.waker());
        match self.state.mode.load(Ordering::Acquire) {
            LIVE => None,
            HELD => Some(Poll::Pending),
            _ => Some(Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "tikv-double: connection dropped",
            )))),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.lock().conns.remove(&self.id);
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnId;

    fn connect_info(&self) -> ConnId {
        self.id
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(p) = self.gate(cx) {
            return p;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(p) = self.gate(cx) {
            return p;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = self.gate(cx) {
            return p;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = self.gate(cx) {
            return p;
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
