//! Garbage collection decisions. Pure: the compaction filter and the GC step ask these functions what to
//! drop; `store` and `engine` do the dropping. This module knows only the key and value layouts
//! (`keys`, `values`), never the store: `store` calls into it (the compaction filter), not the reverse.
//!
//! Two mechanisms, neither of which copies data or forks:
//! * **Old versions** of a key are dropped by a RocksDB compaction filter: a version is dropped when a newer
//!   version of the same key with `ts <= safepoint` was seen earlier in the same compaction (so a reader at
//!   any `at >= safepoint` sees the newer one). A tombstone that is the newest version `<= safepoint` is
//!   dropped only in a full compaction, where no older version can survive in a file outside it.
//! * **Invalidated epochs** are dropped by range deletions, driven by the GC queue that every checkpoint
//!   appends to: once a checkpoint's ts is `<= safepoint`, every earlier epoch of that entity is
//!   unreadable (reads below the safepoint are refused) and its whole key range is deleted at once.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::keys;
use crate::values;

/// State shared between the engine and the compaction filters running on RocksDB's threads.
#[derive(Debug, Default)]
pub struct GcShared {
    safepoint: AtomicU64,
    versions_dropped: AtomicU64,
}

impl GcShared {
    pub fn safepoint(&self) -> u64 {
        self.safepoint.load(Ordering::Acquire)
    }

    /// Raise the safepoint (it never moves back). Returns the safepoint now in force.
    pub fn raise_safepoint(&self, to: u64) -> u64 {
        self.safepoint.fetch_max(to, Ordering::AcqRel).max(to)
    }

    pub fn count_dropped_version(&self) {
        self.versions_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn versions_dropped(&self) -> u64 {
        self.versions_dropped.load(Ordering::Relaxed)
    }
}

/// Per-compaction decision state for data keys. Keys arrive in order; versions of one key newest first.
#[derive(Debug)]
pub struct VersionGc {
    safepoint: u64,
    full_compaction: bool,
    current_prefix: Vec<u8>,
    /// A version `<= safepoint` of `current_prefix` was already kept in this compaction.
    covered: bool,
}

impl VersionGc {
    pub fn new(safepoint: u64, full_compaction: bool) -> Self {
        VersionGc {
            safepoint,
            full_compaction,
            current_prefix: Vec::new(),
            covered: false,
        }
    }

    /// Whether the compaction keeps this key/value.
    pub fn keep(&mut self, key: &[u8], value: &[u8]) -> bool {
        if key.first() != Some(&keys::DATA) {
            return true;
        }
        // An undecodable key is kept: `verify()` reports it; GC never destroys evidence.
        let Ok(decoded) = keys::decode_data_key(key) else {
            return true;
        };
        let prefix = &key[..decoded.prefix_len];
        if prefix != self.current_prefix.as_slice() {
            self.current_prefix.clear();
            self.current_prefix.extend_from_slice(prefix);
            self.covered = false;
        }
        if decoded.ts > self.safepoint {
            return true;
        }
        if self.covered {
            return false;
        }
        self.covered = true;
        !(self.full_compaction && values::is_tombstone(value))
    }
}

/// What reclaiming one GC-queue entry deletes: two key ranges (`[from, to)`) and the queue entry itself.
/// The engine turns it into one write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaim {
    /// Every data version of the entity in epochs below the new one.
    pub data: (Vec<u8>, Vec<u8>),
    /// The entity's epoch start records below the new epoch: no readable ts needs them any more.
    pub epoch_starts: (Vec<u8>, Vec<u8>),
    pub queue_key: Vec<u8>,
}

/// One GC-queue entry whose checkpoint is at or below the safepoint: everything of `entity` before
/// `new_epoch` can go.
pub fn reclaim_epochs(queue_key: &[u8], entity: &[u8], new_epoch: u64) -> Reclaim {
    Reclaim {
        data: (
            keys::epoch_block(entity, 0),
            keys::epoch_block(entity, new_epoch),
        ),
        epoch_starts: (
            keys::epoch_key(entity, 0),
            keys::epoch_key(entity, new_epoch),
        ),
        queue_key: queue_key.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, ts: u64, tombstone: bool) -> (Vec<u8>, Vec<u8>) {
        let v = if tombstone { None } else { Some(&b"v"[..]) };
        (
            keys::data_key(key.as_bytes(), 0, ts),
            values::encode_version(v),
        )
    }

    fn decide(gc: &mut VersionGc, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<bool> {
        entries.iter().map(|(k, v)| gc.keep(k, v)).collect()
    }

    #[test]
    fn keeps_newest_version_at_or_below_safepoint_and_everything_newer() {
        let entries = [
            version("a", 30, false),
            version("a", 20, false),
            version("a", 10, false),
            version("b", 5, false),
        ];
        assert_eq!(
            decide(&mut VersionGc::new(20, false), &entries),
            vec![true, true, false, true]
        );
        assert_eq!(
            decide(&mut VersionGc::new(0, false), &entries),
            vec![true, true, true, true]
        );
    }

    #[test]
    fn tombstones_go_only_in_full_compactions() {
        let entries = [version("a", 20, true), version("a", 10, false)];
        assert_eq!(
            decide(&mut VersionGc::new(25, false), &entries),
            vec![true, false]
        );
        assert_eq!(
            decide(&mut VersionGc::new(25, true), &entries),
            vec![false, false]
        );
        // A tombstone newer than the safepoint is kept even in a full compaction.
        assert_eq!(
            decide(&mut VersionGc::new(15, true), &entries),
            vec![true, true]
        );
    }

    #[test]
    fn non_data_and_garbage_keys_are_kept() {
        let mut gc = VersionGc::new(u64::MAX, true);
        assert!(gc.keep(&keys::epoch_key(b"p", 1), b"x"));
        assert!(gc.keep(b"d\0", b"\0"));
    }

    #[test]
    fn reclaiming_deletes_the_older_epochs_their_starts_and_the_queue_entry() {
        let queue_key = keys::gc_queue_key(40, b"p");
        let r = reclaim_epochs(&queue_key, b"p", 3);
        assert_eq!(
            r,
            Reclaim {
                data: (keys::epoch_block(b"p", 0), keys::epoch_block(b"p", 3)),
                epoch_starts: (keys::epoch_key(b"p", 0), keys::epoch_key(b"p", 3)),
                queue_key: queue_key.clone(),
            }
        );
        // The data range holds epochs 0..3 of `p` and nothing of epoch 3 or of another entity.
        let inside = keys::data_key(b"p/x", 2, 7);
        assert!(r.data.0 <= inside && inside < r.data.1);
        assert!(keys::data_key(b"p/x", 3, 7) >= r.data.1);
        let other = keys::data_key(b"q/x", 0, 7);
        assert!(!(r.data.0 <= other && other < r.data.1));
    }

    #[test]
    fn safepoint_only_rises() {
        let s = GcShared::default();
        assert_eq!(s.raise_safepoint(10), 10);
        assert_eq!(s.raise_safepoint(5), 10);
        assert_eq!(s.safepoint(), 10);
    }
}
