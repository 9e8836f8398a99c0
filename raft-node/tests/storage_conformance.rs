//! One conformance suite for Raft log storage, run against [`LogStore`] (over RocksDB) and raft-rs's
//! `MemStorage` (the reference): every test in `conformance!` is instantiated for both. Then tests of what
//! only `LogStore` promises (cluster id, refusals instead of panics, snapshot registration), and a
//! proptest that applies random valid operation sequences — including restarts — to both and asserts
//! they answer every `raft::Storage` query identically.
//!
//! Known deviation of the reference, asserted rather than hidden: raft-rs 0.7's `MemStorage::compact`
//! does not keep the term of the last compacted entry, so `term(first_index - 1)` after a compaction is
//! `Compacted` there, contrary to the `Storage::term` contract that `LogStore` follows
//! ([`Harness::KEEPS_COMPACTED_TERM`]). `MemStorage` also panics (not exercised here) when `entries` is
//! called on a log without entries, and its `compact(last_index + 1)` forgets the log's last index; the
//! shared tests and the proptest avoid those inputs, and `LogStore`'s behaviour there is tested alone.
//!
//! Deliberate deviation of `LogStore`: compacting past the persisted hard state's commit raises that
//! commit to the new boundary (compacted entries were applied, so committed; raft-rs refuses to start on
//! a commit below the log's first index − 1). The proptest gives the reference the same raise.
//!
//! Corrupted bytes on disk (which need the private key layout) are tested in `src/storage/tests.rs`.

use std::path::PathBuf;

use proptest::prelude::*;
use prost::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, Storage, StorageError};
use raft_node::storage::{LogStore, LogWrite, Persisted};
use raft_node::Error;
use tempfile::TempDir;

const CLUSTER: &str = "site-a";

// ---------------------------------------------------------------------------------------------------
// The harness: what the suite needs from an implementation.

/// A Raft log storage under test, driven through the operations the ready loop performs.
trait Harness: Sized {
    type S: Storage;
    /// Whether `term(first_index - 1)` answers after a compaction (the `Storage` contract).
    const KEEPS_COMPACTED_TERM: bool;
    fn fresh() -> Self;
    fn storage(&self) -> &Self::S;
    fn append(&mut self, ents: &[Entry]);
    fn compact(&mut self, compact_index: u64);
    /// Apply a received snapshot's metadata; `false` if refused as out of date (nothing changed).
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> bool;
    fn set_hard_state(&mut self, hs: HardState);
    fn set_conf_state(&mut self, cs: ConfState);
    /// Simulate a process restart: reopen from disk (a no-op in memory).
    fn restart(&mut self);
}

struct Mem(MemStorage);

impl Harness for Mem {
    type S = MemStorage;
    const KEEPS_COMPACTED_TERM: bool = false;

