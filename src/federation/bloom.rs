//! Central crossing lookups (`crossed?scope=global`): a bloom filter of the crossings known to exist in
//! the central store's global index (`x/<entity>/<name>`) answers negatives without a round trip;
//! positives (and false positives) read TiKV.
//!
//! Guarantee, exactly: no false negative for a crossing that was in the central index at the last
//! completed rebuild, or that this node's own worker synced since. A crossing another site synced after
//! the last rebuild may be answered "not crossed" until the next rebuild: the filter is rebuilt at start
//! and every [`REFRESH`], so that staleness is bounded by `REFRESH` plus one scan. Until the first
//! rebuild completes no negative is answered from the filter (every lookup reads TiKV).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use growable_bloom_filter::GrowableBloom;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{CentralClient, CentralConfig, SyncError};
use super::layout;

/// How often the filter is rebuilt from the central index.
pub const REFRESH: Duration = Duration::from_secs(30);
/// Keys per scan page during a rebuild.
const PAGE: u32 = 10_000;

/// A crossing as the central index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralCrossing {
    pub site: String,
    pub epoch: u64,
    pub ts: u64,
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct LookupCounters {
    pub lookups: AtomicU64,
    pub bloom_negatives: AtomicU64,
    pub remote_reads: AtomicU64,
    pub rebuilds: AtomicU64,
}

pub struct CentralCrossings {
    cfg: CentralConfig,
    bloom: RwLock<Option<GrowableBloom>>,
    /// Crossings this node synced since the rebuild began (re-added to the new filter).
    recent: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    client: Mutex<Option<Arc<CentralClient>>>,
    pub counters: LookupCounters,
}

fn new_filter() -> GrowableBloom {
    GrowableBloom::new(0.01, 100_000)
}

impl CentralCrossings {
    pub fn new(cfg: CentralConfig) -> Self {
        CentralCrossings {
            cfg,
            bloom: RwLock::new(None),
            recent: Mutex::new(Vec::new()),
            client: Mutex::new(None),
            counters: LookupCounters::default(),
        }
    }

    /// A connection (made outside any lock; a concurrent caller may connect too, one wins).
    async fn client(&self, deadline: Instant) -> Result<Arc<CentralClient>, SyncError> {
        let existing = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(c) = existing {
            return Ok(c);
        }
        let c = Arc::new(CentralClient::connect(&self.cfg, deadline).await?);
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
        Ok(c)
    }

    fn forget_client(&self) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Record a crossing this node's worker just synced (no false negative for it from now on).
    pub fn insert(&self, entity: &[u8], name: &[u8]) {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((entity.to_vec(), name.to_vec()));
        if let Some(b) = self
            .bloom
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            b.insert((entity, name));
        }
    }

    /// Rebuild the filter from a scan of the whole central index.
    pub async fn rebuild(&self, deadline: Instant) -> Result<u64, SyncError> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let client = self.client(deadline).await?;
        let mut filter = new_filter();
        let mut start = b"x/".to_vec();
        let end = b"x0".to_vec();
        let mut n = 0u64;
        loop {
            let page = match client
                .scan_range(start.clone(), end.clone(), PAGE, deadline)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    self.forget_client();
                    return Err(e);
                }
            };
            for (k, _) in &page {
                if let Some((entity, name)) = split_index_key(k) {
                    filter.insert((entity, name));
                    n += 1;
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE as usize => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        for (entity, name) in self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            filter.insert((entity.as_slice(), name.as_slice()));
        }
        *self.bloom.write().unwrap_or_else(PoisonError::into_inner) = Some(filter);
        self.counters.rebuilds.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }

    /// Has `entity` crossed `name` at any site? A filter negative costs no round trip.
    pub async fn lookup(
        &self,
        entity: &[u8],
        name: &[u8],
        deadline: Instant,
    ) -> Result<Option<CentralCrossing>, SyncError> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let negative = self
            .bloom
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|b| !b.contains((entity, name)));
        if negative {
            self.counters
                .bloom_negatives
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        self.counters.remote_reads.fetch_add(1, Ordering::Relaxed);
        let client = self.client(deadline).await?;
        let raw = match client
            .get(layout::crossing_key(entity, name), deadline)
            .await
        {
            Ok(raw) => raw,
            Err(e) => {
                self.forget_client();
                return Err(e);
            }
        };
        match raw {
            None => Ok(None),
            Some(raw) => match layout::decode_crossing(&raw) {
                Some((site, epoch, ts, data)) => Ok(Some(CentralCrossing {
                    site,
                    epoch,
                    ts,
                    data,
                })),
                None => Err(SyncError::Rejected("undecodable central crossing".into())),
            },
        }
    }

    /// Rebuild at start and every [`REFRESH`] until `shutdown` (failures retried at the next tick).
    pub async fn refresh_loop(self: Arc<Self>, shutdown: CancellationToken, deadline: Duration) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.rebuild(Instant::now() + deadline).await {
                Ok(n) => {
                    tracing::debug!(crossings = n, "central crossing filter rebuilt");
                    wait = REFRESH;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "central crossing filter rebuild failed");
                    wait = Duration::from_secs(2);
                }
            }
        }
    }
}

/// `x/<entity>/<name>` → (entity, name).
fn split_index_key(k: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = k.strip_prefix(b"x/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    Some((&rest[..slash], &rest[slash + 1..]))
}
