//! The one place that chooses HTTP status codes. A success is a 200 ([`ok`]); backend errors, engine
//! errors, per-op errors and warp rejections all become an [`ApiError`] — a stable [`Code`], which
//! decides the status, and a JSON body `{"error":{"code","message",...}}`. The table (also in
//! `docs/openapi.yaml`, which a test keeps equal to [`Code::ALL`]):
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 400 | `bad_request` | malformed query/JSON (also truncated or nested deeper than 128), non-numeric params, bad base64, unknown fields or params |
//! | 400 | `invalid_key` | empty key/entity/name, key not UTF-8 in the path, entity containing `/` |
//! | 400 | `invalid_op` | an op the engine refuses as malformed (nested txn, empty checkpoint name), invalid admin request |
//! | 404 | `not_found` | no such route |
//! | 404 | `key_not_found` / `checkpoint_not_found` | absent key / entity never crossed that checkpoint (at `at`) |
//! | 405 | `method_not_allowed` | known path, wrong method |
//! | 409 | `stale_epoch` | epoch fence failed; `current_epoch` |
//! | 409 | `condition_failed` | `if_version` / `if_absent` failed; `current_version` |
//! | 409 | `not_an_integer`, `overflow` | incr on a non-integer value / past i64 (conflicts with the stored value, hence 409) |
//! | 410 | `version_gone` | `at` below the retention floor; `at`, `floor` |
//! | 408 | `body_timeout` | the body did not arrive within `body_read_timeout`; the connection is closed |
//! | 411 | `length_required` | a body route without `Content-Length` (chunked bodies are refused) |
//! | 413 | `too_large` | body, key, value, op count over the limit, or a request that encodes to more than one Raft entry may carry; `limit` when known |
//! | 415 | `unsupported_media_type` | a JSON route with a `Content-Type` that is not JSON (absent is accepted) |
//! | 429 | `overloaded` | too many proposals in flight (here or in the node); `Retry-After` |
//! | 500 | `internal`, `corruption` | a bug or corrupted data; never caused by input |
//! | 503 | `not_leader` | this node cannot serve it and the request was already forwarded once (or no leader is known); `leader` |
//! | 503 | `no_quorum`, `leader_unreachable`, `shutting_down`, `storage_unavailable`, `too_many_connections` | retry later / elsewhere |
//! | 503 | `not_ready` | `/readyz` only: not ready (the readiness fields beside the error object) |
//! | 504 | `unknown_outcome` | a write's deadline passed: it may or may not have been applied |
//! | 504 | `timeout` | a read's deadline passed (nothing changed) |
//! | 507 | `insufficient_storage` | the leader's disk is full or below its free-space reserve; the write was not applied |
//! | 401 | `unauthorized` | auth is on and the request has no bearer token, or one the token file does not hold; `WWW-Authenticate: Bearer` |
//! | 403 | `forbidden` | the token's role is too small for the route; `role`, `required_role` |
//! | 400 | `invalid_member` | membership: a bad node id (0, or above 2^63−1) or address (not `host:port`, over 255 bytes) |
//! | 404 | `member_not_found` | membership: remove or promote a node that is not a member |
//! | 409 | `member_exists`, `member_removed` | membership: the id is already a member / was removed (ids are never reused) |
//! | 409 | `last_voter` | membership: removing the only voter |
//! | 409 | `quorum_at_risk` | membership: fewer voters would be healthy than the new configuration's quorum |
//! | 409 | `learner_first` | membership: a new node is added as a voter; it joins as a learner, then is promoted |
//! | 409 | `learner_not_caught_up` | membership: the learner to promote has not caught up within the request's deadline |
//! | 409 | `change_in_progress` | membership: another membership change is still being applied |
//! | 409 | `sync_not_configured` | `/v1/sync/pause`, `/v1/sync/resume` on a node without federation (`--pd`) |

use std::convert::Infallible;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Rejection;

use super::auth::Denied;
use super::backend::{BackendError, MemberRefusal};

