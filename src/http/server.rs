//! [`serve`]: the client API server on a given listener, until a given shutdown signal (conventions
//! item 8: tests and systemd drive the same code).
//!
//! * **Connections** are bounded by a semaphore (`max_connections`). Beyond it a connection is accepted,
//!   answered `503 too_many_connections` with `Retry-After`, and closed — a client sees why instead of a
//!   hang or a reset. (Refusals are themselves bounded; past that the socket is simply closed.)
//! * **Slow clients**: a connection must deliver a request head within `header_read_timeout` (hyper's
//!   HTTP/1 header read timeout), else it is closed.
//! * **TLS** ([`serve_tls`], `crate::tls`): each accepted connection (inside the connection limit) runs
//!   the TLS handshake first, bounded by `header_read_timeout` as well; a failed handshake closes it.
//!   Over the limit a TLS connection is simply closed (a plain-text 503 would mean nothing to it).
//! * **Shutdown**: first a notice (`close_notice`, ended early once no connection is open): still
//!   accepting, every answer says `Connection: close`, so a client's keep-alive connection ends after an
//!   answer rather than under a request it just sent. Then stop accepting (the listener is dropped), tell
//!   every connection to finish its in-flight request and close (hyper's graceful shutdown), wait up to
//!   `shutdown_grace`, then drop what is left. Proposals already handed to the node run to completion in
//!   their own tasks.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use warp::hyper::server::conn::Http;

use super::auth::Auth;
use super::backend::Backend;
use super::context::Ctx;
use super::error::{ApiError, Code};
use super::limits::Limits;
use super::routes::with_ctx;
use crate::tls::HttpTls;

/// How often the shutdown notice checks whether every connection has closed.
const NOTICE_POLL: Duration = Duration::from_millis(10);

/// After the notice, how long the connections still open may end by themselves before they are told to.
const LAST_CALL: Duration = Duration::from_millis(50);

/// What a client connection runs over: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Serve the API on `listener` until `shutdown` resolves; returns when connections have drained (or the
/// grace period ran out).
pub async fn serve<B: Backend>(
    listener: TcpListener,
    backend: B,
    limits: Limits,
    auth: Auth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_tls(listener, backend, limits, auth, None, shutdown).await;
}

/// [`serve`], over TLS when `tls` is given (and forwarding to the leader over https).
pub async fn serve_tls<B: Backend>(
    listener: TcpListener,
    backend: B,
    limits: Limits,
    auth: Auth,
    tls: Option<HttpTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let ctx = Ctx::with_tls(
        backend,
        limits.clone(),
        auth,
        tls.as_ref().map(|t| t.client.clone()),
    );
    let acceptor = tls.map(|t| t.server);
    let metrics = Arc::clone(&ctx.metrics);
    let closing = Arc::clone(&ctx.closing);
    let service = warp::service(with_ctx(ctx));
    let mut http = Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .http1_header_read_timeout(limits.header_read_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(limits.max_connections.clamp(1, 256)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    // Set once the shutdown signal came: the end of the notice.
    let mut notice_until: Option<tokio::time::Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        if let Some(until) = notice_until {
            if tasks.is_empty() || tokio::time::Instant::now() >= until {
                break;
            }
        }
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown, if notice_until.is_none() => {
                closing.store(true, Ordering::Relaxed);
                notice_until = Some(tokio::time::Instant::now() + limits.close_notice);
                continue;
            }
            // During the notice: look again at the open connections and the clock.
            () = tokio::time::sleep(NOTICE_POLL), if notice_until.is_some() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                let http = http.clone();
                let service = service.clone();
                let mut stop = stop_rx.clone();
                let metrics = Arc::clone(&metrics);
                let tls = acceptor.as_ref().map(|t| t.acceptor());
                let handshake_timeout = limits.header_read_timeout;
                metrics.connections_active.inc();
                tasks.spawn(async move {
                    let Some(io) = open(stream, tls, handshake_timeout).await else {
                        metrics.connections_active.dec();
                        drop(permit);
                        return;
                    };
                    let conn = http.serve_connection(io, service);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "client connection ended with an error");
                            }
                        }
                        () = async {
                            // The watch guard is dropped here, not held across the drain below.
                            let _ = stop.wait_for(|stopping| *stopping).await;
                        } => {
                            conn.as_mut().graceful_shutdown();
                            if let Err(e) = conn.await {
                                tracing::debug!(error = %e, "client connection ended with an error");
                            }
                        }
                    }
                    metrics.connections_active.dec();
                    drop(permit);
                });
            }
            Err(_) => {
                metrics.connections_rejected.inc();
                if acceptor.is_some() {
                    drop(stream);
                } else if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                    let retry = limits.retry_after_secs;
                    tokio::spawn(async move {
                        refuse(stream, retry).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    drop(listener);
    if notice_until.is_some() {
        // Connections accepted in the notice's last moments may not have sent their request yet; let
        // them be answered (with `Connection: close`) before the rest are closed.
        let _ = tokio::time::timeout(LAST_CALL, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "shutdown grace period over; dropping the remaining client connections"
        );
        tasks.shutdown().await;
    }
}

/// The connection as the HTTP layer reads it: the TCP stream itself, or the TLS stream once the
/// handshake succeeded within `limit` (`None`: it failed or timed out; the connection is closed).
async fn open(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limit: Duration,
) -> Option<Box<dyn Io>> {
    let Some(tls) = tls else {
        return Some(Box::new(stream));
    };
    match tokio::time::timeout(limit, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "client TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(after = ?limit, "client TLS handshake timed out");
            None
        }
    }
}

/// Answer a connection over the limit with a 503 and close it. The request is drained briefly so closing
/// does not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream, retry_after: u64) {
    let mut refusal = ApiError::new(
        Code::TooManyConnections,
        "the server is at its connection limit; retry later",
    );
    refusal.retry_after = Some(retry_after);
    let bytes = refusal.http1_closing();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
