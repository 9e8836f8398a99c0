//! The sync worker (leader only) and its supervisor. The worker reads the change feed from the
//! central cursor on, writes one TiKV transaction per batch (data + cursor check-and-advance), then
//! proposes the new cursor through Raft. The supervisor runs it in its own task: a panic (tikv-client
//! 0.4 panics on some malformed PD answers) restarts it with a fresh client, counted.

use std::sync::Arc;
use std::time::Duration;

use engine::{Clock, Engine};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, CircuitBreaker};
use super::bloom::CentralCrossings;
use super::client::{CentralClient, CentralConfig, SyncError};
use super::layout;
use super::status::{SyncShared, SyncState};

/// What the worker needs from the node it runs in.
pub trait Site: Send + Sync + 'static {
    fn engine(&self) -> &Engine;
    /// Is this node the group's leader now?
    fn is_leader(&self) -> impl std::future::Future<Output = bool> + Send;
    /// Replicate the sync cursor (`engine::Op::SyncCursor`) through the log.
    fn record_cursor(
        &self,
        index: u64,
        deadline: std::time::Instant,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// Changes per central transaction, at most (`sync_batch_entries`).
pub const DEFAULT_BATCH_ENTRIES: usize = 256;
/// Bytes of changes per central transaction, at most (`sync_batch_bytes`).
pub const DEFAULT_BATCH_BYTES: usize = 1 << 20;
/// The deadline of one batch — connect, cursor read, commit, reconcile (`sync_timeout`).
pub const DEFAULT_BATCH_DEADLINE: Duration = Duration::from_secs(5);

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub central: CentralConfig,
    pub site: String,
    pub batch_entries: usize,
    pub batch_bytes: usize,
    /// The one deadline of a batch: connect, read, commit, reconcile.
    pub batch_deadline: Duration,
    /// How often a follower's (or an idle leader's) worker looks again.
    pub poll: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub breaker_threshold: u32,
    pub breaker_cool_down: Duration,
}

impl WorkerConfig {
    pub fn new(central: CentralConfig, site: String) -> Self {
        WorkerConfig {
            central,
            site,
            batch_entries: DEFAULT_BATCH_ENTRIES,
            batch_bytes: DEFAULT_BATCH_BYTES,
            batch_deadline: DEFAULT_BATCH_DEADLINE,
            poll: Duration::from_millis(20),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(5),
        }
    }
}

impl WorkerConfig {
    /// The backoff both the worker and its supervisor use: never below 1.1 s once it has grown past
    /// it, because tikv-client's TSO stream reconnects only a second after its last connect.
    fn backoff(&self) -> Backoff {
        Backoff::new(
            self.backoff_base,
            self.backoff_cap,
            Duration::from_millis(1_100),
        )
    }
}

/// Run the supervised worker until `shutdown`.
pub async fn supervise<S: Site>(
    site: Arc<S>,
    cfg: WorkerConfig,
    shared: Arc<SyncShared>,
    crossings: Arc<CentralCrossings>,
    shutdown: CancellationToken,
) {
    let mut backoff = cfg.backoff();
    loop {
        let task = tokio::spawn(run(
            site.clone(),
            cfg.clone(),
            shared.clone(),
            crossings.clone(),
            shutdown.clone(),
        ));
        match task.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                let message = panic_message(e.into_panic());
                tracing::error!(panic = %message, "the sync worker panicked; restarting it with a fresh client");
                SyncShared::count(&shared.counters.restarts, 1);
                shared.update(|s| {
                    s.last_error = Some(format!("worker panicked: {message}"));
                    s.state = SyncState::BackingOff;
                });
            }
            Err(_) => return,
        }
        let delay = backoff.next_delay(rand::thread_rng().gen::<f64>());
        shared.update(|s| s.backoff_ms = millis(delay));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

enum Progress {
    Synced,
    /// Nothing to sync; some keys of an invalidated central epoch were deleted (more may follow).
    Reclaimed,
    Idle,
}

/// How often, at most, a worker that keeps syncing proposes the replicated cursor.
const CURSOR_EVERY: Duration = Duration::from_millis(500);

/// Keys of an invalidated central epoch deleted per transaction.
const RECLAIM_KEYS: u32 = 512;

