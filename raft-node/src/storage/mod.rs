//! # Raft log storage
//!
//! [`LogStore`] is raft-rs's [`raft::Storage`] over its own RocksDB (`<data-dir>/raft/`): the log
//! entries, the `HardState`, the `ConfState`, the metadata of the last applied snapshot, the
//! cluster id and the node id. Its semantics are those of raft-rs's `MemStorage` (the conformance suite in
//! `tests/storage_conformance.rs` runs the same tests against both), except where `MemStorage` panics
//! on bad input: `LogStore` returns an [`Error`] and writes nothing.
//!
//! ## Guarantees
//!
//! * **Durable before return.** [`LogStore::persist`] and [`LogStore::compact`] each write exactly one
//!   RocksDB `WriteBatch` with `sync = true`: when they return `Ok`, everything they were given is on
//!   disk; when they return `Err`, nothing of it is (and the in-memory view is unchanged). The one
//!   exception is a write whose only change is the hard state's commit index: it is written without an
//!   fsync ([`LogWrite::must_sync`]; raft needs no durable commit index, and etcd and raft-rs skip
//!   this fsync too), and it becomes durable with the next synced write.
//! * **What a crash keeps:** every call that returned, and of the call in flight all or nothing —
//!   except that a power loss (not a process crash: the write is in the OS already) may take back the
//!   commit-only writes since the last synced one, leaving an older commit index.
//! * **No holes.** The entries on disk are exactly `first_index ..= last_index`; a write that would break
//!   this (or rewrite compacted entries) is refused. `term(first_index - 1)` always answers: the index and
//!   term of the last dropped entry are kept (the *truncation boundary*).
//! * **Never `commit > last_index`.** `persist` refuses a write after which the hard state's commit would
//!   lie beyond the log, and [`LogStore::open`] refuses a store in that state (SPEC §5).
//! * **Bad bytes are errors.** Everything read from disk is decoded without panicking: a value that does
//!   not decode, an entry under the wrong key, or a hole is [`Error::Corruption`].
//!
//! ## Locking model
//!
//! All methods take `&self`; a `LogStore` is `Send + Sync` and may be shared (raft-rs's `RawNode` owns it,
//! the ready loop writes through `raw_node.store()`). The boundaries (first/last index and term), the hard
//! state, conf state and snapshot metadata live in memory behind one `RwLock`, so `first_index`,
//! `last_index`, `initial_state` and most `term` calls never touch RocksDB. A write holds the write lock
//! across its synced batch and then replaces the in-memory view with one assignment, so a reader sees the
//! log either wholly before or wholly after a write, never a mixture. Writes therefore serialize and block
//! readers for one fsync; in this design the ready loop is both the only writer and the only caller of
//! `raft::Storage`, so nothing waits in practice.
//!
//! A panic inside a write (e.g. a `failpoints` crash) cannot leave memory and disk disagreeing — memory is
//! replaced only after the batch is written — so a poisoned lock is recovered, not propagated.
//!
//! ## Snapshots
//!
//! The state-machine snapshot is produced asynchronously by the node and streamed out of band; raft-rs
//! only sees metadata plus a small data token. [`LogStore::set_snapshot`] registers the latest one (in
//! memory: after a restart none is registered until the node registers again), and
//! [`raft::Storage::snapshot`] returns it when its index is `≥ request_index` and not older than the log
//! (`≥ first_index - 1`, so a follower can continue from the entries after it); otherwise
//! `SnapshotTemporarilyUnavailable`, and raft-rs retries later. Receiving a snapshot is a different
//! thing: its metadata goes into [`LogWrite::snapshot`] and resets the log.

mod check;
mod codec;
mod db;

pub use check::{
    bootstrap_from_image, check_log, drop_log_tail_for_tests, Finding, LogReport, SEED_TERM,
};