/// Every error code the API answers, each with its one status: the table above, as code. Nothing else in
/// the HTTP layer names a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    BadRequest,
    InvalidKey,
    InvalidOp,
    NotFound,
    KeyNotFound,
    CheckpointNotFound,
    MethodNotAllowed,
    StaleEpoch,
    ConditionFailed,
    NotAnInteger,
    Overflow,
    VersionGone,
    BodyTimeout,
    LengthRequired,
    TooLarge,
    UnsupportedMediaType,
    Overloaded,
    Internal,
    Corruption,
    NotLeader,
    NoQuorum,
    LeaderUnreachable,
    ShuttingDown,
    StorageUnavailable,
    TooManyConnections,
    NotReady,
    UnknownOutcome,
    Timeout,
    InsufficientStorage,
    // Client authentication (`auth.rs`).
    Unauthorized,
    Forbidden,
    InvalidMember,
    MemberNotFound,
    MemberExists,
    MemberRemoved,
    LastVoter,
    QuorumAtRisk,
    LearnerFirst,
    LearnerNotCaughtUp,
    ChangeInProgress,
    SyncNotConfigured,
}

impl Code {
    /// Every code, for the documentation check (`docs/openapi.yaml` lists exactly these, by status).
    pub const ALL: [Code; 41] = [
        Code::BadRequest,
        Code::InvalidKey,
        Code::InvalidOp,
        Code::NotFound,
        Code::KeyNotFound,
        Code::CheckpointNotFound,
        Code::MethodNotAllowed,
        Code::StaleEpoch,
        Code::ConditionFailed,
        Code::NotAnInteger,
        Code::Overflow,
        Code::VersionGone,
        Code::BodyTimeout,
        Code::LengthRequired,
        Code::TooLarge,
        Code::UnsupportedMediaType,
        Code::Overloaded,
        Code::Internal,
        Code::Corruption,
        Code::NotLeader,
        Code::NoQuorum,
        Code::LeaderUnreachable,
        Code::ShuttingDown,
        Code::StorageUnavailable,
        Code::TooManyConnections,
        Code::NotReady,
        Code::UnknownOutcome,
        Code::Timeout,
        Code::InsufficientStorage,
        Code::Unauthorized,
        Code::Forbidden,
        Code::InvalidMember,
        Code::MemberNotFound,
        Code::MemberExists,
        Code::MemberRemoved,
        Code::LastVoter,
        Code::QuorumAtRisk,
        Code::LearnerFirst,
        Code::LearnerNotCaughtUp,
        Code::ChangeInProgress,
        Code::SyncNotConfigured,
    ];

    /// The stable name clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::InvalidKey => "invalid_key",
            Code::InvalidOp => "invalid_op",
            Code::NotFound => "not_found",
            Code::KeyNotFound => "key_not_found",
            Code::CheckpointNotFound => "checkpoint_not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::StaleEpoch => "stale_epoch",
            Code::ConditionFailed => "condition_failed",
            Code::NotAnInteger => "not_an_integer",
            Code::Overflow => "overflow",
            Code::VersionGone => "version_gone",
            Code::BodyTimeout => "body_timeout",
            Code::LengthRequired => "length_required",
            Code::TooLarge => "too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::Overloaded => "overloaded",
            Code::Internal => "internal",
            Code::Corruption => "corruption",
            Code::NotLeader => "not_leader",
            Code::NoQuorum => "no_quorum",
            Code::LeaderUnreachable => "leader_unreachable",
            Code::ShuttingDown => "shutting_down",
            Code::StorageUnavailable => "storage_unavailable",
            Code::TooManyConnections => "too_many_connections",
            Code::NotReady => "not_ready",
            Code::UnknownOutcome => "unknown_outcome",
            Code::Timeout => "timeout",
            Code::InsufficientStorage => "insufficient_storage",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::InvalidMember => "invalid_member",
            Code::MemberNotFound => "member_not_found",
            Code::MemberExists => "member_exists",
            Code::MemberRemoved => "member_removed",
            Code::LastVoter => "last_voter",
            Code::QuorumAtRisk => "quorum_at_risk",
            Code::LearnerFirst => "learner_first",
            Code::LearnerNotCaughtUp => "learner_not_caught_up",
            Code::ChangeInProgress => "change_in_progress",
            Code::SyncNotConfigured => "sync_not_configured",
        }
    }

    /// The status every answer with this code has.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest | Code::InvalidKey | Code::InvalidOp => StatusCode::BAD_REQUEST,
            Code::NotFound | Code::KeyNotFound | Code::CheckpointNotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::StaleEpoch | Code::ConditionFailed | Code::NotAnInteger | Code::Overflow => {
                StatusCode::CONFLICT
            }
            Code::VersionGone => StatusCode::GONE,
            Code::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal | Code::Corruption => StatusCode::INTERNAL_SERVER_ERROR,
            Code::NotLeader
            | Code::NoQuorum
            | Code::LeaderUnreachable
            | Code::ShuttingDown
            | Code::StorageUnavailable
            | Code::TooManyConnections
            | Code::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Code::UnknownOutcome | Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Code::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::InvalidMember => StatusCode::BAD_REQUEST,
            Code::MemberNotFound => StatusCode::NOT_FOUND,
            Code::MemberExists
            | Code::MemberRemoved
            | Code::LastVoter
            | Code::QuorumAtRisk
            | Code::LearnerFirst
            | Code::LearnerNotCaughtUp
            | Code::ChangeInProgress
            | Code::SyncNotConfigured => StatusCode::CONFLICT,
        }
    }
}