    fn fresh() -> Self {
        Mem(MemStorage::new())
    }
    fn storage(&self) -> &MemStorage {
        &self.0
    }
    fn append(&mut self, ents: &[Entry]) {
        self.0.wl().append(ents).unwrap();
    }
    fn compact(&mut self, compact_index: u64) {
        self.0.wl().compact(compact_index).unwrap();
    }
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> bool {
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        match self.0.wl().apply_snapshot(snap) {
            Ok(()) => true,
            Err(raft::Error::Store(StorageError::SnapshotOutOfDate)) => false,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    fn set_hard_state(&mut self, hs: HardState) {
        self.0.wl().set_hardstate(hs);
    }
    fn set_conf_state(&mut self, cs: ConfState) {
        self.0.wl().set_conf_state(cs);
    }
    fn restart(&mut self) {}
}

struct Disk {
    dir: TempDir,
    store: Option<LogStore>,
}

impl Disk {
    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
    fn store(&self) -> &LogStore {
        self.store.as_ref().expect("store is open")
    }
    fn persist(&mut self, w: LogWrite) {
        self.store().persist(&w).unwrap();
    }
}

impl Harness for Disk {
    type S = LogStore;
    const KEEPS_COMPACTED_TERM: bool = true;

    fn fresh() -> Self {
        let dir = TempDir::new().unwrap();
        let store = LogStore::open(dir.path(), CLUSTER).unwrap();
        Disk {
            dir,
            store: Some(store),
        }
    }
    fn storage(&self) -> &LogStore {
        self.store()
    }
    fn append(&mut self, ents: &[Entry]) {
        self.persist(LogWrite {
            entries: ents.to_vec(),
            ..Default::default()
        });
    }
    fn compact(&mut self, compact_index: u64) {
        self.store().compact(compact_index).unwrap();
    }
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> bool {
        let w = LogWrite {
            snapshot: Some(meta),
            ..Default::default()
        };
        match self.store().persist(&w) {
            Ok(_) => true,
            Err(Error::SnapshotOutOfDate { .. }) => false,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    fn set_hard_state(&mut self, hs: HardState) {
        self.persist(LogWrite {
            hard_state: Some(hs),
            ..Default::default()
        });
    }
    fn set_conf_state(&mut self, cs: ConfState) {
        self.persist(LogWrite {
            conf_state: Some(cs),
            ..Default::default()
        });
    }
    fn restart(&mut self) {
        drop(self.store.take());
        self.store = Some(LogStore::open(self.dir.path(), CLUSTER).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers.

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn entry(index: u64, term: u64) -> Entry {
    let len = usize::try_from(index % 7).unwrap() * 10 + 5;
    Entry {
        index,
        term,
        data: vec![u8::try_from(index % 251).unwrap(); len],
        ..Default::default()
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn size(e: &Entry) -> u64 {
    u64::try_from(e.encoded_len()).unwrap()
}

fn meta(index: u64, term: u64, voters: Vec<u64>) -> SnapshotMetadata {
    let mut m = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    m.mut_conf_state().voters = voters;
    m
}

fn compacted<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Compacted)))
}

fn unavailable<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Unavailable)))
}

/// Everything `raft::Storage` says about the log, for comparisons before and after a restart.
#[derive(Debug, PartialEq)]
struct View {
    hard_state: HardState,
    conf_state: ConfState,
    first: u64,
    last: u64,
    terms: Vec<Result<u64, String>>,
    entries: Vec<Entry>,
}

fn view<S: Storage>(s: &S) -> View {
    let state = s.initial_state().unwrap();
    let first = s.first_index().unwrap();
    let last = s.last_index().unwrap();
    let terms = (0..=last + 2)
        .map(|i| s.term(i).map_err(|e| e.to_string()))
        .collect();
    let entries = if last >= first {
        s.entries(first, last + 1, None, ctx()).unwrap()
    } else {
        Vec::new()
    };
    View {
        hard_state: state.hard_state,
        conf_state: state.conf_state,
        first,
        last,
        terms,
        entries,
    }
}

/// Restart and check that nothing observable changed.
fn restart_keeps_everything<H: Harness>(h: &mut H) {
    let before = view(h.storage());
    h.restart();
    assert_eq!(view(h.storage()), before);
}

// ---------------------------------------------------------------------------------------------------
// The shared suite.

fn initial_state_is_empty<H: Harness>() {
    let mut h = H::fresh();
    for _ in 0..2 {
        let s = h.storage();
        let state = s.initial_state().unwrap();
        assert_eq!(state.hard_state, HardState::default());
        assert_eq!(state.conf_state, ConfState::default());
        assert!(!state.initialized());
        assert_eq!(s.first_index().unwrap(), 1);
        assert_eq!(s.last_index().unwrap(), 0);
        assert_eq!(s.term(0).unwrap(), 0);
        assert!(unavailable(s.term(1)));
        h.restart();
    }
}

fn appended_entries_read_back<H: Harness>() {
    let mut h = H::fresh();
    let ents = entries(1..=5, 1);
    h.append(&ents[..2]);
    h.append(&ents[2..]);
    let s = h.storage();
    assert_eq!(s.first_index().unwrap(), 1);
    assert_eq!(s.last_index().unwrap(), 5);
    assert_eq!(s.entries(1, 6, None, ctx()).unwrap(), ents);
    assert_eq!(s.entries(2, 4, None, ctx()).unwrap(), ents[1..3].to_vec());
    assert_eq!(s.entries(5, 6, None, ctx()).unwrap(), ents[4..].to_vec());
    assert_eq!(s.entries(3, 3, None, ctx()).unwrap(), Vec::<Entry>::new());
    for e in &ents {
        assert_eq!(s.term(e.index).unwrap(), e.term);
    }
    restart_keeps_everything(&mut h);
}

fn entries_respect_max_size<H: Harness>() {
    let mut h = H::fresh();
    let ents = entries(1..=6, 1);
    h.append(&ents);
    let s = h.storage();
    let (s1, s2, s3) = (size(&ents[1]), size(&ents[2]), size(&ents[3]));
    let cases = [
        (Some(0), 1),
        (Some(1), 1),
        (Some(s1), 1),
        (Some(s1 + s2 - 1), 1),
        (Some(s1 + s2), 2),
        (Some(s1 + s2 + s3), 3),
        (Some(u64::MAX - 1), 5),
        (Some(raft::NO_LIMIT), 5),
        (None, 5),
    ];
    for (max, want) in cases {
        let got = s.entries(2, 7, max, ctx()).unwrap();
        assert_eq!(got, ents[1..1 + want].to_vec(), "max_size {max:?}");
    }
    // At least one entry even when it alone exceeds the limit.
    assert_eq!(
        s.entries(6, 7, Some(1), ctx()).unwrap(),
        vec![ents[5].clone()]
    );
}

fn boundaries_and_errors<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=5, 1));
    h.append(&entries(6..=8, 2));
    h.compact(4);
    for _ in 0..2 {
        let s = h.storage();
        assert_eq!(s.first_index().unwrap(), 4);
        assert_eq!(s.last_index().unwrap(), 8);
        assert!(compacted(s.entries(3, 5, None, ctx())));
        assert!(compacted(s.entries(1, 9, None, ctx())));
        assert_eq!(s.entries(4, 9, None, ctx()).unwrap().len(), 5);
        assert_eq!(s.entries(8, 9, None, ctx()).unwrap(), vec![entry(8, 2)]);
        assert!(compacted(s.term(1)));
        assert!(compacted(s.term(2)));
        assert_eq!(s.term(4).unwrap(), 1);
        assert_eq!(s.term(5).unwrap(), 1);
        assert_eq!(s.term(6).unwrap(), 2);
        assert_eq!(s.term(8).unwrap(), 2);
        assert!(unavailable(s.term(9)));
        assert!(unavailable(s.term(100)));
        h.restart();
    }
}