struct Worker<S> {
    site: Arc<S>,
    cfg: WorkerConfig,
    shared: Arc<SyncShared>,
    client: Option<CentralClient>,
    crossings: Arc<CentralCrossings>,
    /// The central cursor as this worker knows it; `None`: read it before the next batch.
    from: Option<u64>,
    /// Whether reclaim markers may exist: set at start, on a new term and after syncing a checkpoint;
    /// cleared when a scan finds none, so an idle worker does not ask the central store every poll.
    reclaim_due: bool,
    /// When this worker last proposed the replicated cursor.
    cursor_recorded: Option<Instant>,
}

async fn run<S: Site>(
    site: Arc<S>,
    cfg: WorkerConfig,
    shared: Arc<SyncShared>,
    crossings: Arc<CentralCrossings>,
    shutdown: CancellationToken,
) {
    let mut backoff = cfg.backoff();
    let mut breaker = CircuitBreaker::new(cfg.breaker_threshold, cfg.breaker_cool_down);
    let mut w = Worker {
        site,
        cfg,
        shared,
        client: None,
        crossings,
        from: None,
        reclaim_due: true,
        cursor_recorded: None,
    };
    let mut retried_now = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let paused = w.shared.paused.load(std::sync::atomic::Ordering::Relaxed);
        let wait = if paused || !w.site.is_leader().await {
            // A follower (or a deposed leader) forgets the cursor: a new term reads it again, and
            // looks for markers an earlier leader left.
            w.from = None;
            w.reclaim_due = true;
            w.shared.update(|s| {
                s.state = if paused {
                    SyncState::Paused
                } else {
                    SyncState::Follower
                };
                s.backoff_ms = 0;
            });
            w.cfg.poll * 5
        } else if breaker.is_open(std::time::Instant::now()) {
            w.shared.update(|s| s.breaker_open = true);
            breaker.wait(std::time::Instant::now())
        } else {
            let deadline = Instant::now() + w.cfg.batch_deadline;
            match w.step(deadline).await {
                Ok(Progress::Synced) => {
                    backoff.reset();
                    breaker.success();
                    retried_now = false;
                    w.shared.update(|s| {
                        s.breaker_open = false;
                        s.backoff_ms = 0;
                    });
                    Duration::ZERO
                }
                Ok(progress @ (Progress::Idle | Progress::Reclaimed)) => {
                    backoff.reset();
                    breaker.success();
                    w.shared.update(|s| {
                        s.state = SyncState::Idle;
                        s.breaker_open = false;
                        s.backoff_ms = 0;
                    });
                    if matches!(progress, Progress::Reclaimed) {
                        Duration::ZERO
                    } else {
                        w.cfg.poll
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sync batch failed");
                    SyncShared::count(&w.shared.counters.errors, 1);
                    w.shared.update(|s| s.last_error = Some(e.to_string()));
                    match e {
                        SyncError::RetryNow(_) if !retried_now => {
                            retried_now = true;
                            continue;
                        }
                        SyncError::Fenced { .. } => {
                            SyncShared::count(&w.shared.counters.fenced, 1);
                            w.from = None;
                            Duration::ZERO
                        }
                        _ => {
                            retried_now = false;
                            // A fresh connection next time: tikv-client's caches and TSO stream may
                            // be what broke.
                            w.client = None;
                            w.from = None;
                            breaker.failure(std::time::Instant::now());
                            let delay = backoff.next_delay(rand::thread_rng().gen::<f64>());
                            w.shared.update(|s| {
                                s.state = SyncState::BackingOff;
                                s.backoff_ms = millis(delay);
                            });
                            delay
                        }
                    }
                }
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl<S: Site> Worker<S> {
    /// With nothing to sync: delete the keys of one invalidated central epoch (the first reclaim
    /// marker's), at most [`RECLAIM_KEYS`] per transaction, the marker with the last of them. A
    /// checkpoint is O(1) centrally; this is its deferred cost, paid while the site is quiet.
    async fn reclaim(&mut self, deadline: Instant) -> Result<Progress, SyncError> {
        let Some(client) = self.client.as_ref() else {
            return Ok(Progress::Idle);
        };
        if !self.reclaim_due {
            return Ok(Progress::Idle);
        }
        let site = &self.cfg.site;
        let marker = client
            .scan_prefix(layout::reclaim_prefix(site), 1, deadline)
            .await?
            .into_iter()
            .next();
        let Some((marker, _)) = marker else {
            self.reclaim_due = false;
            return Ok(Progress::Idle);
        };
        let mut doomed = match layout::decode_reclaim_key(site, &marker) {
            Some((entity, epoch)) => client
                .scan_prefix(
                    layout::epoch_data_prefix(site, &entity, epoch),
                    RECLAIM_KEYS,
                    deadline,
                )
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            // Not a marker this version writes: dropped, so it does not block the others.
            None => Vec::new(),
        };
        let keys = doomed.len() as u64;
        if keys < u64::from(RECLAIM_KEYS) {
            doomed.push(marker);
        }
        client.delete_keys(&doomed, deadline).await?;
        SyncShared::count(&self.shared.counters.reclaimed_keys, keys);
        Ok(Progress::Reclaimed)
    }

    async fn step(&mut self, deadline: Instant) -> Result<Progress, SyncError> {
        if self.client.is_none() {
            self.client = Some(CentralClient::connect(&self.cfg.central, deadline).await?);
        }
        let Some(client) = self.client.as_ref() else {
            return Err(SyncError::BackOff("no client".into()));
        };
        let site = self.cfg.site.clone();
        let engine = self.site.engine();
        let start = match self.from {
            Some(from) => from,
            None => {
                // The central cursor is the truth for what landed; the replicated one may trail it
                // (a leader died between its commit and its proposal).
                let central = client.read_cursor(&site, deadline).await?;
                let replicated = engine.sync_cursor();
                if central < replicated {
                    return Err(SyncError::Rejected(format!(
                        "the central cursor {central} is behind the site's replicated cursor \
                         {replicated}: changes in between were trimmed here and are missing centrally"
                    )));
                }
                if central > replicated {
                    self.site
                        .record_cursor(central, deadline.into_std())
                        .await
                        .map_err(SyncError::BackOff)?;
                }
                self.from = Some(central);
                self.shared.update(|s| s.central_cursor = Some(central));
                central
            }
        };
        let entries = engine
            .changes(start, self.cfg.batch_entries, self.cfg.batch_bytes)
            .map_err(|e| SyncError::Rejected(format!("read the change feed: {e}")))?;
        let lag = entries
            .first()
            .and_then(|e| e.changes.first())
            .map_or(0.0, |c| {
                let now = engine::SystemClock.now_micros();
                now.saturating_sub(c.ts()) as f64 / 1e6
            });
        self.shared.update(|s| s.lag_seconds = lag);
        let Some(last) = entries.last() else {
            // Caught up: the replicated cursor follows the central one now, whatever the interval.
            if engine.sync_cursor() < start {
                self.record_cursor(start, deadline).await;
            }
            return self.reclaim(deadline).await;
        };
        let to = last.index;
        self.shared.update(|s| s.state = SyncState::Syncing);
        let mutations = layout::plan_batch(&site, &entries);
        match client
            .commit_batch(&site, start, to, &mutations, deadline)
            .await
        {
            Ok(()) => {}
            Err(SyncError::Undetermined(why)) => {
                SyncShared::count(&self.shared.counters.undetermined, 1);
                // Reconcile under a fresh deadline: did the batch land?
                let reconcile = Instant::now() + self.cfg.batch_deadline;
                let central = client.read_cursor(&site, reconcile).await?;
                if central == start {
                    return Err(SyncError::BackOff(format!("{why} (it did not land)")));
                }
                if central != to {
                    return Err(SyncError::Fenced {
                        expected: start,
                        central,
                    });
                }
            }
            Err(e) => return Err(e),
        }
        self.from = Some(to);
        for entry in &entries {
            for change in &entry.changes {
                if let engine::Change::Checkpoint { entity, name, .. } = change {
                    self.crossings.insert(entity, name);
                    self.reclaim_due = true;
                }
            }
        }
        SyncShared::count(&self.shared.counters.batches, 1);
        SyncShared::count(&self.shared.counters.entries, entries.len() as u64);
        self.shared.update(|s| {
            s.central_cursor = Some(to);
            s.last_error = None;
        });
        // The central cursor already says the batch landed; the replicated one follows at most every
        // CURSOR_EVERY while batches keep coming (each proposal is a Raft entry every replica fsyncs and
        // a range deletion of the feed), and at once when caught up.
        if self
            .cursor_recorded
            .is_none_or(|at| at.elapsed() >= CURSOR_EVERY)
        {
            self.record_cursor(to, deadline).await;
        }
        Ok(Progress::Synced)
    }

    /// Propose the replicated cursor. A failed proposal (leadership lost) only means the next leader
    /// trims later, after reading the central cursor.
    async fn record_cursor(&mut self, to: u64, deadline: Instant) {
        self.cursor_recorded = Some(Instant::now());
        if let Err(e) = self.site.record_cursor(to, deadline.into_std()).await {
            tracing::info!(error = %e, cursor = to, "could not replicate the sync cursor");
        }
    }
}
