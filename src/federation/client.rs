//! The client layer over tikv-client's transactional API: one connection per worker life, every call
//! under the caller's deadline (CONVENTIONS 17: tikv-client's connect and TSO stream have none of their
//! own), and every failure sorted into what the worker can do about it (CONVENTIONS 15).

use std::path::PathBuf;
use std::time::Duration;

use engine::prefix_end;
use tikv_client::{CheckLevel, Config, TransactionClient, TransactionOptions};
use tokio::time::Instant;

use super::layout::{self, Mutation};

/// Where the central store is and how to reach it.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// PD endpoints, `host:port`.
    pub pd: Vec<String>,
    /// CA, certificate and key files for mutual TLS towards PD and TiKV.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// tikv-client's own per-RPC timeout (KV RPCs and PD unary calls honour it); the batch deadline
    /// bounds everything else.
    pub rpc_timeout: Duration,
}

/// What a failed call means for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// A stale cache or a transient refusal that a fresh attempt may pass: retry at once (once).
    #[error("retry now: {0}")]
    RetryNow(String),
    /// Unreachable, slow, busy or past the deadline: wait (backoff) before the next attempt.
    #[error("back off: {0}")]
    BackOff(String),
    /// The commit may or may not have happened (tikv-client 0.4 reports a lost commit reply as a plain
    /// gRPC error): read the central cursor before retrying.
    #[error("undetermined: {0}")]
    Undetermined(String),
    /// The central cursor is not where this batch starts: another worker (a newer leader) synced, or
    /// this worker's previous, undetermined commit landed. The batch wrote nothing.
    #[error(
        "cursor check failed: the batch starts at {expected}, the central cursor is {central}"
    )]
    Fenced { expected: u64, central: u64 },
    /// The central store answered something this layer cannot accept (a corrupt cursor): an operator
    /// must look; retried only slowly.
    #[error("rejected: {0}")]
    Rejected(String),
}

fn classify(e: &tikv_client::Error) -> SyncError {
    use tikv_client::Error as E;
    match e {
        E::RegionError(_) | E::EntryNotFoundInRegionCache | E::LeaderNotFound { .. } => {
            SyncError::RetryNow(e.to_string())
        }
        E::UndeterminedError(_) => SyncError::Undetermined(e.to_string()),
        E::InvalidTransactionType
        | E::UnsupportedMode
        | E::Unimplemented
        | E::KeyspaceNotFound(_)
        | E::InvalidSemver(_)
        | E::Url(_) => SyncError::Rejected(e.to_string()),
        _ => SyncError::BackOff(e.to_string()),
    }
}

/// Run `fut` until `deadline`; past it, a back-off error.
async fn within<T>(
    deadline: Instant,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tikv_client::Error>>,
) -> Result<T, SyncError> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(SyncError::BackOff(format!("{what}: deadline exceeded"))),
    }
}

fn options() -> TransactionOptions {
    // A transaction dropped while active (a failed read, a deadline) must not panic (tikv-client's
    // default drop check does); the worker rolls back where it can.
    TransactionOptions::new_optimistic().drop_check(CheckLevel::Warn)
}

/// One connection to the central store.
pub struct CentralClient {
    inner: TransactionClient,
}

impl CentralClient {
    pub async fn connect(cfg: &CentralConfig, deadline: Instant) -> Result<Self, SyncError> {
        let mut config = Config::default().with_timeout(cfg.rpc_timeout);
        if let Some((ca, cert, key)) = &cfg.tls {
            config = config.with_security(ca.clone(), cert.clone(), key.clone());
        }
        let inner = within(
            deadline,
            "connect",
            TransactionClient::new_with_config(cfg.pd.clone(), config),
        )
        .await?;
        Ok(CentralClient { inner })
    }

    /// The site's central cursor, read in a fresh snapshot (0 if the site never synced).
    pub async fn read_cursor(&self, site: &str, deadline: Instant) -> Result<u64, SyncError> {
        let ts = within(deadline, "timestamp", self.inner.current_timestamp()).await?;
        let mut snap = self.inner.snapshot(ts, options().read_only());
        let raw = within(deadline, "read cursor", snap.get(layout::cursor_key(site))).await?;
        decode_cursor(raw)
    }

