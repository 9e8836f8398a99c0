//! [`Engine`]: the versioned store as a Raft state machine. See the crate docs for its guarantees.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use crate::apply;
use crate::bloom::CrossingFilter;
use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::error::Error;
use crate::gc::{self, GcShared};
use crate::keys;
use crate::op::{ChangeEntry, Crossing, Op, OpResult, Versioned};
use crate::store::{Store, StoreConfig, StoreMemory, WriteOp};
use crate::values::{self, Applied};

mod reader;
mod snapshot_io;
mod verify;

use reader::Reader;
pub use snapshot_io::{image_applied, verify_image};
pub use verify::VerifyReport;

const FORMAT_KEY: &[u8] = b"mformat";
const FORMAT: &[u8] = b"kvs-raft-engine/1";

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long old versions stay readable (SPEC §2: 5 s by default).
    pub retention: Duration,
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    pub max_write_buffers: usize,
    pub bloom_fp_rate: f64,
    pub bloom_expected_crossings: usize,
    /// Target size of a snapshot chunk's payload.
    pub snapshot_chunk_bytes: usize,
    pub clock: Arc<dyn Clock>,
    /// Tiny SST files and levels, so tests exercise flushes and compactions (never in production).
    pub tiny_levels: bool,
    /// Files RocksDB keeps open at most (SST table readers; a bound the process's open-file limit must
    /// cover, with the WAL, manifest and info log beside it).
    pub max_open_files: usize,
    /// Record every applied entry's effects in the change feed (for the federation's sync worker).
    /// Every replica of a group must agree, so that whichever becomes leader has the feed.
    pub change_feed: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retention: Duration::from_secs(5),
            block_cache_bytes: 128 << 20,
            write_buffer_bytes: 32 << 20,
            max_write_buffers: 3,
            bloom_fp_rate: 0.01,
            bloom_expected_crossings: 1_000_000,
            snapshot_chunk_bytes: 1 << 20,
            clock: Arc::new(SystemClock),
            tiny_levels: false,
            max_open_files: 1_000,
            change_feed: false,
        }
    }
}

impl EngineConfig {
    /// Tiny memtables and levels: tests use this so flushes and compactions really happen.
    pub fn tiny(clock: Arc<dyn Clock>) -> Self {
        EngineConfig {
            block_cache_bytes: 1 << 20,
            write_buffer_bytes: 64 << 10,
            max_write_buffers: 2,
            bloom_expected_crossings: 1_000,
            snapshot_chunk_bytes: 4 << 10,
            clock,
            tiny_levels: true,
            ..EngineConfig::default()
        }
    }
}

/// The outcome of applying one entry.
#[derive(Debug)]
pub struct ApplyOutput {
    pub results: Vec<OpResult>,
    /// Size of the `WriteBatch` that applied it (ops' effects + applied index).
    pub batch_bytes: usize,
}

/// A range or prefix scan at one snapshot.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// Inclusive start (user key).
    pub start: Vec<u8>,
    /// Exclusive end; `None` = to the end of the keyspace.
    pub end: Option<Vec<u8>>,
    /// Items at most.
    pub limit: usize,
    /// Key and value bytes at most: the page ends after the item that reaches this budget (so it always
    /// holds at least one item), with `more` if items remain. `usize::MAX`: no byte budget.
    pub max_bytes: usize,
    pub at: u64,
}

