//! What every handler gets: the shared [`Ctx`] (backend, limits, client authentication, the in-flight
//! proposal bound, the metrics registry and this layer's metrics in it, the forwarding client) and the request's [`Origin`]
//! (enough of it to forward it verbatim, plus its deadline). Plain data: forwarding (`forward.rs`) builds
//! on this module, never the other way round.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use hyper::client::HttpConnector;
use hyper_rustls::HttpsConnector;
use prometheus::Registry;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use warp::http::{HeaderMap, Method};

use super::auth::Auth;
use super::backend::Backend;
use super::error::Kind;
use super::limits::Limits;
use super::metrics::Metrics;

/// Marks a request that was already forwarded once: it is never forwarded again (no loops). It grants
/// nothing: a forwarded request is authenticated again by its own `Authorization` header.
pub const FORWARDED_HEADER: &str = "kvs-forwarded";

pub struct Ctx<B> {
    pub backend: B,
    pub limits: Limits,
    /// Who may call which route (checked before a body is read or a request forwarded).
    pub auth: Auth,
    /// One permit per proposal in flight from this layer: full → 429, never an unbounded queue.
    pub proposals: Arc<Semaphore>,
    /// One permit per backup streaming from this node (`GET /v1/snapshot`): full → 429.
    pub backups: Arc<Semaphore>,
    /// The one registry `/metrics` serves: this layer's metrics and the backend's.
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    /// The forwarding client; speaks https when this node's client port runs TLS.
    pub client: hyper::Client<HttpsConnector<HttpConnector>>,
    /// `https` when this node's client port runs TLS (then every node's does: see `crate::tls`).
    pub scheme: &'static str,
    /// Set when the server's shutdown notice begins: every answer then says `Connection: close`.
    pub closing: Arc<AtomicBool>,
}

impl<B: Backend> Ctx<B> {
    pub fn new(backend: B, limits: Limits, auth: Auth) -> Arc<Ctx<B>> {
        Ctx::with_tls(backend, limits, auth, None)
    }

    /// `tls`: the client configuration towards the other nodes' client ports (their port runs TLS).
    pub fn with_tls(
        backend: B,
        limits: Limits,
        auth: Auth,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Arc<Ctx<B>> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = crate::tls::https_client(
            tls.as_ref(),
            limits.forward_timeout,
            std::time::Duration::from_secs(30),
        );
        let registry = Registry::new();
        // Fixed definitions in a fresh registry: an error here is a bug every test would hit.
        let metrics = Metrics::register(&registry)
            .expect("the HTTP layer's metric definitions are valid and unique");
        backend.register_metrics(&registry);
        Arc::new(Ctx {
            proposals: Arc::new(Semaphore::new(limits.max_inflight_proposals)),
            backups: Arc::new(Semaphore::new(super::snapshot::MAX_BACKUPS)),
            backend,
            limits,
            auth,
            registry,
            metrics: Arc::new(metrics),
            client,
            scheme,
            closing: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// The request as received, kept so it can be replayed to the leader.
#[derive(Debug, Clone)]
pub struct Origin {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request's head arrived (the write path's first stage starts here).
    pub arrived: Instant,
    pub deadline: Instant,
}

impl Origin {
    pub fn forwarded(&self) -> bool {
        self.headers.contains_key(FORWARDED_HEADER)
    }

    /// Reads can be retried freely; anything else may have taken effect when its deadline passes.
    pub fn kind(&self) -> Kind {
        if self.method == Method::GET || self.method == Method::HEAD {
            Kind::Read
        } else {
            Kind::Write
        }
    }

    pub fn with_body(mut self, body: Bytes) -> Origin {
        self.body = body;
        self
    }

    /// The raw query string ("" when there is none).
    pub fn query(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
    }
}
