//! The HTTP client of the client and operations subcommands (and, later, `bench`): a list of endpoints
//! with failover, a bearer token, TLS, and one deadline per command.
//!
//! ```no_run
//! # async fn example() -> Result<(), kvs_raft::client::ClientError> {
//! use kvs_raft::client::{Client, ClientOptions, Request};
//! let client = Client::new(ClientOptions {
//!     endpoints: "http://10.0.0.1:7379,http://10.0.0.2:7379".into(),
//!     timeout: Some(std::time::Duration::from_secs(10)),
//!     ..ClientOptions::default()
//! })?;
//! // A request: the whole answer, with its status, headers and body.
//! let res = client.request(Request::put("/v1/kv/a", b"1".to_vec())).await?;
//! assert!(res.status.is_success() || res.api_error().is_some());
//! // A download: the head under the deadline, then the body as a stream of chunks.
//! let mut download = client.get_stream("/v1/kv/a").await?;
//! while let Some(chunk) = hyper::body::HttpBody::data(&mut download.body).await {
//!     let _bytes = chunk.map_err(|e| kvs_raft::client::ClientError::Broken {
//!         endpoint: download.endpoint.to_string(),
//!         detail: e.to_string(),
//!     })?;
//!     // write the chunk, advance a progress bar by its length (`download.content_length()` is the total)
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client::new`] checks every option before anything is sent (a bad one is
//!   [`ClientError::InvalidOption`], naming the option: the CLI exits 2 with it) and starts the
//!   command's **deadline** (`timeout`; `None` = none): every request of this client, and every
//!   endpoint tried for it, shares it (CONVENTIONS 17). A client serves one command.
//! - [`Client::request`] sends a [`Request`] and returns the whole [`Response`] (status, headers, body)
//!   of the first endpoint that answers it — errors of the API included: inspect
//!   [`Response::api_error`]; [`Client::request_at`] asks one given endpoint (a node named in an
//!   answer, such as the leader). [`Client::get_stream`] returns the head of a GET and its body as a stream
//!   ([`StreamingResponse`]), for large downloads with progress; the deadline covers the head only
//!   ([`Client::deadline`] is there for the caller's own body reads).
//! - **Failover** ([`failover::decide`]): endpoints are tried in the order given. A connection that
//!   cannot be made (nothing sent) moves on at once, so does a 503 whose code says the node cannot serve
//!   now and changed nothing ([`failover::MOVE_ON_CODES`]). A read (idempotent request) also moves on
//!   when its connection breaks, or when it gets no answer within its share of the deadline (with `k`
//!   endpoints left, `1/k` of what remains: a hung node cannot take the whole deadline). A write that was sent and got no answer is **never re-sent**: it is
//!   [`ClientError::OutcomeUnknown`]. When every endpoint fails, the last API answer is returned (the
//!   caller reports its error), or [`ClientError::Unreachable`] when none answered at all.
//! - **Auth and TLS**: `token` (or the first line of `token_file`) is sent as `Authorization: Bearer`.
//!   `https://` endpoints need `cacert` (the site's CA, PEM); `cert` + `key` present a client
//!   certificate (mutual TLS). The TLS stack is the node's own ([`crate::tls`]).

pub mod endpoint;
pub mod failover;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::HttpBody as _;
use hyper::client::HttpConnector;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Body, Method, StatusCode};
use hyper_rustls::HttpsConnector;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use endpoint::Endpoint;
use failover::{decide, Attempt, Decision};

/// The endpoint when none is given: the client address `kvs-raft serve` listens on by default.
pub fn default_endpoint() -> &'static str {
    static DEFAULT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| {
        format!(
            "http://{}",
            crate::config::default_of("listen_client").unwrap_or_default()
        )
    })
}

/// How long a connection attempt may take before the next endpoint is tried (within the deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a [`Client`] is made from: the values of the shared client flags (`--endpoints`, `--token`,
/// `--token-file`, `--cacert`, `--cert`, `--key`, `--timeout`), unchecked.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Comma-separated node URLs, `http://host:port` or `https://host:port` (see [`endpoint`]); empty =
    /// [`default_endpoint`].
    pub endpoints: String,
    pub token: Option<String>,
    /// A file whose first line is the token (exclusive with `token`).
    pub token_file: Option<PathBuf>,
    /// The CA certificate(s) (PEM) to verify `https://` endpoints with.
    pub cacert: Option<PathBuf>,
    /// Client certificate chain and key (PEM) for mutual TLS; both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The deadline of the whole command, from [`Client::new`]; `None`: no deadline.
    pub timeout: Option<Duration>,
}