fn conflicting_suffix_is_replaced<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=5, 1));
    // Appending right after the end keeps everything.
    h.append(&entries(6..=6, 1));
    // A conflict at 3 drops 3..=6, even past the new entries' end.
    h.append(&entries(3..=4, 2));
    let s = h.storage();
    assert_eq!(s.last_index().unwrap(), 4);
    let mut want = entries(1..=2, 1);
    want.extend(entries(3..=4, 2));
    assert_eq!(s.entries(1, 5, None, ctx()).unwrap(), want);
    assert!(unavailable(s.term(5)));
    assert!(unavailable(s.term(6)));
    restart_keeps_everything(&mut h);
    // Rewriting from the very first index is allowed too.
    h.append(&entries(1..=2, 3));
    let s = h.storage();
    assert_eq!(s.last_index().unwrap(), 2);
    assert_eq!(s.entries(1, 3, None, ctx()).unwrap(), entries(1..=2, 3));
    restart_keeps_everything(&mut h);
}

fn compaction_keeps_the_boundary_term<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=3, 1));
    h.append(&entries(4..=6, 2));
    h.compact(5);
    // No-ops: at or below the first index.
    h.compact(5);
    h.compact(2);
    for _ in 0..2 {
        let s = h.storage();
        assert_eq!(s.first_index().unwrap(), 5);
        assert_eq!(s.last_index().unwrap(), 6);
        assert_eq!(s.entries(5, 7, None, ctx()).unwrap(), entries(5..=6, 2));
        assert!(compacted(s.term(3)));
        if H::KEEPS_COMPACTED_TERM {
            assert_eq!(s.term(4).unwrap(), 2);
        } else {
            assert!(compacted(s.term(4)));
        }
        h.restart();
    }
    // Compacting up to the last entry leaves one entry.
    h.compact(6);
    let s = h.storage();
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (6, 6));
    assert_eq!(s.entries(6, 7, None, ctx()).unwrap(), entries(6..=6, 2));
    restart_keeps_everything(&mut h);
}

