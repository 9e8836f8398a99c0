//! The percolator rules, each checked by the exact state it leaves.

use super::*;

const MS: u64 = 1 << LOGICAL_BITS;

fn put(key: &str, value: &str) -> Mutation {
    Mutation {
        key: key.as_bytes().to_vec(),
        op: MutationOp::Put(value.as_bytes().to_vec()),
        pessimistic_check: false,
    }
}

fn prewrite(primary: &str, start_ts: Ts, mutations: Vec<Mutation>) -> Prewrite {
    Prewrite {
        mutations,
        primary: primary.as_bytes().to_vec(),
        start_ts,
        ttl: 3000,
        for_update_ts: 0,
        txn_size: 1,
    }
}

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn all() -> KeyRange {
    KeyRange {
        start: Vec::new(),
        end: Vec::new(),
    }
}

#[test]
fn committed_writes_are_visible_from_their_commit_ts_on() {
    let mut m = Mvcc::new();
    m.prewrite(&prewrite("a", 10, vec![put("a", "1"), put("b", "2")]))
        .unwrap();
    assert!(matches!(m.get(b"a", 11), Err(TxnError::Locked { .. })));
    assert_eq!(
        m.get(b"a", 9),
        Ok(None),
        "a read below the lock's start ts ignores it"
    );
    m.commit(&[k("a"), k("b")], 10, 20).unwrap();
    assert_eq!(m.get(b"a", 19), Ok(None));
    assert_eq!(m.get(b"a", 20), Ok(Some(k("1"))));
    assert_eq!(m.get(b"b", 25), Ok(Some(k("2"))));
    assert_eq!(m.lock_of(b"a"), None);
}

#[test]
fn a_write_committed_after_start_ts_is_a_conflict_and_nothing_is_locked() {
    let mut m = Mvcc::new();
    m.prewrite(&prewrite("a", 10, vec![put("a", "1")])).unwrap();
    m.commit(&[k("a")], 10, 20).unwrap();
    let errors = m
        .prewrite(&prewrite("b", 15, vec![put("b", "x"), put("a", "2")]))
        .unwrap_err();
    assert!(matches!(
        &errors[..],
        [TxnError::WriteConflict {
            conflict_start_ts: 10,
            conflict_commit_ts: 20,
            reason: ConflictReason::Optimistic,
            ..
        }]
    ));
    assert_eq!(m.lock_of(b"b"), None, "a failed prewrite leaves no lock");
}

#[test]
fn commit_without_a_lock_fails_unless_already_committed() {
    let mut m = Mvcc::new();
    assert!(matches!(
        m.commit(&[k("a")], 10, 20),
        Err(TxnError::TxnLockNotFound { .. })
    ));
    m.prewrite(&prewrite("a", 30, vec![put("a", "1")])).unwrap();
    m.commit(&[k("a")], 30, 40).unwrap();
    m.commit(&[k("a")], 30, 40).unwrap(); // a retried commit
    m.prewrite(&prewrite("a", 50, vec![put("a", "2")])).unwrap();
    m.rollback(&[k("a")], 50).unwrap();
    assert!(matches!(
        m.commit(&[k("a")], 50, 60),
        Err(TxnError::TxnLockNotFound { .. })
    ));
    assert!(matches!(
        m.prewrite(&prewrite("a", 50, vec![put("a", "2")]))
            .unwrap_err()[..],
        [TxnError::WriteConflict {
            reason: ConflictReason::SelfRolledBack,
            ..
        }]
    ));
}

#[test]
fn check_txn_status_rolls_back_only_an_expired_lock() {
    let mut m = Mvcc::new();
    let start = 1000 * MS;
    m.prewrite(&prewrite("a", start, vec![put("a", "1"), put("b", "2")]))
        .unwrap();
    let alive = m
        .check_txn_status(b"a", start, start + 2999 * MS, false, true)
        .unwrap();
    assert!(matches!(alive, TxnStatus::Locked { .. }));
    assert!(matches!(
        m.check_txn_status(b"b", start, start + 5000 * MS, false, true),
        Err(TxnError::PrimaryMismatch { .. })
    ));
    let gone = m
        .check_txn_status(b"a", start, start + 3000 * MS, false, true)
        .unwrap();
    assert_eq!(gone, TxnStatus::RolledBack(Action::TtlExpireRollback));
    // The secondary is resolved with the primary's fate.
    m.resolve_locks(&BTreeMap::from([(start, 0)]), &all(), &[])
        .unwrap();
    assert_eq!(m.lock_of(b"b"), None);
    assert_eq!(m.get(b"b", u64::MAX - 1), Ok(None));
    assert!(matches!(
        m.check_txn_status(b"x", 5, 6, false, true),
        Err(TxnError::TxnNotFound { .. })
    ));
    assert_eq!(
        m.check_txn_status(b"x", 5, 6, true, true),
        Ok(TxnStatus::RolledBack(Action::LockNotExistRollback))
    );
}

#[test]
fn resolve_commits_the_secondaries_of_a_committed_primary() {
    let mut m = Mvcc::new();
    m.prewrite(&prewrite("a", 10, vec![put("a", "1"), put("b", "2")]))
        .unwrap();
    m.commit(&[k("a")], 10, 20).unwrap();
    assert_eq!(
        m.check_txn_status(b"a", 10, 30, false, true),
        Ok(TxnStatus::Committed(20))
    );
    m.resolve_locks(&BTreeMap::from([(10, 20)]), &all(), &[])
        .unwrap();
    assert_eq!(m.get(b"b", 20), Ok(Some(k("2"))));
}

#[test]
fn scans_honour_range_limit_direction_and_locks() {
    let mut m = Mvcc::new();
    m.prewrite(&prewrite(
        "a",
        10,
        vec![put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4")],
    ))
    .unwrap();
    m.commit(&[k("a"), k("b"), k("c"), k("d")], 10, 20).unwrap();
    m.prewrite(&prewrite("c", 30, vec![put("c", "x")])).unwrap();
    let range = KeyRange {
        start: k("b"),
        end: k("d"),
    };
    let keys = |items: Vec<ScanItem>| {
        items
            .into_iter()
            .map(|(k, v)| (k, v.is_ok()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(m.scan(&range, 0, 25, false)),
        vec![(k("b"), true), (k("c"), true)]
    );
    assert_eq!(
        keys(m.scan(&range, 0, 35, false)),
        vec![(k("b"), true), (k("c"), false)]
    );
    assert_eq!(
        keys(m.scan(&all(), 2, 25, true)),
        vec![(k("d"), true), (k("c"), true)]
    );
}

#[test]
fn pessimistic_locks_become_prewrite_locks() {
    let mut m = Mvcc::new();
    m.prewrite(&prewrite("a", 10, vec![put("a", "1")])).unwrap();
    m.commit(&[k("a")], 10, 20).unwrap();
    assert!(
        m.pessimistic_lock(&[k("a")], b"a", 15, 16, 3000).is_err(),
        "write after for_update_ts"
    );
    assert_eq!(
        m.pessimistic_lock(&[k("a")], b"a", 15, 25, 3000),
        Ok(vec![Some(k("1"))])
    );
    assert_eq!(
        m.get(b"a", 30),
        Ok(Some(k("1"))),
        "pessimistic locks do not block reads"
    );
    let mut p = prewrite("a", 15, vec![put("a", "2")]);
    p.mutations[0].pessimistic_check = true;
    p.for_update_ts = 25;
    m.prewrite(&p).unwrap();
    m.commit(&[k("a")], 15, 40).unwrap();
    assert_eq!(m.get(b"a", 40), Ok(Some(k("2"))));
}
