//! Tests that need the private layout: hand-crafted and corrupted stores. The behavioural suite shared
//! with `MemStorage` is `tests/storage_conformance.rs`.

use std::collections::BTreeMap;

use raft::Storage as _;
use tempfile::TempDir;

use super::*;

const CLUSTER: &str = "site-a";

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![u8::try_from(index % 251).unwrap_or(0); 10],
        ..Default::default()
    }
}

/// A store in a fresh dir holding entries 1..=5 (term = index), commit 3.
fn store_with_log() -> (TempDir, LogStore) {
    let dir = TempDir::new().unwrap();
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    store
        .persist(&LogWrite {
            entries: (1..=5).map(|i| entry(i, i)).collect(),
            hard_state: Some(HardState {
                term: 5,
                vote: 1,
                commit: 3,
            }),
            ..Default::default()
        })
        .unwrap();
    (dir, store)
}

/// Write raw bytes into a closed store.
fn poke(dir: &TempDir, edit: impl FnOnce(&mut Batch)) {
    let db = Db::open(dir.path(), LogMemory::default()).unwrap();
    let mut batch = Batch::default();
    edit(&mut batch);
    db.write_synced(batch).unwrap();
}

fn is_corruption(r: Result<LogStore, Error>) -> bool {
    matches!(r, Err(Error::Corruption { .. }))
}

fn is_raft_other<T: fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Other(_))))
}

#[test]
fn a_corrupted_entry_is_an_error_when_read_not_a_panic() {
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.put(&entry_key(3), &[0xff, 0xff, 0xff, 0xff]));
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    assert!(is_raft_other(store.term(3)));
    assert!(is_raft_other(store.entries(
        1,
        6,
        None,
        GetEntriesContext::empty(false)
    )));
    // Entries before the bad one are still served.
    assert_eq!(
        store
            .entries(1, 3, None, GetEntriesContext::empty(false))
            .unwrap(),
        vec![entry(1, 1), entry(2, 2)]
    );
}

#[test]
fn an_entry_under_the_wrong_key_is_corruption() {
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| {
        b.put(&entry_key(2), &encode_message(&entry(4, 4)))
    });
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    assert!(is_raft_other(store.term(2)));
    assert!(is_raft_other(store.entries(
        1,
        4,
        None,
        GetEntriesContext::empty(false)
    )));
}

#[test]
fn a_hole_in_the_log_is_corruption() {
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.delete_range(&entry_key(3), &entry_key(4)));
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    assert!(is_raft_other(store.term(3)));
    assert!(is_raft_other(store.entries(
        2,
        5,
        None,
        GetEntriesContext::empty(false)
    )));
    // A hole at the end of the requested range, too.
    assert!(is_raft_other(store.entries(
        2,
        4,
        None,
        GetEntriesContext::empty(false)
    )));
}

#[test]
fn corrupted_metadata_fails_open() {
    for key in [
        HARD_STATE_KEY,
        CONF_STATE_KEY,
        SNAPSHOT_KEY,
        TRUNCATED_KEY,
        CLUSTER_ID_KEY,
    ] {
        let (dir, store) = store_with_log();
        drop(store);
        poke(&dir, |b| b.put(key, &[0xc3, 0x28, 0xff, 0xff, 0xff]));
        assert!(
            is_corruption(LogStore::open(dir.path(), CLUSTER)),
            "{key:?}"
        );
    }
}

#[test]
fn a_corrupted_last_entry_fails_open() {
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.put(&entry_key(5), b"\x08"));
    assert!(is_corruption(LogStore::open(dir.path(), CLUSTER)));
}

#[test]
fn a_log_not_starting_after_the_boundary_fails_open() {
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.delete_range(&entry_key(1), &entry_key(2)));
    assert!(is_corruption(LogStore::open(dir.path(), CLUSTER)));
}

#[test]
fn a_non_empty_store_without_cluster_id_fails_open() {
    let dir = TempDir::new().unwrap();
    poke(&dir, |b| {
        b.put(&entry_key(1), &encode_message(&entry(1, 1)))
    });
    assert!(is_corruption(LogStore::open(dir.path(), CLUSTER)));
}

#[test]
fn a_hand_crafted_commit_beyond_the_log_fails_open() {
    // `persist` refuses to create this state, so craft it: the last two entries are lost.
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.delete_range(&entry_key(3), ENTRIES_END));
    assert!(matches!(
        LogStore::open(dir.path(), CLUSTER),
        Err(Error::CommitBeyondLog {
            commit: 3,
            last_index: 2
        })
    ));
}

#[test]
fn size_budget_matches_raft_limit_size() {
    let ents: Vec<Entry> = (1..=6).map(|i| entry(i, 1)).collect();
    let one = u64::try_from(ents[0].encoded_len()).unwrap();
    for max in [
        None,
        Some(0),
        Some(one - 1),
        Some(one),
        Some(2 * one),
        Some(2 * one + 1),
        Some(5 * one),
        Some(raft::NO_LIMIT),
    ] {
        let mut expected = ents.clone();
        raft::util::limit_size(&mut expected, max);
        let mut budget = SizeBudget::new(max);
        let got: Vec<Entry> = ents
            .iter()
            .take_while(|e| budget.admit(u64::try_from(e.encoded_len()).unwrap()))
            .cloned()
            .collect();
        assert_eq!(got, expected, "max {max:?}");
    }
}

#[test]
fn a_store_records_its_node_id_and_refuses_another() {
    let dir = TempDir::new().unwrap();
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    store.check_node_id(1).unwrap();
    store.check_node_id(1).unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    assert!(matches!(
        store.check_node_id(2),
        Err(Error::NodeMismatch {
            found: 1,
            expected: 2
        })
    ));
    store.check_node_id(1).unwrap();
}