fn snapshot_resets_the_log<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=5, 1));
    h.set_hard_state(HardState {
        term: 1,
        vote: 2,
        commit: 4,
    });
    assert!(h.apply_snapshot(meta(10, 3, vec![1, 2, 3])));
    for _ in 0..2 {
        let s = h.storage();
        assert_eq!(s.first_index().unwrap(), 11);
        assert_eq!(s.last_index().unwrap(), 10);
        assert_eq!(s.term(10).unwrap(), 3);
        assert!(compacted(s.term(9)));
        assert!(compacted(s.term(5)));
        assert!(unavailable(s.term(11)));
        assert!(compacted(s.entries(5, 6, None, ctx())));
        let state = s.initial_state().unwrap();
        assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
        // MemStorage: commit := snapshot index, term := max(term, snapshot term), vote kept.
        assert_eq!(
            state.hard_state,
            HardState {
                term: 3,
                vote: 2,
                commit: 10
            }
        );
        h.restart();
    }
    h.append(&entries(11..=12, 3));
    let s = h.storage();
    assert_eq!(s.entries(11, 13, None, ctx()).unwrap(), entries(11..=12, 3));
    restart_keeps_everything(&mut h);
}

fn snapshot_inside_the_log_drops_all_entries<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=5, 1));
    h.compact(2);
    assert!(h.apply_snapshot(meta(3, 1, vec![1])));
    let s = h.storage();
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (4, 3));
    assert_eq!(s.term(3).unwrap(), 1);
    assert!(unavailable(s.term(4)));
    restart_keeps_everything(&mut h);
}

fn snapshot_older_than_the_log_is_refused<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=5, 1));
    h.compact(3);
    let before = view(h.storage());
    assert!(!h.apply_snapshot(meta(2, 1, vec![1])));
    assert!(!h.apply_snapshot(meta(1, 1, vec![1])));
    assert_eq!(view(h.storage()), before);
    // A snapshot at the first index is accepted.
    assert!(h.apply_snapshot(meta(3, 1, vec![1])));
    assert_eq!(h.storage().first_index().unwrap(), 4);
}