pub use db::LogMemory;
pub use db::MAX_OPEN_FILES as LOG_MAX_OPEN_FILES;
mod log_state;

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prost::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use self::codec::{
    corruption, decode_boundary, decode_cluster_id, decode_entry, decode_entry_key, decode_message,
    decode_node_id, encode_boundary, encode_message, entry_key, CLUSTER_ID_KEY, CONF_STATE_KEY,
    ENTRIES_END, HARD_STATE_KEY, MEMBERSHIP_KEY, NODE_ID_KEY, SNAPSHOT_KEY, TRUNCATED_KEY,
};
use self::db::{Batch, Db};
use self::log_state::{
    plan_compact, plan_persist, Boundary, CompactPlan, LogState, PersistPlan, TermLookup,
};
use crate::error::Error;

/// Everything one `Ready` (or `LightReady`) asks to persist, written by [`LogStore::persist`] in one
/// batch (group commit: at most one fsync per Ready; none when only the commit index moved, see
/// [`LogWrite::must_sync`]). Applied in raft-rs's documented order: `snapshot`,
/// then `entries`, then `hard_state`, then `conf_state`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogWrite {
    /// Consecutive entries; the first replaces any entry at its index and everything after it.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    pub conf_state: Option<ConfState>,
    /// The encoded membership table, written with the conf state it belongs to.
    pub membership: Option<Vec<u8>>,
    /// Metadata of a snapshot received from the leader: the log restarts after `snapshot.index`.
    pub snapshot: Option<SnapshotMetadata>,
}

/// What [`LogStorage::persist`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    /// The write was empty.
    Nothing,
    /// Written and fsynced.
    Synced,
    /// Written without an fsync: only the hard state's commit index changed (see the module docs).
    Unsynced,
}

impl LogWrite {
    /// Whether this write, over a log whose hard state is `current`, must be synced before it returns:
    /// anything but a hard state whose only change is its commit index. A commit index is never needed
    /// durably — a node that comes back with an older one learns it again from its leader, and a state
    /// machine ahead of it is allowed (`Node::new`) — so such a write reaches the disk with the next
    /// synced write (raft-rs's `Ready::must_sync`, etcd's `MustSync`). Everything a vote, an
    /// acknowledgement or a snapshot relies on is synced.
    pub fn must_sync(&self, current: &HardState) -> bool {
        let hard_state_needs_it = self
            .hard_state
            .as_ref()
            .is_some_and(|hs| hs.term != current.term || hs.vote != current.vote);
        !self.entries.is_empty()
            || self.snapshot.is_some()
            || self.conf_state.is_some()
            || self.membership.is_some()
            || hard_state_needs_it
    }
}

/// The Raft log over RocksDB. See the [module docs](self) for guarantees and the locking model.
pub struct LogStore {
    db: Db,
    state: RwLock<LogState>,
    registered: Mutex<Option<Snapshot>>,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.read_state();
        f.debug_struct("LogStore")
            .field("first_index", &s.first_index())
            .field("last_index", &s.last_index)
            .field("hard_state", &s.hard_state)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// Open the log store in `dir` (created if missing) for cluster `cluster_id`.
    ///
    /// On first open the cluster id is recorded (synced). Refuses, with nothing changed on disk:
    /// a store of another cluster ([`Error::ClusterMismatch`]); a log that ends before the persisted
    /// commit index ([`Error::CommitBeyondLog`]); undecodable metadata, a log whose first entry does not
    /// follow the truncation boundary, or a last entry under the wrong key ([`Error::Corruption`]).
    /// Entries between the first and the last are checked when read, not here.
    pub fn open(dir: &Path, cluster_id: &str) -> Result<LogStore, Error> {
        LogStore::open_with(dir, cluster_id, LogMemory::default())
    }

    /// [`LogStore::open`] with the log's RocksDB bounded to `memory`.
    pub fn open_with(dir: &Path, cluster_id: &str, memory: LogMemory) -> Result<LogStore, Error> {
        let db = Db::open(dir, memory)?;
        check_cluster(&db, cluster_id)?;
        let state = load_state(&db)?;
        if state.hard_state.commit > state.last_index {
            return Err(Error::CommitBeyondLog {
                commit: state.hard_state.commit,
                last_index: state.last_index,
            });
        }
        tracing::debug!(
            dir = %dir.display(),
            first_index = state.first_index(),
            last_index = state.last_index,
            commit = state.hard_state.commit,
            "opened raft log"
        );
        Ok(LogStore {
            db,
            state: RwLock::new(state),
            registered: Mutex::new(None),
        })
    }