impl ScanRequest {
    pub fn prefix(prefix: &[u8], limit: usize, at: u64) -> Self {
        let end = if prefix.is_empty() {
            None
        } else {
            keys::prefix_end(prefix)
        };
        ScanRequest {
            start: prefix.to_vec(),
            end,
            limit,
            max_bytes: usize::MAX,
            at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    pub items: Vec<(Vec<u8>, Versioned)>,
    /// More items exist past `limit` (or past the byte budget).
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityView {
    pub epoch: u64,
    pub items: Vec<(Vec<u8>, Versioned)>,
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    pub safepoint: u64,
    pub epochs_reclaimed: u64,
    /// The GC queue has more entries at or below the safepoint: call again.
    pub more: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub applied: Applied,
    pub crossed_lookups: u64,
    pub bloom_negatives: u64,
    pub bloom_false_positives: u64,
    pub bloom_items: u64,
    pub bloom_bytes: u64,
    pub gc_safepoint: u64,
    pub gc_epochs_reclaimed: u64,
    pub gc_versions_dropped: u64,
    /// Point lookups and seeks RocksDB served (from RocksDB's own statistics).
    pub store_reads: u64,
    pub memory: StoreMemory,
    /// The replicated sync cursor ([`Op::SyncCursor`]).
    pub sync_cursor: u64,
    /// Change-feed records kept (entries not yet synced) and their bytes.
    pub feed_entries: u64,
    pub feed_bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    crossed_lookups: AtomicU64,
    bloom_negatives: AtomicU64,
    bloom_false_positives: AtomicU64,
    epochs_reclaimed: AtomicU64,
}

/// The change feed's size and the sync cursor, kept in memory beside the state (set at open, after each
/// write that changes them, and after a snapshot install).
#[derive(Debug, Default)]
struct FeedSize {
    cursor: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
}

pub struct Engine {
    store: Store,
    dir: PathBuf,
    config: EngineConfig,
    gc: Arc<GcShared>,
    bloom: RwLock<CrossingFilter>,
    /// Held by every writer for its whole write (apply, GC step, snapshot install): serializes them. A
    /// snapshot install holds it while the whole image streams in, so readers never take it.
    writer: Mutex<()>,
    /// The applied state, replaced by a writer (holding `writer`) once its write is done; readers copy
    /// it under this lock, which is never held for more than that copy or that store.
    applied: Mutex<Applied>,
    /// The crossing filter's size, kept beside it so `stats` never waits for the filter's lock (a
    /// snapshot install holds it for its switch).
    bloom_size: BloomSize,
    counters: Counters,
    feed: FeedSize,
}

#[derive(Debug, Default)]
struct BloomSize {
    items: AtomicU64,
    bytes: AtomicU64,
}

impl BloomSize {
    fn record(&self, bloom: &CrossingFilter) {
        self.items.store(bloom.items(), Ordering::Relaxed);
        self.bytes.store(bloom.approx_bytes(), Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// Open (or create) the engine in `dir`. Finishes an interrupted snapshot install, and rebuilds the
    /// crossing filter from disk.
    pub fn open(dir: &Path, config: EngineConfig) -> Result<Engine, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let gc = Arc::new(GcShared::default());
        let store_cfg = StoreConfig {
            block_cache_bytes: config.block_cache_bytes,
            write_buffer_bytes: config.write_buffer_bytes,
            max_write_buffers: config.max_write_buffers,
            tiny_levels: config.tiny_levels,
            max_open_files: config.max_open_files,
        };
        let store = Store::open(&dir.join("db"), &store_cfg, Arc::clone(&gc))?;
        let bloom = RwLock::new(CrossingFilter::new(
            config.bloom_fp_rate,
            config.bloom_expected_crossings,
        ));
        let engine = Engine {
            store,
            dir: dir.to_path_buf(),
            config,
            gc,
            bloom,
            writer: Mutex::new(()),
            applied: Mutex::new(Applied::default()),
            bloom_size: BloomSize::default(),
            counters: Counters::default(),
            feed: FeedSize::default(),
        };
        // An interrupted install is finished first: its first write cleared the whole state range,
        // format marker included, so the format can only be checked once the snapshot is in.
        engine.recover_install()?;
        engine.check_format()?;
        let filter = engine.load_filter()?;
        engine.bloom_size.record(&filter);
        *engine.bloom.write().unwrap_or_else(PoisonError::into_inner) = filter;
        *lock(&engine.applied) = engine.load_applied()?;
        engine.load_safepoint()?;
        engine.load_feed()?;
        Ok(engine)
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            view: self.store.view(),
        }
    }

    fn check_format(&self) -> Result<(), Error> {
        let reader = self.reader();
        match reader.view.get(FORMAT_KEY)? {
            Some(f) if f == FORMAT => Ok(()),
            Some(f) => Err(Error::ForeignDir(format!(
                "format {:?}",
                String::from_utf8_lossy(&f)
            ))),
            None => {
                let mut cur = reader.view.cursor(None);
                cur.seek(&[]);
                if cur.entry()?.is_some() {
                    return Err(Error::ForeignDir(
                        "RocksDB holds data but no kvs-raft format marker".into(),
                    ));
                }
                self.store
                    .write([WriteOp::Put(FORMAT_KEY.to_vec(), FORMAT.to_vec())], true)?;
                Ok(())
            }
        }
    }

    /// A crossing filter holding every crossing stored on disk.
    fn load_filter(&self) -> Result<CrossingFilter, Error> {
        let mut bloom = CrossingFilter::new(
            self.config.bloom_fp_rate,
            self.config.bloom_expected_crossings,
        );
        let reader = self.reader();
        let mut cur = reader.view.cursor(Some(vec![keys::CROSSING + 1]));
        cur.seek(&[keys::CROSSING]);
        while let Some((k, _)) = cur.entry()? {
            let (entity, name) = keys::decode_entity_meta(keys::CROSSING, k)?;
            bloom.insert(&entity, name);
            cur.next();
        }
        Ok(bloom)
    }

    /// Raise the in-memory safepoint to the stored one (after open, or after installing a snapshot whose
    /// source had already collected below it).
    fn load_safepoint(&self) -> Result<(), Error> {
        if let Some(raw) = self.reader().view.get(keys::SAFEPOINT_KEY)? {
            self.gc
                .raise_safepoint(keys::decode_u64(&raw, "gc safepoint")?);
        }
        Ok(())
    }

    /// Count the change feed and read the sync cursor from disk (after open or a snapshot install).
    fn load_feed(&self) -> Result<(), Error> {
        let reader = self.reader();
        let cursor = crate::apply::StateView::sync_cursor(&reader)?;
        let mut cur = reader.view.cursor(Some(vec![keys::FEED + 1]));
        cur.seek(&[keys::FEED]);
        let (mut entries, mut bytes) = (0u64, 0u64);
        while let Some((k, v)) = cur.entry()? {
            entries += 1;
            bytes += (k.len() + v.len()) as u64;
            cur.next();
        }
        self.feed.cursor.store(cursor, Ordering::Relaxed);
        self.feed.entries.store(entries, Ordering::Relaxed);
        self.feed.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn load_applied(&self) -> Result<Applied, Error> {
        match self.reader().view.get(keys::APPLIED_KEY)? {
            Some(raw) => values::decode_applied(&raw),
            None => Ok(Applied::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn applied(&self) -> Applied {
        *lock(&self.applied)
    }

    /// Apply Raft entry `index` with commit ts `ts`. Writes the ops' effects and the applied index in one
    /// atomic batch; with `sync` the batch is durable when this returns. A storage error leaves the state
    /// and the applied index exactly as they were.
    pub fn apply(&self, index: u64, ts: u64, ops: &[Op], sync: bool) -> Result<ApplyOutput, Error> {
        self.apply_commands(index, ts, &[(ts, ops)], sync)
    }

    /// Apply Raft entry `index` made of several commands, each `(ts, ops)` at its own ts (non-decreasing,
    /// none below the applied ts), as [`apply`](Self::apply) does one; `ts` — the entry's last — becomes
    /// the applied ts. The results of all the commands' ops, in order.
    pub fn apply_commands(
        &self,
        index: u64,
        ts: u64,
        commands: &[(u64, &[Op])],
        sync: bool,
    ) -> Result<ApplyOutput, Error> {
        let _writer = lock(&self.writer);
        let applied = self.applied();
        if index <= applied.index {
            return Err(Error::AlreadyApplied {
                index,
                applied: applied.index,
            });
        }
        let lowest = commands.iter().map(|c| c.0).fold(ts, u64::min);
        if lowest < applied.ts {
            return Err(Error::TsWentBack {
                ts: lowest,
                applied_ts: applied.ts,
            });
        }
        let plan = apply::plan_commands(&self.reader(), commands, self.config.change_feed)?;
        if !plan.crossings.is_empty() {
            // Before the write: a crossing readable from disk is always in the filter.
            let mut bloom = self.bloom.write().unwrap_or_else(PoisonError::into_inner);
            for (entity, name) in &plan.crossings {
                bloom.insert(entity, name);
            }
            self.bloom_size.record(&bloom);
        }
        let next = Applied { index, ts };
        let mut feed_ops = Vec::new();
        let (mut entries, mut bytes) = (
            self.feed.entries.load(Ordering::Relaxed),
            self.feed.bytes.load(Ordering::Relaxed),
        );
        if let Some(cursor) = plan.cursor {
            // Trim what the cursor covers, counting it first. Only the records after the previous
            // cursor are read and deleted: those before it are gone already, and seeking from the
            // feed's start would step over every deleted record RocksDB has not compacted away yet —
            // on every trim, a cost that grows with the feed's history (it stalled the apply loop).
            let from = keys::feed_key(self.feed.cursor.load(Ordering::Relaxed).saturating_add(1));
            let to = keys::feed_key(cursor.saturating_add(1));
            let reader = self.reader();
            let mut cur = reader.view.cursor(Some(to.clone()));
            cur.seek(&from);
            while let Some((k, v)) = cur.entry()? {
                entries = entries.saturating_sub(1);
                bytes = bytes.saturating_sub((k.len() + v.len()) as u64);
                cur.next();
            }
            if from < to {
                feed_ops.push(WriteOp::DeleteRange(from, to));
            }
            feed_ops.push(WriteOp::Put(
                keys::SYNCED_KEY.to_vec(),
                cursor.to_be_bytes().to_vec(),
            ));
        }
        // An entry at or below the cursor is never recorded: it was synced already (a replayed log).
        let feed_cursor = plan
            .cursor
            .unwrap_or_else(|| self.feed.cursor.load(Ordering::Relaxed));
        if !plan.changes.is_empty() && index > feed_cursor {
            let key = keys::feed_key(index);
            let value = codec::encode_changes(&plan.changes);
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
            feed_ops.push(WriteOp::Put(key, value));
        }
        let writes = plan.puts.into_iter().map(|(k, v)| WriteOp::Put(k, v));
        let applied_put = WriteOp::Put(keys::APPLIED_KEY.to_vec(), values::encode_applied(next));
        let batch_bytes = self
            .store
            .write(writes.chain(feed_ops).chain([applied_put]), sync)?;
        *lock(&self.applied) = next;
        if let Some(cursor) = plan.cursor {
            self.feed.cursor.store(cursor, Ordering::Relaxed);
        }
        self.feed.entries.store(entries, Ordering::Relaxed);
        self.feed.bytes.store(bytes, Ordering::Relaxed);
        Ok(ApplyOutput {
            results: plan.results,
            batch_bytes,
        })
    }

    /// Change-feed records of entries after `after`, in log order: at most `max_entries` of them and
    /// about `max_bytes` (the batch ends after the record that reaches the budget, so it holds at least
    /// one when any is kept). Empty when the feed is off or everything is synced.
    pub fn changes(
        &self,
        after: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<ChangeEntry>, Error> {
        let reader = self.reader();
        let mut cur = reader.view.cursor(Some(vec![keys::FEED + 1]));
        cur.seek(&keys::feed_key(after.saturating_add(1)));
        let mut out = Vec::new();
        let mut total = 0usize;
        while let Some((k, v)) = cur.entry()? {
            if out.len() >= max_entries || total >= max_bytes {
                break;
            }
            let index = keys::decode_feed_key(k)?;
            let changes = codec::decode_changes(v).map_err(|e| Error::Corruption {
                at: format!("change-feed record of entry {index}"),
                detail: e.to_string(),
            })?;
            let bytes = k.len() + v.len();
            total += bytes;
            out.push(ChangeEntry {
                index,
                changes,
                bytes: bytes as u64,
            });
            cur.next();
        }
        Ok(out)
    }

    /// The replicated sync cursor: every change of entries up to it has reached the central store.
    pub fn sync_cursor(&self) -> u64 {
        self.feed.cursor.load(Ordering::Relaxed)
    }

    /// The oldest ts a read may ask for now.
    pub fn read_floor(&self) -> u64 {
        self.retention_floor().max(self.gc.safepoint())
    }

    /// `now − retention`: the oldest ts the retention window covers (the safepoint never passes it).
    fn retention_floor(&self) -> u64 {
        let retention = u64::try_from(self.config.retention.as_micros()).unwrap_or(u64::MAX);
        self.config.clock.now_micros().saturating_sub(retention)
    }

    /// Run a read at `at`, refusing it if `at` is below the retention floor before *or after* it ran (GC
    /// may have raised the safepoint meanwhile; then the result may be torn, so it is not returned).
    fn read_at<T>(
        &self,
        at: u64,
        f: impl FnOnce(&Reader<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let floor = self.read_floor();
        if at < floor {
            return Err(Error::VersionGone { at, floor });
        }
        let out = f(&self.reader())?;
        let safepoint = self.gc.safepoint();
        if at < safepoint {
            return Err(Error::VersionGone {
                at,
                floor: safepoint,
            });
        }
        Ok(out)
    }

    /// The value of `key` as of ts `at` (`u64::MAX` = latest applied).
    pub fn get(&self, key: &[u8], at: u64) -> Result<Option<Versioned>, Error> {
        self.read_at(at, |r| r.get(key, at))
    }

    /// The entity's epoch in force at `at`.
    pub fn epoch(&self, entity: &[u8], at: u64) -> Result<u64, Error> {
        self.read_at(at, |r| r.epoch_at(entity, at))
    }

    pub fn scan(&self, req: &ScanRequest) -> Result<ScanPage, Error> {
        self.read_at(req.at, |r| r.scan(req))
    }

    /// Every live key of `entity` at `at`, from one snapshot, with the epoch they belong to: at most
    /// `limit` items and about `max_bytes` of keys and values (see [`ScanRequest::max_bytes`]).
    pub fn entity(
        &self,
        entity: &[u8],
        at: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<EntityView, Error> {
        let mut start = entity.to_vec();
        start.push(b'/');
        let req = ScanRequest {
            end: keys::prefix_end(&start),
            start,
            limit,
            max_bytes,
            at,
        };
        self.read_at(at, |r| {
            let epoch = r.epoch_at(entity, at)?;
            let page = r.scan(&req)?;
            Ok(EntityView {
                epoch,
                items: page.items,
                more: page.more,
            })
        })
    }

    /// Has `entity` crossed checkpoint `name`? Negative answers usually come from the in-memory filter,
    /// without any disk read.
    pub fn crossed(&self, entity: &[u8], name: &[u8]) -> Result<Option<Crossing>, Error> {
        self.counters
            .crossed_lookups
            .fetch_add(1, Ordering::Relaxed);
        let maybe = self
            .bloom
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .may_contain(entity, name);
        if !maybe {
            self.counters
                .bloom_negatives
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        match self.reader().view.get(&keys::crossing_key(entity, name))? {
            Some(raw) => Ok(Some(values::decode_crossing(&raw)?)),
            None => {
                self.counters
                    .bloom_false_positives
                    .fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// The highest safepoint GC may set now: `retention` before the earlier of the local clock and the
    /// applied ts. The applied ts is the log's clock (the leader's, which raft-node bounds against the
    /// cluster's view), so a replica whose own clock runs ahead cannot move the safepoint — which is
    /// persisted and travels in snapshots — past what the retention window still covers on the others;
    /// and the safepoint never passes the applied ts. (An idle group keeps the last window's garbage
    /// until its next write.)
    fn gc_limit(&self) -> u64 {
        let retention = u64::try_from(self.config.retention.as_micros()).unwrap_or(u64::MAX);
        let now = self.config.clock.now_micros();
        now.min(self.applied().ts).saturating_sub(retention)
    }

    /// One bounded GC step: raise the safepoint to `safepoint` (never past [`Engine::gc_limit`]'s bound,
    /// never backwards) and reclaim up to `budget` invalidated entity epochs by range deletion. Old
    /// versions of live keys are dropped by compactions as they happen (see [`crate::gc`]).
    pub fn gc_step(&self, safepoint: u64, budget: usize) -> Result<GcReport, Error> {
        let _writer = lock(&self.writer);
        let limit = self.gc_limit();
        let previous = self.gc.safepoint();
        let safepoint = self.gc.raise_safepoint(safepoint.min(limit));
        let reader = self.reader();
        let upper = keys::gc_queue_key(safepoint.saturating_add(1), b"");
        let mut cur = reader.view.cursor(Some(upper));
        cur.seek(&[keys::GC_QUEUE]);
        let mut ops = Vec::new();
        let mut reclaimed = 0u64;
        let mut more = false;
        while let Some((k, v)) = cur.entry()? {
            if reclaimed as usize == budget {
                more = true;
                break;
            }
            let (_, entity) = keys::decode_gc_queue_key(k)?;
            let new_epoch = keys::decode_u64(v, "gc queue epoch")?;
            let reclaim = gc::reclaim_epochs(k, &entity, new_epoch);
            ops.extend([
                WriteOp::DeleteRange(reclaim.data.0, reclaim.data.1),
                WriteOp::DeleteRange(reclaim.epoch_starts.0, reclaim.epoch_starts.1),
                WriteOp::Delete(reclaim.queue_key),
            ]);
            reclaimed += 1;
            cur.next();
        }
        drop(cur);
        drop(reader);
        if safepoint > previous {
            ops.push(WriteOp::Put(
                keys::SAFEPOINT_KEY.to_vec(),
                safepoint.to_be_bytes().to_vec(),
            ));
        }
        if !ops.is_empty() {
            // Not synced: if lost in a crash the queue entries are still there and the step is redone, and
            // the clock-based floor keeps reads above any safepoint that was lost.
            self.store.write(ops, false)?;
        }
        self.counters
            .epochs_reclaimed
            .fetch_add(reclaimed, Ordering::Relaxed);
        Ok(GcReport {
            safepoint,
            epochs_reclaimed: reclaimed,
            more,
        })
    }

    /// Make every apply so far durable, including those made with `sync = false` (one WAL fsync).
    pub fn sync(&self) -> Result<(), Error> {
        self.store.sync_wal()
    }

    /// Flush and compact everything now (the compaction filter drops versions below the safepoint).
    pub fn compact(&self) -> Result<(), Error> {
        self.store.compact_all()
    }

    /// Counters and sizes; never waits for a writer (`/metrics` calls it on an async worker).
    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        EngineStats {
            applied: self.applied(),
            crossed_lookups: c.crossed_lookups.load(Ordering::Relaxed),
            bloom_negatives: c.bloom_negatives.load(Ordering::Relaxed),
            bloom_false_positives: c.bloom_false_positives.load(Ordering::Relaxed),
            bloom_items: self.bloom_size.items.load(Ordering::Relaxed),
            bloom_bytes: self.bloom_size.bytes.load(Ordering::Relaxed),
            gc_safepoint: self.gc.safepoint(),
            gc_epochs_reclaimed: c.epochs_reclaimed.load(Ordering::Relaxed),
            gc_versions_dropped: self.gc.versions_dropped(),
            store_reads: self.store.reads_served(),
            memory: self.store.memory(),
            sync_cursor: self.feed.cursor.load(Ordering::Relaxed),
            feed_entries: self.feed.entries.load(Ordering::Relaxed),
            feed_bytes: self.feed.bytes.load(Ordering::Relaxed),
        }
    }

    /// Number of physical data versions stored (all keys, versions, epochs and tombstones).
    pub fn data_entries(&self) -> Result<u64, Error> {
        let reader = self.reader();
        let mut cur = reader.view.cursor(Some(vec![keys::DATA + 1]));
        cur.seek(&[keys::DATA]);
        let mut n = 0;
        while cur.entry()?.is_some() {
            n += 1;
            cur.next();
        }
        Ok(n)
    }
}