fn hard_state_and_conf_state_round_trip<H: Harness>() {
    let mut h = H::fresh();
    h.append(&entries(1..=3, 2));
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 2,
    };
    let mut cs = ConfState::from((vec![1, 2, 3], vec![4]));
    cs.voters_outgoing = vec![1, 2, 5];
    cs.learners_next = vec![5];
    cs.auto_leave = true;
    h.set_hard_state(hs.clone());
    h.set_conf_state(cs.clone());
    for _ in 0..2 {
        let state = h.storage().initial_state().unwrap();
        assert_eq!(state.hard_state, hs);
        assert_eq!(state.conf_state, cs);
        assert!(state.initialized());
        h.restart();
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod mem_storage {
            $( #[test] fn $test() { super::$test::<super::Mem>(); } )*
        }
        mod log_store {
            $( #[test] fn $test() { super::$test::<super::Disk>(); } )*
        }
    };
}

conformance!(
    initial_state_is_empty,
    appended_entries_read_back,
    entries_respect_max_size,
    boundaries_and_errors,
    conflicting_suffix_is_replaced,
    compaction_keeps_the_boundary_term,
    snapshot_resets_the_log,
    snapshot_inside_the_log_drops_all_entries,
    snapshot_older_than_the_log_is_refused,
    hard_state_and_conf_state_round_trip,
);

// ---------------------------------------------------------------------------------------------------
// What only LogStore promises.

mod log_store_only {
    use super::*;

    fn disk_with(ents: Vec<Entry>, commit: u64) -> Disk {
        let mut d = Disk::fresh();
        d.persist(LogWrite {
            entries: ents,
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit,
            }),
            ..Default::default()
        });
        d
    }

    #[test]
    fn only_a_commit_index_change_is_written_without_a_sync_and_a_restart_keeps_it() {
        let mut d = disk_with(entries(1..=5, 1), 2);
        let hs = |term, vote, commit| LogWrite {
            hard_state: Some(HardState { term, vote, commit }),
            ..Default::default()
        };
        let s = d.store();
        assert_eq!(s.persist(&hs(1, 1, 4)).unwrap(), Persisted::Unsynced);
        assert_eq!(s.persist(&LogWrite::default()).unwrap(), Persisted::Nothing);
        // Votes and terms are what a node promised: synced.
        assert_eq!(s.persist(&hs(1, 2, 4)).unwrap(), Persisted::Synced);
        assert_eq!(s.persist(&hs(2, 2, 4)).unwrap(), Persisted::Synced);
        // Entries (an acknowledgement relies on them) are synced, with a commit change or without.
        let append = LogWrite {
            entries: entries(6..=6, 2),
            hard_state: Some(HardState {
                term: 2,
                vote: 2,
                commit: 5,
            }),
            ..Default::default()
        };
        assert_eq!(s.persist(&append).unwrap(), Persisted::Synced);
        let conf = LogWrite {
            conf_state: Some(ConfState::from((vec![1, 2], vec![]))),
            ..Default::default()
        };
        assert_eq!(s.persist(&conf).unwrap(), Persisted::Synced);
        assert_eq!(s.persist(&hs(2, 2, 6)).unwrap(), Persisted::Unsynced);
        // A process restart (not a power loss) keeps the unsynced write: it is in the OS already.
        d.restart();
        let state = d.store().initial_state().unwrap();
        assert_eq!(
            (
                state.hard_state.term,
                state.hard_state.vote,
                state.hard_state.commit
            ),
            (2, 2, 6)
        );
    }

    #[test]
    fn another_cluster_id_is_refused() {
        let mut d = disk_with(entries(1..=3, 1), 2);
        drop(d.store.take());
        match LogStore::open(&d.path(), "site-b") {
            Err(Error::ClusterMismatch { found, expected }) => {
                assert_eq!((found.as_str(), expected.as_str()), (CLUSTER, "site-b"));
            }
            other => panic!("expected ClusterMismatch, got {other:?}"),
        }
        // The refused open changed nothing.
        let store = LogStore::open(&d.path(), CLUSTER).unwrap();
        assert_eq!(store.last_index().unwrap(), 3);
    }

    #[test]
    fn a_write_leaving_commit_beyond_the_log_is_refused_and_changes_nothing() {
        let mut d = disk_with(entries(1..=3, 1), 3);
        let before = view(d.storage());
        let big_commit = LogWrite {
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: 9,
            }),
            ..Default::default()
        };
        let truncate_committed = LogWrite {
            entries: entries(2..=2, 2),
            ..Default::default()
        };
        for w in [big_commit, truncate_committed] {
            assert!(matches!(
                d.store().persist(&w),
                Err(Error::CommitBeyondLog { .. })
            ));
            assert_eq!(view(d.storage()), before);
        }
        d.restart();
        assert_eq!(view(d.storage()), before);
    }

    #[test]
    fn holes_and_rewrites_of_compacted_entries_are_refused() {
        let d = disk_with(entries(1..=5, 1), 0);
        d.store().compact(3).unwrap();
        let before = view(d.storage());
        let bad = [
            (entries(7..=8, 1), 7),
            (entries(2..=4, 1), 2),
            (vec![entry(6, 1), entry(8, 1)], 8),
            (vec![entry(6, 1), entry(6, 1)], 6),
        ];
        for (ents, at) in bad {
            let w = LogWrite {
                entries: ents,
                ..Default::default()
            };
            match d.store().persist(&w) {
                Err(Error::NotContiguous { index, .. }) => assert_eq!(index, at),
                other => panic!("expected NotContiguous, got {other:?}"),
            }
            assert_eq!(view(d.storage()), before);
        }
    }

    #[test]
    fn compaction_past_the_end_is_an_error_and_up_to_the_end_empties_the_log() {
        let mut d = disk_with(entries(1..=5, 2), 5);
        assert!(matches!(
            d.store().compact(7),
            Err(Error::CompactBeyondLog {
                compact_index: 7,
                last_index: 5
            })
        ));
        d.store().compact(6).unwrap();
        for _ in 0..2 {
            let s = d.storage();
            assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (6, 5));
            assert_eq!(s.term(5).unwrap(), 2);
            assert!(compacted(s.term(4)));
            assert!(unavailable(s.term(6)));
            assert!(compacted(s.entries(5, 6, None, ctx())));
            assert_eq!(s.entries(6, 6, None, ctx()).unwrap(), Vec::<Entry>::new());
            d.restart();
        }
        d.append(&entries(6..=7, 3));
        assert_eq!(
            d.storage().entries(6, 8, None, ctx()).unwrap(),
            entries(6..=7, 3)
        );
    }

    #[test]
    fn out_of_range_reads_are_errors_not_panics() {
        let d = disk_with(entries(1..=3, 1), 0);
        let s = d.storage();
        assert!(unavailable(s.entries(2, 5, None, ctx())));
        assert!(unavailable(s.entries(3, 2, None, ctx())));
        let empty = Disk::fresh();
        assert_eq!(
            empty.storage().entries(1, 1, None, ctx()).unwrap(),
            Vec::<Entry>::new()
        );
    }

    #[test]
    fn one_write_carries_a_whole_ready_and_is_idempotent() {
        let mut d = disk_with(entries(1..=3, 1), 1);
        let w = LogWrite {
            snapshot: Some(meta(5, 2, vec![1, 2])),
            entries: entries(6..=7, 2),
            hard_state: Some(HardState {
                term: 2,
                vote: 2,
                commit: 6,
            }),
            conf_state: Some(ConfState::from((vec![1, 2, 3], vec![]))),
            membership: Some(b"members".to_vec()),
        };
        d.persist(w.clone());
        let once = view(d.storage());
        assert_eq!((once.first, once.last), (6, 7));
        assert_eq!(once.hard_state.commit, 6);
        assert_eq!(once.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(d.store().snapshot_metadata(), meta(5, 2, vec![1, 2]));
        assert_eq!(d.store().hard_state(), once.hard_state);
        assert_eq!(d.store().conf_state(), once.conf_state);
        // Repeating the write: its snapshot is now older than the log and refused, changing nothing;
        // the rest of it is idempotent.
        assert!(matches!(
            d.store().persist(&w),
            Err(Error::SnapshotOutOfDate {
                index: 5,
                first_index: 6
            })
        ));
        assert_eq!(view(d.storage()), once);
        d.persist(LogWrite {
            snapshot: None,
            ..w
        });
        assert_eq!(view(d.storage()), once);
        d.restart();
        assert_eq!(view(d.storage()), once);
        assert_eq!(d.store().snapshot_metadata(), meta(5, 2, vec![1, 2]));
        // An empty write is a no-op.
        d.persist(LogWrite::default());
        assert_eq!(view(d.storage()), once);
    }

    #[test]
    fn registered_snapshots_are_served_when_recent_enough() {
        let mut d = disk_with(entries(1..=8, 1), 8);
        let s = d.store();
        let unavailable_snap = |r: raft::Result<Snapshot>| {
            matches!(
                r,
                Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable
                ))
            )
        };
        assert!(unavailable_snap(s.snapshot(0, 2)));
        let mut snap = Snapshot {
            data: b"token-6".to_vec(),
            ..Default::default()
        };
        snap.set_metadata(meta(6, 1, vec![1, 2, 3]));
        s.set_snapshot(snap.clone());
        assert_eq!(s.snapshot(0, 2).unwrap(), snap);
        assert_eq!(s.snapshot(6, 2).unwrap(), snap);
        assert!(unavailable_snap(s.snapshot(7, 2)));
        // Compacting up to the snapshot keeps it useful; past it makes it stale.
        s.compact(7).unwrap();
        assert_eq!(s.snapshot(0, 2).unwrap(), snap);
        s.compact(8).unwrap();
        assert!(unavailable_snap(s.snapshot(0, 2)));
        // Registration is in memory only.
        s.set_snapshot(snap.clone());
        let mut newer = snap.clone();
        newer.set_metadata(meta(8, 1, vec![1, 2, 3]));
        s.set_snapshot(newer.clone());
        assert_eq!(s.snapshot(8, 2).unwrap(), newer);
        d.restart();
        assert!(unavailable_snap(d.store().snapshot(0, 2)));
        // Index 0 clears the registration.
        d.store().set_snapshot(newer);
        d.store().set_snapshot(Snapshot::default());
        assert!(unavailable_snap(d.store().snapshot(0, 2)));
    }
}