    /// Persist one [`LogWrite`] — **persisted before return**: exactly one RocksDB batch, fsynced, so the
    /// caller may then send the messages that depend on it (raft-rs's `persisted_messages`).
    ///
    /// Semantics (as raft-rs's `MemStorage::apply_snapshot` + `append` + `set_hardstate` +
    /// `set_conf_state`): a snapshot drops the whole log, which restarts after `snapshot.index` with
    /// the snapshot's term as the boundary term, takes the snapshot's conf state, sets the hard state's
    /// commit to `snapshot.index` and its term to at least the snapshot's; entries replace every entry at
    /// or after the first one's index; hard state and conf state are stored as given.
    ///
    /// **No holes**: the first entry must lie in `[first_index, last_index + 1]` (after the snapshot, if
    /// any) and the others follow it one by one, else [`Error::NotContiguous`]. A snapshot older than
    /// the log is [`Error::SnapshotOutOfDate`]; a write leaving `commit > last_index` is
    /// [`Error::CommitBeyondLog`]. On any error nothing was written.
    ///
    /// **Idempotent** for entries, hard state and conf state: persisting them again leaves the same
    /// state. A snapshot, once applied, is older than the log, so a repeat is refused with
    /// `SnapshotOutOfDate` (nothing written). An empty write returns at once without an fsync.
    ///
    /// Failpoints (feature `failpoints`): `log_store::before_persist` just before the batch is written,
    /// `log_store::after_persist` after it is written and visible.
    pub fn persist(&self, w: &LogWrite) -> Result<Persisted, Error> {
        let mut state = self.write_state();
        let (plan, next) = plan_persist(&state, w)?;
        if plan.is_empty() {
            return Ok(Persisted::Nothing);
        }
        let sync = w.must_sync(&state.hard_state);
        let batch = encode_plan(&plan);
        fail::fail_point!("log_store::before_persist", |_| Err(failpoint_error(
            "log_store::before_persist"
        )));
        if sync {
            self.db.write_synced(batch)?;
        } else {
            self.db.write_unsynced(batch)?;
        }
        *state = next;
        drop(state);
        fail::fail_point!("log_store::after_persist", |_| Err(failpoint_error(
            "log_store::after_persist"
        )));
        Ok(if sync {
            Persisted::Synced
        } else {
            Persisted::Unsynced
        })
    }

    /// Drop the entries before `compact_index` — **persisted before return** (one synced batch).
    ///
    /// As raft-rs's `MemStorage::compact`: `compact_index ≤ first_index` is a no-op. The term of
    /// `compact_index - 1` is kept, so `term(first_index - 1)` keeps answering. `compact_index` may be
    /// `last_index + 1` (the log becomes empty but keeps its last index and term); beyond that is
    /// [`Error::CompactBeyondLog`] (where `MemStorage` panics). The caller must not compact past its
    /// applied index, so the compacted entries are committed: a hard state whose commit lags behind the
    /// new boundary is raised to it in the same batch (raft-rs refuses to start otherwise). **Idempotent.**
    ///
    /// Failpoints: `log_store::before_compact`, `log_store::after_compact`.
    pub fn compact(&self, compact_index: u64) -> Result<(), Error> {
        let mut state = self.write_state();
        let CompactPlan::Drop { from, to } = plan_compact(&state, compact_index)? else {
            return Ok(());
        };
        let boundary = Boundary {
            index: to.saturating_sub(1),
            term: self.term_inside(&state, to.saturating_sub(1))?,
        };
        let next = state.compacted(boundary);
        let mut batch = Batch::default();
        batch.delete_range(&entry_key(from), &entry_key(to));
        batch.put(TRUNCATED_KEY, &encode_boundary(boundary));
        if next.hard_state != state.hard_state {
            batch.put(HARD_STATE_KEY, &encode_message(&next.hard_state));
        }
        fail::fail_point!("log_store::before_compact", |_| Err(failpoint_error(
            "log_store::before_compact"
        )));
        self.db.write_synced(batch)?;
        *state = next;
        drop(state);
        tracing::debug!(first_index = to, "compacted raft log");
        fail::fail_point!("log_store::after_compact", |_| Err(failpoint_error(
            "log_store::after_compact"
        )));
        Ok(())
    }