impl Code {
    /// The code of a refused membership change.
    pub fn member_refusal(refusal: MemberRefusal) -> Code {
        match refusal {
            MemberRefusal::InvalidMember => Code::InvalidMember,
            MemberRefusal::NotFound => Code::MemberNotFound,
            MemberRefusal::Exists => Code::MemberExists,
            MemberRefusal::IdRemoved => Code::MemberRemoved,
            MemberRefusal::LastVoter => Code::LastVoter,
            MemberRefusal::QuorumAtRisk => Code::QuorumAtRisk,
            MemberRefusal::LearnerFirst => Code::LearnerFirst,
            MemberRefusal::NotCaughtUp => Code::LearnerNotCaughtUp,
            MemberRefusal::ChangeInProgress => Code::ChangeInProgress,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Extra fields of the error object (`current_epoch`, `leader`, ...).
    pub extra: Map<String, Value>,
    /// Fields of the response body beside `"error"` (`/readyz` answers its readiness fields too).
    pub beside: Map<String, Value>,
    pub retry_after: Option<u64>,
    /// A `not_leader` that names the leader: the request is forwarded there unless it was forwarded already.
    pub forward_to: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401/403 (RFC 6750).
    pub challenge: Option<Challenge>,
}

/// The `WWW-Authenticate: Bearer` challenge of an auth refusal (one byte, so `ApiError` stays small).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No token was given.
    Missing,
    /// The token is malformed or unknown.
    InvalidToken,
    /// The token's role is too small.
    InsufficientScope,
}

impl Challenge {
    pub fn header(self) -> &'static str {
        match self {
            Challenge::Missing => "Bearer realm=\"kvs-raft\"",
            Challenge::InvalidToken => "Bearer realm=\"kvs-raft\", error=\"invalid_token\"",
            Challenge::InsufficientScope => {
                "Bearer realm=\"kvs-raft\", error=\"insufficient_scope\""
            }
        }
    }
}