/// Why a request has no answer to report (an API error answer is not one: it is a [`Response`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A client option is invalid (a usage error: nothing was sent).
    #[error("invalid --{option}: {message}")]
    InvalidOption {
        option: &'static str,
        message: String,
    },
    /// No endpoint answered (each attempt's failure, in order); nothing was changed.
    #[error("no node could be reached ({}); check --endpoints and that the nodes run", .attempts.join("; "))]
    Unreachable { attempts: Vec<String> },
    /// A write was sent and no answer came: it may or may not have been applied.
    #[error("the request was sent to {endpoint} but no answer came ({detail}): it may or may not have been applied; read the data back before retrying")]
    OutcomeUnknown { endpoint: String, detail: String },
    /// A read got no answer within the deadline (nothing was changed).
    #[error("no answer from {endpoint} within the deadline (--timeout {timeout:?}); nothing was changed")]
    Timeout { endpoint: String, timeout: Duration },
    /// The connection broke while a streamed body was read.
    #[error("the connection to {endpoint} broke: {detail}")]
    Broken { endpoint: String, detail: String },
    /// An answer that is not what the API sends.
    #[error("unexpected answer from {endpoint}: {message}")]
    BadAnswer { endpoint: String, message: String },
}

/// One request: a method, a path with its query (percent-encoded: see [`encode_path`]), a body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path_and_query: String,
    pub body: Bytes,
    pub content_type: Option<&'static str>,
    /// Safe to send twice (reads): it may then move to the next endpoint after a broken connection.
    pub idempotent: bool,
}

impl Request {
    fn new(method: Method, path_and_query: impl Into<String>) -> Request {
        let idempotent = method == Method::GET;
        Request {
            method,
            path_and_query: path_and_query.into(),
            body: Bytes::new(),
            content_type: None,
            idempotent,
        }
    }

    pub fn get(path_and_query: impl Into<String>) -> Request {
        Request::new(Method::GET, path_and_query)
    }

    pub fn delete(path_and_query: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path_and_query)
    }

    /// A PUT with a raw body (`application/octet-stream`).
    pub fn put(path_and_query: impl Into<String>, body: impl Into<Bytes>) -> Request {
        Request {
            body: body.into(),
            content_type: Some("application/octet-stream"),
            ..Request::new(Method::PUT, path_and_query)
        }
    }

    /// A POST without a body.
    pub fn post(path_and_query: impl Into<String>) -> Request {
        Request::new(Method::POST, path_and_query)
    }

    /// A POST with a JSON body.
    pub fn post_json(path_and_query: impl Into<String>, body: &Value) -> Request {
        Request {
            body: Bytes::from(body.to_string()),
            content_type: Some("application/json"),
            ..Request::new(Method::POST, path_and_query)
        }
    }

    /// A POST with a JSON body given as bytes (sent as they are; the node checks them).
    pub fn post_json_bytes(path_and_query: impl Into<String>, body: impl Into<Bytes>) -> Request {
        Request {
            body: body.into(),
            content_type: Some("application/json"),
            ..Request::new(Method::POST, path_and_query)
        }
    }
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The endpoint that answered.
    pub endpoint: Endpoint,
}

/// The API's error object `{"error":{"code","message",...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
    /// The other fields of the error object (`current_epoch`, `leader`, `role`, ...).
    pub extra: Map<String, Value>,
}

impl ApiErrorBody {
    /// The error object of an answer's body, if it has one.
    pub fn parse(body: &[u8]) -> Option<ApiErrorBody> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let mut obj = v.get("error")?.as_object()?.clone();
        let code = obj.remove("code")?.as_str()?.to_owned();
        let message = obj
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_default();
        Some(ApiErrorBody {
            code,
            message,
            extra: obj,
        })
    }
}