    /// Check that this log belongs to node `id`, recording the id (synced) the first time. Refuses
    /// another node's log with [`Error::NodeMismatch`] (nothing changed on disk). A log written before
    /// node ids were recorded takes `id` on its first check.
    pub fn check_node_id(&self, id: u64) -> Result<(), Error> {
        match self.db.get(NODE_ID_KEY)? {
            Some(value) => match decode_node_id(&value)? {
                found if found == id => Ok(()),
                found => Err(Error::NodeMismatch {
                    found,
                    expected: id,
                }),
            },
            None => {
                let mut batch = Batch::default();
                batch.put(NODE_ID_KEY, &id.to_be_bytes());
                self.db.write_synced(batch)
            }
        }
    }

    /// Register the latest state-machine snapshot (metadata plus a small data token) for
    /// [`raft::Storage::snapshot`] to hand out. Not persisted; the latest registration wins; a snapshot
    /// with index 0 clears the registration.
    pub fn set_snapshot(&self, snap: Snapshot) {
        let registered = (snap.get_metadata().index > 0).then_some(snap);
        *self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = registered;
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.read_state().hard_state.clone()
    }

    /// The persisted conf state.
    pub fn conf_state(&self) -> ConfState {
        self.read_state().conf_state.clone()
    }

    /// The persisted membership table (encoded; empty if never written).
    pub fn membership(&self) -> Vec<u8> {
        self.read_state().membership.clone()
    }

    /// Metadata of the last snapshot applied through [`LogWrite::snapshot`] (default if none).
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.read_state().snapshot.clone()
    }

    fn read_state(&self) -> RwLockReadGuard<'_, LogState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, LogState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The term of an index known to lie in `[first_index - 1, last_index]`.
    fn term_inside(&self, state: &LogState, idx: u64) -> Result<u64, Error> {
        match state.term_lookup(idx) {
            TermLookup::Known(term) => Ok(term),
            TermLookup::OnDisk => Ok(self.read_entry(idx)?.term),
            TermLookup::Compacted | TermLookup::Unavailable => Err(Error::CompactBeyondLog {
                compact_index: idx.saturating_add(1),
                last_index: state.last_index,
            }),
        }
    }

    /// Read entry `idx`, which the in-memory view says exists: missing is a hole, i.e. corruption.
    fn read_entry(&self, idx: u64) -> Result<Entry, Error> {
        let key = entry_key(idx);
        match self.db.get(&key)? {
            Some(value) => decode_entry(&key, &value),
            None => Err(corruption(&key, "entry missing inside the log")),
        }
    }

    /// Entries `[low, high)` (all inside the log), cut by `max_size` as `raft::util::limit_size` does,
    /// reading no further than needed.
    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: Option<u64>,
    ) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        let mut budget = SizeBudget::new(max_size);
        let mut next = low;
        let mut full = false;
        self.db
            .scan(&entry_key(low), &entry_key(high), |key, value| {
                let entry = decode_entry(key, value)?;
                if entry.index != next {
                    return Err(corruption(&entry_key(next), "entry missing inside the log"));
                }
                if !budget.admit(u64::try_from(entry.encoded_len()).unwrap_or(u64::MAX)) {
                    full = true;
                    return Ok(false);
                }
                out.push(entry);
                next = next.saturating_add(1);
                Ok(true)
            })?;
        if !full && next != high {
            return Err(corruption(&entry_key(next), "entry missing inside the log"));
        }
        Ok(out)
    }
}