/// What kind of request failed: decides how an unknown outcome and a passed deadline read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            extra: Map::new(),
            beside: Map::new(),
            retry_after: None,
            forward_to: None,
            challenge: None,
        }
    }

    /// The status of this answer (decided by its code).
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn with(mut self, field: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(field.to_owned(), value.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    pub fn invalid_key(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidKey, message)
    }

    pub fn too_large(message: impl Into<String>, limit: usize) -> ApiError {
        ApiError::new(Code::TooLarge, message).with("limit", limit)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::UnsupportedMediaType, message)
    }

    pub fn overloaded(message: impl Into<String>, retry_after_secs: u64) -> ApiError {
        let mut e = ApiError::new(Code::Overloaded, message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn not_leader(leader: Option<String>) -> ApiError {
        let message = match &leader {
            Some(addr) => format!("this node is not the leader; the leader is at {addr}"),
            None => "this node is not the leader and no leader is known".to_owned(),
        };
        ApiError::new(Code::NotLeader, message).with("leader", leader)
    }

    pub fn leader_unreachable(leader: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            Code::LeaderUnreachable,
            format!("forwarding to the leader at {leader} failed: {why}"),
        )
        .with("leader", leader)
    }

    /// The deadline passed: for a write the outcome is unknown, for a read nothing happened.
    pub fn deadline(kind: Kind) -> ApiError {
        match kind {
            Kind::Write => ApiError::new(
                Code::UnknownOutcome,
                "the deadline passed before the write was acknowledged; it may or may not have been applied",
            ),
            Kind::Read => ApiError::new(
                Code::Timeout,
                "the deadline passed before the read could be served",
            ),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, message)
    }

    pub fn from_backend(e: BackendError, kind: Kind, retry_after_secs: u64) -> ApiError {
        match e {
            BackendError::NotLeader { leader_client_addr } => {
                let mut err = ApiError::not_leader(leader_client_addr.clone());
                err.forward_to = leader_client_addr;
                err
            }
            BackendError::NoQuorum => ApiError::new(
                Code::NoQuorum,
                "no quorum: the group cannot commit or confirm leadership right now",
            ),
            BackendError::Overloaded => {
                ApiError::overloaded("the node's proposal queue is full", retry_after_secs)
            }
            BackendError::Unknown => ApiError::deadline(kind),
            BackendError::ShuttingDown => {
                ApiError::new(Code::ShuttingDown, "the node is shutting down")
            }
            BackendError::Invalid(m) => ApiError::new(Code::InvalidOp, m),
            BackendError::TooLarge { message, limit } => ApiError::too_large(message, limit),
            BackendError::NoSpace(m) => ApiError::new(Code::InsufficientStorage, m),
            BackendError::Engine(e) => ApiError::from_engine(e),
            BackendError::Member { refusal, message } => {
                ApiError::new(Code::member_refusal(refusal), message)
            }
        }
    }

    pub fn from_engine(e: engine::Error) -> ApiError {
        match e {
            engine::Error::VersionGone { at, floor } => ApiError::new(
                Code::VersionGone,
                format!(
                    "read at {at} is older than the retention floor {floor}; read at a newer ts"
                ),
            )
            .with("at", at)
            .with("floor", floor),
            engine::Error::DiskFull(m) => {
                tracing::error!(error = %m, "storage full");
                ApiError::new(Code::InsufficientStorage, format!("storage full: {m}"))
            }
            engine::Error::Storage(_) | engine::Error::Io { .. } => {
                tracing::error!(error = %e, "storage error");
                ApiError::new(Code::StorageUnavailable, e.to_string())
            }
            engine::Error::Corruption { .. } => {
                tracing::error!(error = %e, "corruption");
                ApiError::new(Code::Corruption, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "engine error");
                ApiError::internal(other.to_string())
            }
        }
    }

    /// A per-op failure (part of the replicated outcome, not a failure of the entry).
    pub fn from_op(e: &engine::OpError) -> ApiError {
        match e {
            engine::OpError::StaleEpoch { current } => {
                ApiError::new(Code::StaleEpoch, e.to_string()).with("current_epoch", *current)
            }
            engine::OpError::ConditionFailed { current_version } => {
                ApiError::new(Code::ConditionFailed, e.to_string())
                    .with("current_version", *current_version)
            }
            engine::OpError::NotAnInteger => ApiError::new(Code::NotAnInteger, e.to_string()),
            engine::OpError::Overflow => ApiError::new(Code::Overflow, e.to_string()),
            engine::OpError::InvalidKey(_) => ApiError::invalid_key(e.to_string()),
            engine::OpError::Invalid(_) => ApiError::new(Code::InvalidOp, e.to_string()),
        }
    }

    /// The error object alone (`{"code","message",...}`), as embedded in batch results.
    pub fn body_object(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), Value::from(self.code.as_str()));
        obj.insert("message".into(), Value::from(self.message.clone()));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }

    /// Fields to answer beside `"error"` in the body (a DTO serialized to an object; anything else is
    /// ignored).
    pub fn beside(mut self, fields: Value) -> ApiError {
        if let Value::Object(map) = fields {
            self.beside = map;
        }
        self
    }

    fn body(&self) -> Value {
        let mut body = self.beside.clone();
        body.insert("error".into(), self.body_object());
        Value::Object(body)
    }

    pub fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::debug!(code = self.code.as_str(), message = %self.message, "request failed");
        }
        let mut res = json_response(self.status(), &self.body());
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge.header()),
            );
        }
        if self.code == Code::BodyTimeout {
            // The rest of the body may still be on its way: the connection cannot be reused.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    /// The whole HTTP/1.1 response, bytes on the wire, closing the connection: for answers written
    /// before hyper serves the connection (the connection limit).
    pub fn http1_closing(&self) -> Vec<u8> {
        let status = self.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_else(|_| b"{}".to_vec());
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        if let Some(secs) = self.retry_after {
            head.push_str(&format!("retry-after: {secs}\r\n"));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }
}

/// A JSON response with `status`.
fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(bytes.into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A success: 200 with `body` as JSON (the only success status of the API).
pub fn ok<T: Serialize>(body: &T) -> Response {
    match serde_json::to_value(body) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => ApiError::internal(format!("response encoding failed: {e}")).into_response(),
    }
}

/// The request body did not arrive within the body read timeout (the limit it exceeded).
#[derive(Debug)]
pub struct BodyTimeout(pub std::time::Duration);

impl warp::reject::Reject for BodyTimeout {}

/// The request body could not be read (the connection failed or ended early).
#[derive(Debug)]
pub struct BodyUnreadable;

impl warp::reject::Reject for BodyUnreadable {}

/// The request may not use its route ([`super::auth`]); checked before the body is read.
#[derive(Debug)]
pub struct AuthDenied(pub Denied);

impl warp::reject::Reject for AuthDenied {}

impl ApiError {
    /// 401 for a missing or unknown token, 403 for a role too small. Never names the token.
    pub fn from_denied(denied: &Denied) -> ApiError {
        let mut e = match denied {
            Denied::Missing => ApiError::new(
                Code::Unauthorized,
                "this route needs a bearer token: send `Authorization: Bearer <token>`",
            ),
            Denied::Invalid => ApiError::new(
                Code::Unauthorized,
                "the bearer token is malformed or not known to this node",
            ),
            Denied::Forbidden { name, role, needed } => ApiError::new(
                Code::Forbidden,
                format!("the token {name:?} has the role {role}; this route needs {needed}"),
            )
            .with("role", role.as_str())
            .with("required_role", needed.as_str()),
        };
        e.challenge = Some(match denied {
            Denied::Missing => Challenge::Missing,
            Denied::Invalid => Challenge::InvalidToken,
            Denied::Forbidden { .. } => Challenge::InsufficientScope,
        });
        e
    }
}

/// The one rejection handler: whatever warp refused becomes the JSON error shape. Only warp's own
/// filters reject (handlers answer their errors directly), so everything here is the client's input.
/// Checked in warp's own preference order: the most specific status first, 405 and 404 last.
pub async fn handle_rejection(r: Rejection) -> Result<Response, Infallible> {
    use warp::reject::{
        InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader,
        PayloadTooLarge, UnsupportedMediaType,
    };
    let err = if let Some(denied) = r.find::<AuthDenied>() {
        ApiError::from_denied(&denied.0)
    } else if let Some(t) = r.find::<BodyTimeout>() {
        ApiError::new(
            Code::BodyTimeout,
            format!("the request body did not arrive within {:?}", t.0),
        )
    } else if r.find::<BodyUnreadable>().is_some() {
        ApiError::bad_request("the request body could not be read")
    } else if r.find::<UnsupportedMediaType>().is_some() {
        ApiError::unsupported_media_type("unsupported content type")
    } else if r.find::<PayloadTooLarge>().is_some() {
        ApiError::new(Code::TooLarge, "the request body is larger than the limit")
    } else if r.find::<LengthRequired>().is_some() {
        ApiError::new(
            Code::LengthRequired,
            "this route needs a Content-Length header (chunked bodies are not accepted)",
        )
    } else if r.find::<InvalidQuery>().is_some() {
        ApiError::bad_request("invalid query string")
    } else if let Some(h) = r.find::<MissingHeader>() {
        ApiError::bad_request(format!("missing header {}", h.name()))
    } else if let Some(h) = r.find::<InvalidHeader>() {
        ApiError::bad_request(format!("invalid header {}", h.name()))
    } else if r.find::<MethodNotAllowed>().is_some() {
        ApiError::new(
            Code::MethodNotAllowed,
            "this path does not take that method",
        )
    } else if r.is_not_found() {
        ApiError::new(Code::NotFound, "no such route")
    } else {
        // Anything else warp refuses is about the request it was given (a body that ended early, ...).
        ApiError::bad_request(format!("request refused: {r:?}"))
    };
    Ok(err.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(e: &ApiError) -> (u16, &'static str) {
        (e.status().as_u16(), e.code.as_str())
    }

    #[test]
    fn engine_errors_map_to_stable_codes() {
        let gone = ApiError::from_engine(engine::Error::VersionGone { at: 1, floor: 2 });
        assert_eq!(pair(&gone), (410, "version_gone"));
        assert_eq!(gone.extra["floor"], 2);
        let full = ApiError::from_engine(engine::Error::DiskFull(
            "IO error: No space left on device".into(),
        ));
        assert_eq!(pair(&full), (507, "insufficient_storage"));
        // A message is never sniffed: only the typed variant means a full disk.
        let other = ApiError::from_engine(engine::Error::Storage(
            "IO error: No space left on device".into(),
        ));
        assert_eq!(pair(&other), (503, "storage_unavailable"));
        let io = ApiError::from_engine(engine::Error::Storage("IO error: EIO".into()));
        assert_eq!(pair(&io), (503, "storage_unavailable"));
        let corrupt = ApiError::from_engine(engine::Error::Corruption {
            at: "k".into(),
            detail: "d".into(),
        });
        assert_eq!(pair(&corrupt), (500, "corruption"));
    }

    #[test]
    fn op_errors_map_to_stable_codes() {
        use engine::OpError as E;
        let e = ApiError::from_op(&E::StaleEpoch { current: 3 });
        assert_eq!(
            (pair(&e), e.extra["current_epoch"].clone()),
            ((409, "stale_epoch"), 3.into())
        );
        let e = ApiError::from_op(&E::ConditionFailed { current_version: 9 });
        assert_eq!(
            (pair(&e), e.extra["current_version"].clone()),
            ((409, "condition_failed"), 9.into())
        );
        assert_eq!(
            pair(&ApiError::from_op(&E::NotAnInteger)),
            (409, "not_an_integer")
        );
        assert_eq!(pair(&ApiError::from_op(&E::Overflow)), (409, "overflow"));
        assert_eq!(
            pair(&ApiError::from_op(&E::InvalidKey("empty key"))),
            (400, "invalid_key")
        );
        assert_eq!(
            pair(&ApiError::from_op(&E::Invalid("x"))),
            (400, "invalid_op")
        );
    }

    #[test]
    fn backend_errors_map_by_request_kind() {
        let w = |e| pair(&ApiError::from_backend(e, Kind::Write, 1)).1;
        let r = |e| pair(&ApiError::from_backend(e, Kind::Read, 1)).1;
        assert_eq!(w(BackendError::Unknown), "unknown_outcome");
        assert_eq!(r(BackendError::Unknown), "timeout");
        assert_eq!(w(BackendError::NoQuorum), "no_quorum");
        assert_eq!(w(BackendError::ShuttingDown), "shutting_down");
        assert_eq!(w(BackendError::Invalid("x".into())), "invalid_op");
        let full = ApiError::from_backend(BackendError::NoSpace("full".into()), Kind::Write, 1);
        assert_eq!(pair(&full), (507, "insufficient_storage"));
        let o = ApiError::from_backend(BackendError::Overloaded, Kind::Write, 2);
        assert_eq!((pair(&o), o.retry_after), ((429, "overloaded"), Some(2)));
        let nl = ApiError::from_backend(
            BackendError::NotLeader {
                leader_client_addr: Some("n1:7379".into()),
            },
            Kind::Write,
            1,
        );
        assert_eq!(pair(&nl), (503, "not_leader"));
        assert_eq!(nl.forward_to.as_deref(), Some("n1:7379"));
    }

    #[test]
    fn membership_refusals_are_400_404_or_409_with_their_own_codes() {
        use MemberRefusal as R;
        let code = |refusal| {
            pair(&ApiError::from_backend(
                BackendError::Member {
                    refusal,
                    message: "m".into(),
                },
                Kind::Write,
                1,
            ))
        };
        assert_eq!(code(R::InvalidMember), (400, "invalid_member"));
        assert_eq!(code(R::NotFound), (404, "member_not_found"));
        assert_eq!(code(R::Exists), (409, "member_exists"));
        assert_eq!(code(R::IdRemoved), (409, "member_removed"));
        assert_eq!(code(R::LastVoter), (409, "last_voter"));
        assert_eq!(code(R::QuorumAtRisk), (409, "quorum_at_risk"));
        assert_eq!(code(R::LearnerFirst), (409, "learner_first"));
        assert_eq!(code(R::NotCaughtUp), (409, "learner_not_caught_up"));
        assert_eq!(code(R::ChangeInProgress), (409, "change_in_progress"));
    }
}
