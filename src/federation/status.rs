//! What the sync worker reports: one shared, lock-protected record (never held across an await), read
//! by `GET /v1/sync`, `/metrics` and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// The worker's state, as `/v1/sync` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncState {
    /// This node is not the leader: its worker waits.
    #[default]
    Follower,
    /// Leader, everything synced.
    Idle,
    Syncing,
    /// Waiting after a failure (backoff or open circuit breaker).
    BackingOff,
    /// An operator paused sync (`POST /v1/sync/pause`).
    Paused,
}

impl SyncState {
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Follower => "follower",
            SyncState::Idle => "idle",
            SyncState::Syncing => "syncing",
            SyncState::BackingOff => "backing_off",
            SyncState::Paused => "paused",
        }
    }
}

/// A copy of the status at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncSnapshot {
    pub state: SyncState,
    /// The central cursor as this worker last saw or advanced it.
    pub central_cursor: Option<u64>,
    pub last_error: Option<String>,
    /// The current backoff delay (0 when not backing off).
    pub backoff_ms: u64,
    /// Age of the oldest unsynced change, seconds (0 when none).
    pub lag_seconds: f64,
    pub breaker_open: bool,
}

/// Counters (monotonic) beside the snapshot.
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    pub errors: AtomicU64,
    pub undetermined: AtomicU64,
    pub fenced: AtomicU64,
    /// Central keys of old epochs deleted (and reclaim markers done).
    pub reclaimed_keys: AtomicU64,
    /// Worker restarts after a panic (inside tikv-client or ours).
    pub restarts: AtomicU64,
}

#[derive(Debug, Default)]
pub struct SyncShared {
    snapshot: Mutex<SyncSnapshot>,
    pub counters: SyncCounters,
    pub paused: AtomicBool,
}

impl SyncShared {
    pub fn get(&self) -> SyncSnapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut SyncSnapshot)) {
        f(&mut self.snapshot.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