impl raft::Storage for LogStore {
    /// The persisted hard state and conf state (from memory).
    fn initial_state(&self) -> raft::Result<RaftState> {
        let s = self.read_state();
        Ok(RaftState::new(s.hard_state.clone(), s.conf_state.clone()))
    }

    /// Entries `[low, high)`, at least one if the range is not empty, then as many as fit `max_size`.
    /// `Compacted` if `low < first_index`; `Unavailable` if `high > last_index + 1` or `low > high`
    /// (raft-rs never asks that; `MemStorage` panics). Never `LogTemporarilyUnavailable`: reads are
    /// synchronous whatever the context says.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let s = self.read_state();
        if low < s.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > s.last_index.saturating_add(1) || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low == high {
            return Ok(Vec::new());
        }
        self.read_entries(low, high, max_size.into())
            .map_err(to_raft)
    }

    /// The term of `idx` for `idx` in `[first_index - 1, last_index]` (and of the last applied
    /// snapshot's index, as `MemStorage`); `Compacted` below, `Unavailable` above.
    fn term(&self, idx: u64) -> raft::Result<u64> {
        let s = self.read_state();
        match s.term_lookup(idx) {
            TermLookup::Known(term) => Ok(term),
            TermLookup::Compacted => Err(raft::Error::Store(StorageError::Compacted)),
            TermLookup::Unavailable => Err(raft::Error::Store(StorageError::Unavailable)),
            TermLookup::OnDisk => self.read_entry(idx).map(|e| e.term).map_err(to_raft),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read_state().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read_state().last_index)
    }

    /// The registered snapshot if its index is `≥ request_index` and `≥ first_index - 1`, else
    /// `SnapshotTemporarilyUnavailable` (see the module docs).
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let oldest_useful = self.read_state().truncated.index;
        let registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match registered.as_ref() {
            Some(snap) if snap.get_metadata().index >= request_index.max(oldest_useful) => {
                Ok(snap.clone())
            }
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}

/// Raft log storage the node can write.
pub trait LogStorage: raft::Storage {
    /// Make the whole write durable (one fsync) before returning — the node sends messages that depend on
    /// it right after — except a write that only moves the commit index, which may skip the fsync
    /// ([`LogWrite::must_sync`]); the answer says which it was.
    fn persist(&self, write: &LogWrite) -> Result<Persisted, Error>;
    /// Drop the entries before `compact_index` (durably). The caller never compacts past its applied index.
    fn compact(&self, compact_index: u64) -> Result<(), Error>;
    /// Register the snapshot (metadata plus the membership table as data) that `raft::Storage::snapshot`
    /// hands to raft-rs when a follower needs entries the log no longer has. In memory only.
    fn register_snapshot(&self, snapshot: Snapshot);
    /// The persisted membership table (encoded), empty if none was ever written.
    fn membership(&self) -> Vec<u8>;
}

impl LogStorage for LogStore {
    fn persist(&self, write: &LogWrite) -> Result<Persisted, Error> {
        LogStore::persist(self, write)
    }
    fn compact(&self, compact_index: u64) -> Result<(), Error> {
        LogStore::compact(self, compact_index)
    }
    fn register_snapshot(&self, snapshot: Snapshot) {
        self.set_snapshot(snapshot)
    }
    fn membership(&self) -> Vec<u8> {
        LogStore::membership(self)
    }
}