// ---------------------------------------------------------------------------------------------------
// Model test: MemStorage and LogStore answer identically under random valid operations.

/// Raw choices, turned into a valid operation against the current log by [`Pair::apply`].
#[derive(Clone, Debug)]
enum Op {
    Append {
        at: u64,
        count: u64,
        new_term: bool,
    },
    Compact {
        at: u64,
    },
    Snapshot {
        ahead: u64,
        new_term: bool,
        voters: Vec<u64>,
    },
    HardState {
        commit: u64,
        vote: u64,
    },
    ConfState {
        voters: Vec<u64>,
        learners: Vec<u64>,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let ids = || prop::collection::vec(1u64..6, 0..4);
    prop_oneof![
        6 => (any::<u64>(), 1u64..5, any::<bool>())
            .prop_map(|(at, count, new_term)| Op::Append { at, count, new_term }),
        2 => any::<u64>().prop_map(|at| Op::Compact { at }),
        1 => (0u64..6, any::<bool>(), ids())
            .prop_map(|(ahead, new_term, voters)| Op::Snapshot { ahead, new_term, voters }),
        2 => (any::<u64>(), 0u64..4).prop_map(|(commit, vote)| Op::HardState { commit, vote }),
        1 => (ids(), ids()).prop_map(|(voters, learners)| Op::ConfState { voters, learners }),
        1 => Just(Op::Restart),
    ]
}

struct Pair {
    mem: Mem,
    disk: Disk,
    /// The highest term handed out so far (terms in the log never decrease).
    term: u64,
    /// The truncation boundary (index, term) `LogStore` must keep and `MemStorage` may forget.
    boundary: (u64, u64),
}

/// A value in `[lo, hi]` picked by `seed`.
fn pick(seed: u64, lo: u64, hi: u64) -> u64 {
    lo + seed % (hi - lo + 1)
}

impl Pair {
    fn new() -> Self {
        Pair {
            mem: Mem::fresh(),
            disk: Disk::fresh(),
            term: 1,
            boundary: (0, 0),
        }
    }

