//! # engine — the kvs-raft storage engine
//!
//! A versioned (MVCC) key-value store over RocksDB, shaped as a Raft state machine, whose headline
//! feature is per-entity invalidation in O(1). It knows nothing of Raft, HTTP or TiKV
//! (architecture invariant); `store` is its only module that imports `rocksdb`.
//!
//! ## Model
//! * A key's **entity** is the part before its first `/` (`player:42/pos` → `player:42`).
//! * [`Engine::apply`] applies one Raft entry: `(index, ts, ops)`. Every write of the entry gets commit
//!   timestamp `ts`. Ops are put, delete, incr (ASCII decimal), checkpoint, get and etcd-style txn, each
//!   with optional epoch fencing; per-op outcomes are deterministic functions of state, ops and ts.
//! * A **checkpoint** of entity `E` at ts `T` bumps `E`'s epoch. Keys of `E` live in per-epoch key ranges,
//!   so from `T` on reads see only the new (empty) epoch, while reads at `at < T` still see the old one.
//! * Reads take `at` (`u64::MAX` = latest applied). Reads below the **read floor**
//!   (`max(now − retention, GC safepoint)`) fail with [`Error::VersionGone`].
//!
//! ## Guarantees
//! * **Atomic apply.** An entry's effects and the applied index are written in one RocksDB `WriteBatch`:
//!   after any crash the state reflects exactly the entries up to the stored applied index, never part of one.
//! * **Durability.** `apply(.., sync = true)` returns after the WAL holding the batch is fsynced: a
//!   `kill -9` or power loss after that keeps it. With `sync = false` a crash may lose a suffix of recent
//!   entries (never a middle one); the Raft log above is then the source of truth and re-applies them.
//! * **Checkpoint cost.** A checkpoint writes three constant-size records (epoch start, crossing, GC-queue
//!   entry), whatever the number of keys the entity has. The old epoch is reclaimed later by one range
//!   deletion once the checkpoint is below the GC safepoint.
//! * **Fencing.** A write carrying `epoch = N` when the entity's epoch is not `N` fails with
//!   [`OpError::StaleEpoch`] and has no effect, so late packets cannot resurrect invalidated state.
//! * **Crossing lookups.** [`Engine::crossed`] consults an in-memory bloom filter first. The filter has **no
//!   false negatives**: a crossing is added before the batch that stores it is written, and the filter is
//!   rebuilt from disk at open and after a snapshot install (with lookups held during the switch). A
//!   negative answer from it costs no disk read.
//! * **Snapshots.** [`Engine::write_snapshot`] streams a consistent point-in-time copy in self-checking
//!   chunks; [`Engine::install_snapshot`] verifies the whole stream before changing anything and then
//!   switches atomically (an interrupted switch is finished by the next `open`). [`verify_image`] runs
//!   the install's checks on a stream without installing it (a backup file's image).
//! * **Change feed.** With [`EngineConfig::change_feed`], applying an entry also records its effects
//!   ([`Change`]: the resulting value or tombstone of every write, every checkpoint's new epoch) under
//!   its log index, in the same batch, so the feed is as durable as the state and identical on every
//!   replica. [`Engine::changes`] reads it in log order; [`Op::SyncCursor`] records the replicated sync
//!   cursor (never moving back) and trims the feed up to it, in its own batch. Feed and cursor travel in
//!   snapshots. The engine does not know who consumes the feed.
//! * **GC** never copies the data set or forks: old versions are dropped by a compaction filter, old
//!   epochs by range deletes, each step bounded ([`Engine::gc_step`]'s budget).
//!
//! ## Memory budget
//! Bounded by configuration ([`EngineConfig`]):
//!
//! ```text
//! RSS(engine) ≈ block_cache_bytes                        (data, index and filter blocks: all in the cache)
//!             + write_buffer_bytes × max_write_buffers   (memtables; a WriteBufferManager stalls writes above)
//!             + crossing filter ≈ 2 × 1.44 × log2(1/p) bits × max(crossings, expected)
//!             + per-read/per-apply working set (one entry's ops; one scan page)
//! ```
//! With the defaults (128 MiB cache, 3 × 32 MiB memtables, p = 1 %, 1 M crossings) that is about 230 MiB
//! plus ~2.4 MiB of filter per million crossings. Nothing grows with the number of keys or versions.

mod apply;
mod bloom;
pub mod clock;
pub mod codec;
mod engine;
mod error;
mod gc;
mod keys;
mod op;
mod snapshot;
mod store;
mod values;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    image_applied, verify_image, ApplyOutput, Engine, EngineConfig, EngineStats, EntityView,
    GcReport, ScanPage, ScanRequest, VerifyReport,
};
pub use error::Error;
/// The first key after every key that starts with a prefix (for range scans over a prefix).
pub use keys::prefix_end;
pub use op::{
    Change, ChangeEntry, CmpOp, Compare, Crossing, Op, OpError, OpOutcome, OpResult, Versioned,
    WriteCond,
};
pub use snapshot::SnapshotMeta;
pub use store::StoreMemory;
pub use values::Applied;

/// The entity a user key belongs to, if any.
pub fn entity_of(key: &[u8]) -> Option<&[u8]> {
    keys::entity_of(key)
}