impl Response {
    /// The API error of an error answer (`None` for a success, or a body that is not the API's shape).
    pub fn api_error(&self) -> Option<ApiErrorBody> {
        if self.status.is_success() {
            return None;
        }
        ApiErrorBody::parse(&self.body)
    }

    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::BadAnswer {
            endpoint: self.endpoint.to_string(),
            message: format!(
                "{} with a body that is not the expected JSON: {e}",
                self.status
            ),
        })
    }

    /// A header's value as a `u64` (`kvs-ts`, `kvs-epoch`, ...).
    pub fn header_u64(&self, name: &str) -> Option<u64> {
        header_u64(&self.headers, name)
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The head of an answer and its body as a stream (from [`Client::get_stream`]).
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
    pub endpoint: Endpoint,
}

impl StreamingResponse {
    /// `Content-Length`, when the node sent one (the total for a progress bar).
    pub fn content_length(&self) -> Option<u64> {
        header_u64(&self.headers, CONTENT_LENGTH.as_str())
    }

    /// Read the whole body (under the client's deadline): for error answers, or small bodies.
    pub async fn collect(self, client: &Client) -> Result<Response, ClientError> {
        let endpoint = self.endpoint;
        let read = hyper::body::to_bytes(self.body);
        let body = match client.within(read).await {
            None => {
                return Err(ClientError::Timeout {
                    endpoint: endpoint.to_string(),
                    timeout: client.timeout.unwrap_or_default(),
                })
            }
            Some(Err(e)) => {
                return Err(ClientError::Broken {
                    endpoint: endpoint.to_string(),
                    detail: e.to_string(),
                })
            }
            Some(Ok(b)) => b,
        };
        Ok(Response {
            status: self.status,
            headers: self.headers,
            body,
            endpoint,
        })
    }
}