#[test]
fn compaction_never_leaves_the_persisted_commit_behind_the_log() {
    // Entries 1..=5, commit 3 (as persisted); a single voter commits 5 through the light ready, whose
    // commit index is never written into a hard state, and compacts up to its applied index 5.
    let (dir, store) = store_with_log();
    store.compact(6).unwrap();
    assert_eq!(store.hard_state().commit, 5);
    drop(store);
    let store = LogStore::open(dir.path(), CLUSTER).unwrap();
    let hs = store.initial_state().unwrap().hard_state;
    assert_eq!((hs.commit, hs.term, hs.vote), (5, 5, 1));
    assert!(hs.commit + 1 >= store.first_index().unwrap());
}

fn finding<'a>(report: &'a LogReport, check: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check} in {report:?}"))
}

fn failed(report: &LogReport) -> Vec<&'static str> {
    report
        .findings
        .iter()
        .filter(|f| f.problem.is_some())
        .map(|f| f.check)
        .collect()
}

#[test]
fn a_healthy_log_passes_every_check_and_reports_its_identity() {
    let (dir, store) = store_with_log();
    store.check_node_id(7).unwrap();
    store
        .persist(&LogWrite {
            conf_state: Some(ConfState::from((vec![7], vec![]))),
            membership: Some(
                crate::membership::Membership::initial([(7, "n7:7380".to_string())])
                    .encode()
                    .unwrap(),
            ),
            ..Default::default()
        })
        .unwrap();
    drop(store);
    let report = check_log(dir.path()).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.cluster_id.as_deref(), Some(CLUSTER));
    assert_eq!(report.node_id, Some(7));
    assert_eq!(
        (report.first_index, report.last_index, report.entries),
        (1, 5, 5)
    );
    assert_eq!(report.hard_state.commit, 3);
    assert_eq!(report.conf_state.voters, vec![7]);
    assert!(report.membership.is_some());
}

#[test]
fn check_names_a_lost_tail_a_hole_a_bad_entry_and_a_term_going_back() {
    // The tail behind the commit index is gone.
    let (dir, store) = store_with_log();
    drop(store);
    drop_log_tail_for_tests(dir.path(), 3).unwrap();
    let report = check_log(dir.path()).unwrap();
    assert_eq!(report.last_index, 2);
    assert!(failed(&report).contains(&"commit_within_log"), "{report:?}");
    let why = finding(&report, "commit_within_log")
        .problem
        .clone()
        .unwrap();
    assert!(
        why.contains("ends at 2") && why.contains("up to 3"),
        "{why}"
    );

    // A hole in the middle.
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| b.delete_range(&entry_key(3), &entry_key(4)));
    let report = check_log(dir.path()).unwrap();
    assert!(
        failed(&report).contains(&"entries_contiguous"),
        "{report:?}"
    );

    // An entry that does not decode, and one whose term goes back.
    let (dir, store) = store_with_log();
    drop(store);
    poke(&dir, |b| {
        b.put(&entry_key(2), &[0xff, 0xff, 0xff]);
        b.put(&entry_key(5), &encode_message(&entry(5, 1)));
    });
    let report = check_log(dir.path()).unwrap();
    let failed = failed(&report);
    assert!(failed.contains(&"entries_decode"), "{report:?}");
    assert!(failed.contains(&"terms_non_decreasing"), "{report:?}");

    // No store at all is an error, not a report (and creates nothing).
    let empty = TempDir::new().unwrap();
    let missing = empty.path().join("raft");
    assert!(check_log(&missing).is_err());
    assert!(!missing.exists());
}

#[test]
fn a_seeded_log_starts_after_the_image_with_the_new_voters() {
    let dir = TempDir::new().unwrap();
    let voters: BTreeMap<u64, String> =
        [(4, "h4:1".into()), (5, "h5:1".into()), (6, "h6:1".into())]
            .into_iter()
            .collect();
    let store = LogStore::seed(dir.path(), "restored", 5, 1_234, &voters).unwrap();
    assert_eq!(store.first_index().unwrap(), 1_235);
    assert_eq!(store.last_index().unwrap(), 1_234);
    assert_eq!(store.term(1_234).unwrap(), SEED_TERM);
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state.commit, 1_234);
    assert_eq!(state.hard_state.term, SEED_TERM);
    assert_eq!(state.hard_state.vote, 0);
    assert_eq!(state.conf_state.voters, vec![4, 5, 6]);
    assert_eq!(store.snapshot_metadata().index, 1_234);
    let membership = crate::membership::Membership::decode(&store.membership()).unwrap();
    assert_eq!(membership.conf_index, 1_234);
    assert_eq!(membership.members[&6].peer_addr, "h6:1");
    drop(store);
    // Its identity is recorded: another node id or cluster is refused at open.
    assert!(matches!(
        LogStore::open(dir.path(), "other"),
        Err(Error::ClusterMismatch { .. })
    ));
    let store = LogStore::open(dir.path(), "restored").unwrap();
    assert!(matches!(
        store.check_node_id(4),
        Err(Error::NodeMismatch {
            found: 5,
            expected: 4
        })
    ));
    drop(store);
    let report = check_log(dir.path()).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.first_index, report.last_index), (1_235, 1_234));

    // Seeding again, or a node that is not a voter, is refused.
    assert!(matches!(
        LogStore::seed(dir.path(), "restored", 5, 1_234, &voters),
        Err(Error::Invalid(_))
    ));
    let fresh = TempDir::new().unwrap();
    assert!(matches!(
        LogStore::seed(fresh.path(), "restored", 9, 1_234, &voters),
        Err(Error::Invalid(_))
    ));
}