/// A crate error surfaced through `raft::Storage`.
fn to_raft(e: Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

#[cfg(feature = "failpoints")]
fn failpoint_error(name: &str) -> Error {
    Error::Storage(format!("failpoint {name}"))
}

/// Refuse a store of another cluster; record the id on first open.
fn check_cluster(db: &Db, expected: &str) -> Result<(), Error> {
    match db.get(CLUSTER_ID_KEY)? {
        Some(value) => {
            let found = decode_cluster_id(&value)?;
            if found == expected {
                Ok(())
            } else {
                Err(Error::ClusterMismatch {
                    found,
                    expected: expected.to_string(),
                })
            }
        }
        None if db.first_in(&[], ENTRIES_END)?.is_some() => Err(corruption(
            CLUSTER_ID_KEY,
            "missing in a non-empty raft log store",
        )),
        None => {
            let mut batch = Batch::default();
            batch.put(CLUSTER_ID_KEY, expected.as_bytes());
            db.write_synced(batch)
        }
    }
}

/// Load the in-memory view: metadata, truncation boundary, and the log's last entry.
fn load_state(db: &Db) -> Result<LogState, Error> {
    let truncated = match db.get(TRUNCATED_KEY)? {
        Some(value) => decode_boundary(&value)?,
        None => Boundary::default(),
    };
    let (last_index, last_term) = load_tail(db, truncated)?;
    Ok(LogState {
        truncated,
        last_index,
        last_term,
        hard_state: read_message(db, HARD_STATE_KEY)?,
        conf_state: read_message(db, CONF_STATE_KEY)?,
        membership: db.get(MEMBERSHIP_KEY)?.unwrap_or_default(),
        snapshot: read_message(db, SNAPSHOT_KEY)?,
    })
}

/// The last entry's index and term (the boundary's if the log is empty), after checking that the first
/// entry directly follows the truncation boundary.
fn load_tail(db: &Db, truncated: Boundary) -> Result<(u64, u64), Error> {
    let lower = entry_key(0);
    let Some((first_key, _)) = db.first_in(&lower, ENTRIES_END)? else {
        return Ok((truncated.index, truncated.term));
    };
    let first = decode_entry_key(&first_key)?;
    if first != truncated.index.saturating_add(1) {
        return Err(corruption(
            &first_key,
            &format!(
                "the log should start at {} (after the truncation boundary)",
                truncated.index.saturating_add(1)
            ),
        ));
    }
    match db.last_in(&lower, ENTRIES_END)? {
        Some((key, value)) => decode_entry(&key, &value).map(|e| (e.index, e.term)),
        None => Err(corruption(&first_key, "the log vanished while opening")),
    }
}

/// A prost message under a metadata key; the default if absent.
fn read_message<M: prost::Message + Default>(db: &Db, key: &[u8]) -> Result<M, Error> {
    match db.get(key)? {
        Some(value) => decode_message(key, &value),
        None => Ok(M::default()),
    }
}

/// One write's batch, in the plan's order: deletions first, so the puts after them win.
fn encode_plan(plan: &PersistPlan<'_>) -> Batch {
    let mut batch = Batch::default();
    if let Some(from) = plan.delete_entries_from {
        batch.delete_range(&entry_key(from), ENTRIES_END);
    }
    for e in plan.put_entries {
        batch.put(&entry_key(e.index), &encode_message(e));
    }
    if let Some(boundary) = plan.truncated {
        batch.put(TRUNCATED_KEY, &encode_boundary(boundary));
    }
    if let Some(meta) = &plan.snapshot {
        batch.put(SNAPSHOT_KEY, &encode_message(meta));
    }
    if let Some(hs) = &plan.hard_state {
        batch.put(HARD_STATE_KEY, &encode_message(hs));
    }
    if let Some(cs) = &plan.conf_state {
        batch.put(CONF_STATE_KEY, &encode_message(cs));
    }
    if let Some(m) = &plan.membership {
        batch.put(MEMBERSHIP_KEY, m);
    }
    batch
}

/// `raft::util::limit_size`, decided one entry at a time: the first entry is always admitted, then
/// entries while the running total stays `≤ max`; `None` or `raft::NO_LIMIT` admits everything.
struct SizeBudget {
    max: Option<u64>,
    used: u64,
    admitted: usize,
}

impl SizeBudget {
    fn new(max: Option<u64>) -> Self {
        SizeBudget {
            max: max.filter(|&m| m != raft::NO_LIMIT),
            used: 0,
            admitted: 0,
        }
    }

    fn admit(&mut self, size: u64) -> bool {
        self.used = self.used.saturating_add(size);
        let fits = match self.max {
            None => true,
            Some(max) => self.admitted == 0 || self.used <= max,
        };
        if fits {
            self.admitted += 1;
        }
        fits
    }
}

#[cfg(test)]
mod tests;