/// The client of one command.
pub struct Client {
    endpoints: Vec<Endpoint>,
    http: hyper::Client<HttpsConnector<HttpConnector>>,
    token: Option<HeaderValue>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

fn invalid(option: &'static str, message: impl Into<String>) -> ClientError {
    ClientError::InvalidOption {
        option,
        message: message.into(),
    }
}

/// The token of `--token` or `--token-file` (its first line, trimmed).
fn token_of(opts: &ClientOptions) -> Result<Option<HeaderValue>, ClientError> {
    let token = match (&opts.token, &opts.token_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "token",
                "give --token (KVS_RAFT_TOKEN) or --token-file (KVS_RAFT_TOKEN_FILE), not both",
            ))
        }
        (Some(t), None) => t.trim().to_owned(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("token-file", format!("read {}: {e}", path.display())))?;
            text.lines().next().unwrap_or("").trim().to_owned()
        }
        (None, None) => return Ok(None),
    };
    let option = if opts.token.is_some() {
        "token"
    } else {
        "token-file"
    };
    if token.is_empty() {
        return Err(invalid(option, "the token is empty"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(option, "a token is printable ASCII without spaces"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| invalid(option, "a token is printable ASCII without spaces"))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

fn tls_of(
    opts: &ClientOptions,
    endpoints: &[Endpoint],
) -> Result<Option<Arc<rustls::ClientConfig>>, ClientError> {
    let identity = match (&opts.cert, &opts.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("key", "--cert needs --key")),
        (None, Some(_)) => return Err(invalid("cert", "--key needs --cert")),
    };
    let https = endpoints.iter().any(|e| e.scheme == "https");
    match &opts.cacert {
        Some(ca) => crate::tls::tool_client_config(ca, identity)
            .map(Some)
            .map_err(|e| {
                let option = match &e {
                    raft_node::transport::tls::TlsError::Read { what, .. }
                    | raft_node::transport::tls::TlsError::Invalid { what, .. }
                        if what.contains("client certificate") =>
                    {
                        "cert"
                    }
                    raft_node::transport::tls::TlsError::Read { what, .. }
                    | raft_node::transport::tls::TlsError::Invalid { what, .. }
                        if what.contains("key") =>
                    {
                        "key"
                    }
                    _ => "cacert",
                };
                invalid(option, e.to_string())
            }),
        None if https => Err(invalid(
            "cacert",
            "an https:// endpoint needs --cacert (KVS_RAFT_CACERT), the site's CA certificate (PEM)",
        )),
        None if identity.is_some() => Err(invalid(
            "cert",
            "a client certificate is only used with https:// endpoints and --cacert",
        )),
        None => Ok(None),
    }
}

impl Client {
    /// Check the options and start the command's deadline; nothing is sent yet.
    pub fn new(opts: ClientOptions) -> Result<Client, ClientError> {
        let raw = if opts.endpoints.trim().is_empty() {
            default_endpoint().to_owned()
        } else {
            opts.endpoints.clone()
        };
        let endpoints =
            endpoint::parse_endpoints(&raw).map_err(|message| invalid("endpoints", message))?;
        let token = token_of(&opts)?;
        let tls = tls_of(&opts, &endpoints)?;
        if opts.timeout == Some(Duration::ZERO) {
            return Err(invalid("timeout", "must be more than 0"));
        }
        let connect = opts
            .timeout
            .map_or(CONNECT_TIMEOUT, |t| t.min(CONNECT_TIMEOUT));
        Ok(Client {
            endpoints,
            http: crate::tls::https_client(tls.as_ref(), connect, Duration::from_secs(30)),
            token,
            timeout: opts.timeout,
            deadline: opts.timeout.map(|t| Instant::now() + t),
        })
    }

    /// The endpoints, in the order they are tried.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The command's deadline (`None`: none).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a token is sent.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `fut` under the deadline; `None` when it passed.
    async fn within<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        within_until(self.deadline, fut).await
    }

    /// How long the attempt at the `i`th of `n` endpoints may take: a read with endpoints left after
    /// this one gets an equal share of what remains of the deadline (a hung node cannot take it all);
    /// anything else the whole deadline.
    fn attempt_until(&self, req: &Request, i: usize, n: usize) -> Option<Instant> {
        let deadline = self.deadline?;
        let left = n.saturating_sub(i);
        if !req.idempotent || left <= 1 {
            return Some(deadline);
        }
        let now = Instant::now();
        let share =
            deadline.saturating_duration_since(now) / u32::try_from(left).unwrap_or(u32::MAX);
        Some(now + share)
    }

    /// The attempt that ran out of time at `until`: its share, or the whole deadline.
    fn expired(&self, until: Option<Instant>) -> (Attempt<'static>, String) {
        if until < self.deadline {
            (
                Attempt::ShareExpired,
                "no answer within its share of --timeout".to_owned(),
            )
        } else {
            (Attempt::TimedOut, "deadline passed".to_owned())
        }
    }

    /// Send `req` to the endpoints in turn (see the module docs) and return the whole answer.
    pub async fn request(&self, req: Request) -> Result<Response, ClientError> {
        self.request_among(&self.endpoints, req).await
    }

    /// [`Client::request`] to `endpoint` only (a node learned from an answer, such as the leader's
    /// client address), with this client's token, TLS and deadline.
    pub async fn request_at(
        &self,
        endpoint: &Endpoint,
        req: Request,
    ) -> Result<Response, ClientError> {
        self.request_among(std::slice::from_ref(endpoint), req)
            .await
    }

    async fn request_among(
        &self,
        endpoints: &[Endpoint],
        req: Request,
    ) -> Result<Response, ClientError> {
        self.exchange(endpoints, &req, |res, endpoint| async move {
            let (parts, body) = res.into_parts();
            match hyper::body::to_bytes(body).await {
                Ok(body) => Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                    endpoint,
                }),
                Err(e) => Err((Attempt::Broken, e.to_string())),
            }
        })
        .await
    }

    /// A GET whose body is returned as a stream (see [`StreamingResponse`]); fails over like
    /// [`Client::request`] until a head arrives.
    pub async fn get_stream(&self, path_and_query: &str) -> Result<StreamingResponse, ClientError> {
        self.exchange(
            &self.endpoints,
            &Request::get(path_and_query),
            |res, endpoint| async move {
                let (parts, body) = res.into_parts();
                Ok(StreamingResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                    endpoint,
                })
            },
        )
        .await
    }

    /// One attempt at `ep`: the head of the answer, with a 503's body read (to learn its code).
    async fn attempt(
        &self,
        ep: &Endpoint,
        req: &Request,
        until: Option<Instant>,
    ) -> Result<hyper::Response<Body>, (Attempt<'static>, String)> {
        let mut builder = hyper::Request::builder()
            .method(req.method.clone())
            .uri(ep.url(&req.path_and_query));
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, token.clone());
        }
        if let Some(ct) = req.content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        let http_req = builder
            .body(Body::from(req.body.clone()))
            // Paths are built with `encode_path`: a bad one is a bug; nothing was sent.
            .map_err(|e| (Attempt::ConnectFailed, format!("bad request: {e}")))?;
        let res = match within_until(until, self.http.request(http_req)).await {
            None => return Err(self.expired(until)),
            Some(Err(e)) if e.is_connect() => return Err((Attempt::ConnectFailed, e.to_string())),
            Some(Err(e)) => return Err((Attempt::Broken, e.to_string())),
            Some(Ok(res)) => res,
        };
        if res.status() != StatusCode::SERVICE_UNAVAILABLE {
            return Ok(res);
        }
        // A 503 body is a small error object: read at most 64 KiB of it.
        let (parts, mut body) = res.into_parts();
        let mut bytes = Vec::new();
        while let Some(Some(Ok(chunk))) = within_until(until, body.data()).await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > 64 * 1024 {
                break;
            }
        }
        Ok(hyper::Response::from_parts(parts, Body::from(bytes)))
    }

    /// The failover loop: each endpoint in turn until [`decide`] accepts an answer, which `finish` turns
    /// into the caller's result (reading the body, or not).
    async fn exchange<T, F, Fut>(
        &self,
        endpoints: &[Endpoint],
        req: &Request,
        finish: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(hyper::Response<Body>, Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T, (Attempt<'static>, String)>>,
    {
        let mut failures = Vec::new();
        // The last 503 that moved on: the answer to report when no endpoint does better.
        let mut unavailable: Option<(hyper::http::response::Parts, Bytes, Endpoint)> = None;
        for (i, ep) in endpoints.iter().enumerate() {
            let until = self.attempt_until(req, i, endpoints.len());
            let failure = match self.attempt(ep, req, until).await {
                Ok(res) if res.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    let (parts, body) = res.into_parts();
                    let bytes = hyper::body::to_bytes(body).await.unwrap_or_default();
                    let code = ApiErrorBody::parse(&bytes).map(|e| e.code);
                    let attempt = Attempt::Answered {
                        status: 503,
                        code: code.as_deref(),
                    };
                    if decide(attempt, req.idempotent) == Decision::TryNext {
                        failures.push(format!("{ep}: 503 {}", code.as_deref().unwrap_or("")));
                        unavailable = Some((parts, bytes, ep.clone()));
                        continue;
                    }
                    let res = hyper::Response::from_parts(parts, Body::from(bytes));
                    self.finish(&finish, res, ep, until).await
                }
                Ok(res) => self.finish(&finish, res, ep, until).await,
                Err(failure) => Err(failure),
            };
            let (attempt, detail) = match failure {
                Ok(done) => return Ok(done),
                Err(f) => f,
            };
            match decide(attempt, req.idempotent) {
                Decision::TryNext => failures.push(format!("{ep}: {detail}")),
                Decision::TimedOut => {
                    return Err(ClientError::Timeout {
                        endpoint: ep.to_string(),
                        timeout: self.timeout.unwrap_or_default(),
                    })
                }
                // `Accept` is only decided for answers, which `finish` handled.
                Decision::OutcomeUnknown | Decision::Accept => {
                    return Err(ClientError::OutcomeUnknown {
                        endpoint: ep.to_string(),
                        detail,
                    })
                }
            }
        }
        match unavailable {
            // Every node that answered said it cannot serve now: report the last one's error.
            Some((parts, bytes, ep)) => {
                let res = hyper::Response::from_parts(parts, Body::from(bytes));
                self.finish(&finish, res, &ep, self.deadline)
                    .await
                    .map_err(|(_, detail)| ClientError::Broken {
                        endpoint: ep.to_string(),
                        detail,
                    })
            }
            None => Err(ClientError::Unreachable { attempts: failures }),
        }
    }

    async fn finish<T, F, Fut>(
        &self,
        finish: &F,
        res: hyper::Response<Body>,
        ep: &Endpoint,
        until: Option<Instant>,
    ) -> Result<T, (Attempt<'static>, String)>
    where
        F: Fn(hyper::Response<Body>, Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T, (Attempt<'static>, String)>>,
    {
        match within_until(until, finish(res, ep.clone())).await {
            Some(result) => result,
            None => Err(self.expired(until)),
        }
    }
}

/// `fut` until `until` (`None`: no limit); `None` when that passed first.
async fn within_until<F: std::future::Future>(until: Option<Instant>, fut: F) -> Option<F::Output> {
    match until {
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// Percent-encode bytes for a URL path segment or query value: everything but RFC 3986's unreserved
/// characters (so a `/` inside a key travels as `%2F`, which the API decodes back into the key).
pub fn encode_path(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Put `bytes` into `map` as `name` when they are UTF-8, else as base64 in `name_b64` (the API's own
/// convention, docs/openapi.yaml).
pub fn put_bytes(map: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => map.insert(name.to_owned(), Value::from(text)),
        Err(_) => map.insert(
            format!("{name}_b64"),
            Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    };
}

/// A query string, built pair by pair; values are percent-encoded. Displays as `""` when empty, else
/// `?a=1&b=2`.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<String>);

impl Query {
    /// Add `name=value` (the value's `Display`, encoded).
    pub fn push(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Query {
        self.0.push(format!(
            "{name}={}",
            encode_path(value.to_string().as_bytes())
        ));
        self
    }

    /// Add `name=value` when `value` is `Some`.
    pub fn opt(&mut self, name: &str, value: Option<impl std::fmt::Display>) -> &mut Query {
        if let Some(v) = value {
            self.push(name, v);
        }
        self
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "?{}", self.0.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_encode_their_values() {
        let mut q = Query::default();
        assert_eq!(q.to_string(), "");
        q.push("prefix", "a b/c")
            .opt("at", Some(5))
            .opt("epoch", None::<u64>);
        assert_eq!(q.to_string(), "?prefix=a%20b%2Fc&at=5");
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path(b"player:42/pos"), "player%3A42%2Fpos");
        assert_eq!(encode_path("é %".as_bytes()), "%C3%A9%20%25");
        assert_eq!(encode_path(b"a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn api_errors_parse_with_their_extra_fields() {
        let e = ApiErrorBody::parse(
            br#"{"error":{"code":"stale_epoch","message":"m","current_epoch":3}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "stale_epoch");
        assert_eq!(e.message, "m");
        assert_eq!(e.extra["current_epoch"], 3);
        assert_eq!(ApiErrorBody::parse(b"not json"), None);
        assert_eq!(ApiErrorBody::parse(br#"{"error":"x"}"#), None);
    }

    #[test]
    fn options_are_checked_before_anything_is_sent() {
        let err = |opts: ClientOptions| match Client::new(opts) {
            Err(ClientError::InvalidOption { option, message }) => format!("{option}: {message}"),
            Err(e) => panic!("not an option error: {e}"),
            Ok(_) => panic!("accepted"),
        };
        let with = |endpoints: &str| ClientOptions {
            endpoints: endpoints.into(),
            ..ClientOptions::default()
        };
        assert!(err(with("ftp://x:1")).starts_with("endpoints:"));
        assert!(err(with("https://x:1")).starts_with("cacert:"));
        assert!(err(ClientOptions {
            token: Some("a".into()),
            token_file: Some("/nonexistent".into()),
            ..with("")
        })
        .contains("not both"));
        assert!(err(ClientOptions {
            token_file: Some("/nonexistent/token".into()),
            ..with("")
        })
        .starts_with("token-file:"));
        assert!(err(ClientOptions {
            token: Some("bad token\n".into()),
            ..with("")
        })
        .starts_with("token:"));
        assert!(err(ClientOptions {
            cert: Some("c.pem".into()),
            ..with("")
        })
        .starts_with("key:"));
        assert!(err(ClientOptions {
            cacert: Some("/nonexistent/ca.pem".into()),
            ..with("")
        })
        .starts_with("cacert:"));
        assert!(err(ClientOptions {
            timeout: Some(Duration::ZERO),
            ..with("")
        })
        .starts_with("timeout:"));
        let ok = Client::new(with("")).expect("defaults");
        assert_eq!(ok.endpoints()[0].base(), default_endpoint());
        assert_eq!(default_endpoint(), "http://127.0.0.1:7379");
    }
}
