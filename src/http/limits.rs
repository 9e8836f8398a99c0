//! Request limits of the client API. Everything a client can make the server hold is bounded here:
//! bodies, keys, values, batch sizes, scan pages, connections, in-flight proposals, and time.

use std::time::Duration;

use super::error::ApiError;

/// The defaults are the production values `kvs-raft serve` uses unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (`Content-Length`), refused with 413 before any byte is read.
    pub max_body: u64,
    /// Largest key (and entity / checkpoint name), bytes (SPEC §2: 4096).
    pub max_key: usize,
    /// Largest value (and checkpoint data), bytes (SPEC §2: 1 MiB).
    pub max_value: usize,
    /// Most ops in one `POST /v1/batch` or one txn branch.
    pub max_ops: usize,
    /// Default and largest page of a scan / entity read (larger `limit`s are clamped).
    pub default_scan_limit: usize,
    pub max_scan_limit: usize,
    /// Key and value bytes of one scan / entity page at most: the page ends (with `more`) after the item
    /// that reaches it, so a page holds at least one item and a response stays near this size.
    pub max_scan_bytes: usize,
    /// Every backend call of a request runs under this deadline; a proposal past it answers 504.
    pub request_timeout: Duration,
    /// Connect + answer deadline when forwarding to the leader (also capped by the request's deadline).
    pub forward_timeout: Duration,
    /// A connection must send its request head within this (slowloris guard).
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this after its head, or the request is answered 408
    /// and its connection closed (a slowly sent body does not pin its buffer).
    pub body_read_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Proposals in flight from this node's HTTP layer; beyond it, 429 `overloaded`.
    pub max_inflight_proposals: usize,
    /// `Retry-After` seconds on 429 and on connection-limit 503s.
    pub retry_after_secs: u64,
    /// On shutdown, first a notice of at most this long: the listener still accepts and every answer
    /// carries `Connection: close`, so clients' keep-alive connections end after an answer (the client
    /// knows its request was served) instead of being closed idle just as a request is sent on them (the
    /// client cannot know). It ends early once no connection is open.
    pub close_notice: Duration,
    /// On shutdown, how long in-flight requests may take before their connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4 << 20,
            max_key: 4096,
            max_value: 1 << 20,
            max_ops: 10_000,
            default_scan_limit: 1_000,
            max_scan_limit: 10_000,
            max_scan_bytes: 4 << 20,
            request_timeout: Duration::from_secs(5),
            forward_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_inflight_proposals: 20_000,
            retry_after_secs: 1,
            // Leadership hand-off (≤ 2 s, a few ms when the group is healthy) + notice (0.5 s) +
            // drain (2 s) + flush stay within the 5 s a supervisor usually waits before SIGKILL.
            close_notice: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// Body limit of `PUT /v1/kv/{key}`: the body is the value.
    pub fn max_put_body(&self) -> u64 {
        self.max_body
            .min(u64::try_from(self.max_value).unwrap_or(u64::MAX))
    }

    pub fn check_key(&self, what: &str, key: &[u8]) -> Result<(), ApiError> {
        if key.is_empty() {
            return Err(ApiError::invalid_key(format!("{what} must not be empty")));
        }
        if key.len() > self.max_key {
            return Err(ApiError::too_large(
                format!(
                    "{what} is {} bytes, the limit is {}",
                    key.len(),
                    self.max_key
                ),
                self.max_key,
            ));
        }
        Ok(())
    }

    pub fn check_value(&self, what: &str, value: &[u8]) -> Result<(), ApiError> {
        if value.len() > self.max_value {
            return Err(ApiError::too_large(
                format!(
                    "{what} is {} bytes, the limit is {}",
                    value.len(),
                    self.max_value
                ),
                self.max_value,
            ));
        }
        Ok(())
    }

    pub fn check_ops(&self, n: usize) -> Result<(), ApiError> {
        if n > self.max_ops {
            return Err(ApiError::too_large(
                format!("{n} ops, the limit is {}", self.max_ops),
                self.max_ops,
            ));
        }
        Ok(())
    }

    pub fn scan_limit(&self, asked: Option<usize>) -> usize {
        asked
            .unwrap_or(self.default_scan_limit)
            .min(self.max_scan_limit)
    }
}