    fn first_last(&self) -> (u64, u64) {
        let s = self.mem.storage();
        (s.first_index().unwrap(), s.last_index().unwrap())
    }

    fn commit(&self) -> u64 {
        self.mem
            .storage()
            .initial_state()
            .unwrap()
            .hard_state
            .commit
    }

    fn next_term(&mut self, new_term: bool) -> u64 {
        if new_term {
            self.term += 1;
        }
        self.term
    }

    /// Apply `op`, made valid for both: no holes, no rewrite of committed or compacted entries, no
    /// compaction past the last entry, commit within the log, snapshots not older than the log.
    fn apply(&mut self, op: &Op) {
        let (first, last) = self.first_last();
        match op {
            Op::Append {
                at,
                count,
                new_term,
            } => {
                let start = pick(*at, first.max(self.commit() + 1), last + 1);
                let term = self.next_term(*new_term);
                let ents: Vec<Entry> = (start..start + count).map(|i| entry(i, term)).collect();
                self.mem.append(&ents);
                self.disk.append(&ents);
            }
            Op::Compact { at } => {
                let idx = pick(*at, first.saturating_sub(1), last.max(first));
                if idx > first && idx <= last {
                    self.boundary = (idx - 1, self.mem.storage().term(idx - 1).unwrap());
                }
                if idx <= last {
                    self.mem.compact(idx);
                    self.disk.compact(idx);
                    // The documented deviation: LogStore raises a commit that lags behind the compacted
                    // entries; the reference is given the same raise.
                    let hs = self.mem.storage().initial_state().unwrap().hard_state;
                    if idx > first && hs.commit < idx - 1 {
                        self.mem.set_hard_state(HardState {
                            commit: idx - 1,
                            ..hs
                        });
                    }
                }
            }
            Op::Snapshot {
                ahead,
                new_term,
                voters,
            } => {
                let term = self.next_term(*new_term);
                let m = meta(first + ahead, term, voters.clone());
                assert!(self.mem.apply_snapshot(m.clone()));
                assert!(self.disk.apply_snapshot(m));
                self.boundary = (first + ahead, term);
            }
            Op::HardState { commit, vote } => {
                let hs = HardState {
                    term: self.term,
                    vote: *vote,
                    commit: pick(*commit, 0, last),
                };
                self.mem.set_hard_state(hs.clone());
                self.disk.set_hard_state(hs);
            }
            Op::ConfState { voters, learners } => {
                let cs = ConfState::from((voters.clone(), learners.clone()));
                self.mem.set_conf_state(cs.clone());
                self.disk.set_conf_state(cs);
            }
            Op::Restart => {
                self.mem.restart();
                self.disk.restart();
            }
        }
    }

