//! Upward federation (SPEC §6): the leader syncs every committed change to a central TiKV cluster
//! through tikv-client, under `<site>/`, with the site's cursor checked and advanced in the same
//! transaction. See `docs/federation.md` for the design, the central layout and the guarantees.
//!
//! * [`client`]: the connection, deadlines on every call, error classes (retry-now, back-off,
//!   undetermined, fenced, rejected).
//! * [`layout`]: the central key layout and the pure batch planner.
//! * [`backoff`]: capped exponential backoff with full jitter, circuit breaker.
//! * [`worker`]: the leader-only, supervised sync worker.
//! * [`status`]: what it reports (`GET /v1/sync`, metrics, `/readyz`).
//! * [`bloom`]: central crossing lookups (`crossed?scope=global`) behind a bloom filter.
//!
//! The change feed itself is the engine's (`Engine::changes`, `Op::SyncCursor`): the engine knows
//! nothing of TiKV.

pub mod backoff;
pub mod bloom;
pub mod client;
pub mod layout;
pub mod status;
pub mod worker;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Unsynced change-feed bytes above which the site reports degraded (and keeps serving).
pub const DEFAULT_BACKLOG_QUOTA: u64 = 1 << 30;
/// tikv-client's own per-RPC timeout.
pub const DEFAULT_RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub use client::{CentralClient, CentralConfig, SyncError};
pub use status::{SyncShared, SyncSnapshot, SyncState};
pub use worker::{
    Site, WorkerConfig, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_DEADLINE, DEFAULT_BATCH_ENTRIES,
};

/// A running federation: the supervised worker and its shared status.
#[derive(Clone)]
pub struct Federation {
    shared: Arc<SyncShared>,
    crossings: Arc<bloom::CentralCrossings>,
    site: String,
    backlog_quota: u64,
}

impl Federation {
    /// Start the supervised worker; it stops when `shutdown` is cancelled.
    pub fn start<S: Site>(
        site: Arc<S>,
        cfg: WorkerConfig,
        backlog_quota: u64,
        shutdown: CancellationToken,
    ) -> Federation {
        let shared = Arc::new(SyncShared::default());
        let name = cfg.site.clone();
        let crossings = Arc::new(bloom::CentralCrossings::new(cfg.central.clone()));
        tokio::spawn(
            crossings
                .clone()
                .refresh_loop(shutdown.clone(), cfg.batch_deadline),
        );
        tokio::spawn(worker::supervise(
            site,
            cfg,
            shared.clone(),
            crossings.clone(),
            shutdown,
        ));
        Federation {
            shared,
            crossings,
            site: name,
            backlog_quota,
        }
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn status(&self) -> SyncSnapshot {
        self.shared.get()
    }

    pub fn shared(&self) -> &Arc<SyncShared> {
        &self.shared
    }

    /// The backlog quota in bytes: above it the site reports degraded (and keeps serving).
    pub fn backlog_quota(&self) -> u64 {
        self.backlog_quota
    }

    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Relaxed);
    }

    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Relaxed);
    }

    /// The central crossing lookups (`crossed?scope=global`).
    pub fn crossings(&self) -> &Arc<bloom::CentralCrossings> {
        &self.crossings
    }

    pub fn restarts(&self) -> u64 {
        self.shared.counters.restarts.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