    /// Scan keys under `prefix` in a fresh snapshot (for the bloom rebuild and lookups).
    pub async fn scan_prefix(
        &self,
        prefix: Vec<u8>,
        limit: u32,
        deadline: Instant,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, SyncError> {
        let ts = within(deadline, "timestamp", self.inner.current_timestamp()).await?;
        let mut snap = self.inner.snapshot(ts, options().read_only());
        let range: tikv_client::BoundRange = match prefix_end(&prefix) {
            Some(end) => (prefix..end).into(),
            None => (prefix..).into(),
        };
        let pairs = within(deadline, "scan", snap.scan(range, limit)).await?;
        Ok(pairs.map(|kv| (Vec::<u8>::from(kv.0), kv.1)).collect())
    }

    /// Keys in `[start, end)` in a fresh snapshot, at most `limit`.
    pub async fn scan_range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: u32,
        deadline: Instant,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, SyncError> {
        let ts = within(deadline, "timestamp", self.inner.current_timestamp()).await?;
        let mut snap = self.inner.snapshot(ts, options().read_only());
        let pairs = within(deadline, "scan", snap.scan(start..end, limit)).await?;
        Ok(pairs.map(|kv| (Vec::<u8>::from(kv.0), kv.1)).collect())
    }

    /// Point read in a fresh snapshot.
    pub async fn get(&self, key: Vec<u8>, deadline: Instant) -> Result<Option<Vec<u8>>, SyncError> {
        let ts = within(deadline, "timestamp", self.inner.current_timestamp()).await?;
        let mut snap = self.inner.snapshot(ts, options().read_only());
        within(deadline, "get", snap.get(key)).await
    }

    /// One batch as ONE transaction: check that the central cursor is `from`, write `mutations`, and
    /// advance the cursor to `to`. Percolator makes the read-then-write of the cursor a compare-and-set:
    /// a concurrent writer of the cursor fails this commit with a write conflict.
    pub async fn commit_batch(
        &self,
        site: &str,
        from: u64,
        to: u64,
        mutations: &[Mutation],
        deadline: Instant,
    ) -> Result<(), SyncError> {
        let mut txn = within(deadline, "begin", self.inner.begin_with_options(options())).await?;
        let cursor_key = layout::cursor_key(site);
        let staged = async {
            let raw = within(deadline, "read cursor", txn.get(cursor_key.clone())).await?;
            let central = decode_cursor(raw)?;
            if central != from {
                return Err(SyncError::Fenced {
                    expected: from,
                    central,
                });
            }
            for m in mutations {
                // Buffered in the transaction; no I/O until commit.
                match m {
                    Mutation::Put(k, v) => {
                        within(deadline, "put", txn.put(k.clone(), v.clone())).await?
                    }
                    Mutation::Delete(k) => {
                        within(deadline, "delete", txn.delete(k.clone())).await?
                    }
                }
            }
            within(
                deadline,
                "put cursor",
                txn.put(cursor_key.clone(), to.to_be_bytes().to_vec()),
            )
            .await
        }
        .await;
        if let Err(e) = staged {
            // Nothing was prewritten; a failed rollback only leaves a transaction the drop check warns
            // about.
            let _ = tokio::time::timeout_at(deadline, txn.rollback()).await;
            return Err(e);
        }
        commit(txn, deadline).await
    }

    /// Delete `keys` in one transaction. For reclaiming an old epoch: its keys are dead centrally
    /// (readers read the current epoch only, and the site never writes an old epoch again), so there
    /// is no cursor check, and a replay after an undetermined commit deletes nothing new.
    pub async fn delete_keys(&self, keys: &[Vec<u8>], deadline: Instant) -> Result<(), SyncError> {
        let mut txn = within(deadline, "begin", self.inner.begin_with_options(options())).await?;
        for k in keys {
            if let Err(e) = within(deadline, "delete", txn.delete(k.clone())).await {
                let _ = tokio::time::timeout_at(deadline, txn.rollback()).await;
                return Err(e);
            }
        }
        commit(txn, deadline).await
    }
}

/// Commit `txn` by `deadline`. Any failure is undetermined: tikv-client 0.4 reports a lost commit reply as
/// a plain gRPC error, so the commit may have landed.
async fn commit(mut txn: tikv_client::Transaction, deadline: Instant) -> Result<(), SyncError> {
    match tokio::time::timeout_at(deadline, txn.commit()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(SyncError::Undetermined(e.to_string())),
        Err(_) => Err(SyncError::Undetermined("commit: deadline exceeded".into())),
    }
}

fn decode_cursor(raw: Option<Vec<u8>>) -> Result<u64, SyncError> {
    match raw {
        None => Ok(0),
        Some(raw) => layout::decode_u64(&raw).ok_or_else(|| {
            SyncError::Rejected(format!("central cursor is {} bytes, not 8", raw.len()))
        }),
    }
}