    /// Every `raft::Storage` query answers the same on both (snapshot() excepted: see the module docs).
    fn assert_same(&self, max_size: u64) -> Result<(), TestCaseError> {
        let (m, d) = (self.mem.storage(), self.disk.storage());
        prop_assert_eq!(
            m.initial_state().unwrap().hard_state,
            d.initial_state().unwrap().hard_state
        );
        prop_assert_eq!(
            m.initial_state().unwrap().conf_state,
            d.initial_state().unwrap().conf_state
        );
        let (first, last) = (m.first_index().unwrap(), m.last_index().unwrap());
        prop_assert_eq!(d.first_index().unwrap(), first);
        prop_assert_eq!(d.last_index().unwrap(), last);
        for i in 0..=last + 2 {
            let (tm, td) = (m.term(i), d.term(i));
            if i + 1 == first && compacted(m.term(i)) {
                // MemStorage forgot the boundary term; LogStore must not.
                prop_assert_eq!(td.ok(), Some(self.boundary.1), "term({})", i);
                prop_assert_eq!(self.boundary.0, i);
            } else {
                prop_assert_eq!(tm, td, "term({})", i);
            }
        }
        if last < first {
            return Ok(()); // MemStorage::entries panics on a log without entries.
        }
        for low in first.saturating_sub(1)..=last {
            for (high, max) in [
                (last + 1, None),
                (last + 1, Some(max_size)),
                (low + 1, Some(0)),
            ] {
                let (em, ed) = (
                    m.entries(low, high, max, ctx()),
                    d.entries(low, high, max, ctx()),
                );
                prop_assert_eq!(em, ed, "entries({}, {}, {:?})", low, high, max);
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn log_store_answers_like_mem_storage(
        ops in prop::collection::vec(op(), 1..40),
        max_size in 0u64..200,
    ) {
        let mut pair = Pair::new();
        for op in &ops {
            pair.apply(op);
            pair.assert_same(max_size)?;
        }
        pair.disk.restart();
        pair.assert_same(max_size)?;
    }
}
