//! The real tikv-client 0.4 transactional API against the double: what it writes, reads and
//! resolves behaves as on TiKV.

mod common;

use std::time::Duration;

use common::*;
use tikv_client::{CheckLevel, TimestampExt, TransactionOptions};
use tikv_double::{Fault, Options, Rpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_round_trips_put_get_commit() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let mut txn = within("begin", CALL, client.begin_optimistic())
        .await
        .unwrap();
    txn.put(b"k1".to_vec(), b"v1".to_vec()).await.unwrap();
    txn.put(b"k2".to_vec(), b"v2".to_vec()).await.unwrap();
    let own = within("get own write", CALL, txn.get(b"k1".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        own,
        Some(b"v1".to_vec()),
        "a transaction reads its own buffered write"
    );
    let commit_ts = within("commit", CALL, txn.commit())
        .await
        .unwrap()
        .expect("a commit ts");
    assert!(commit_ts.version() > txn.start_timestamp().version());

    let mut reader = within("begin", CALL, client.begin_optimistic())
        .await
        .unwrap();
    assert_eq!(
        within("get", CALL, reader.get(b"k2".to_vec()))
            .await
            .unwrap(),
        Some(b"v2".to_vec())
    );
    assert_eq!(
        within("get", CALL, reader.get(b"nope".to_vec()))
            .await
            .unwrap(),
        None
    );
    within("commit read-only", CALL, reader.commit())
        .await
        .unwrap();
    // The secondary (k2) is committed in the background; the double shows it settles.
    eventually("secondary committed", Duration::from_secs(5), || {
        double.lock_of(b"k2").is_none()
    })
    .await;
    assert!(
        double.faults().calls(Rpc::KvPrewrite) >= 1 && double.faults().calls(Rpc::KvCommit) >= 1
    );
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_conflicting_optimistic_transactions_the_later_commit_fails() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let mut first = within("begin", CALL, client.begin_optimistic())
        .await
        .unwrap();
    let mut second = within("begin", CALL, client.begin_optimistic())
        .await
        .unwrap();
    first.put(b"k".to_vec(), b"first".to_vec()).await.unwrap();
    second.put(b"k".to_vec(), b"second".to_vec()).await.unwrap();
    within("commit first", CALL, first.commit()).await.unwrap();
    let err = within("commit second", CALL, second.commit())
        .await
        .unwrap_err();
    assert!(
        has_key_error(&err, &|k| k
            .conflict
            .as_ref()
            .is_some_and(|c| c.key == b"k")),
        "expected a write conflict on k, got {err:?}"
    );
    within("rollback second", CALL, second.rollback())
        .await
        .unwrap();
    assert_eq!(read(&client, "k").await.unwrap(), Some("first".to_owned()));
    assert_eq!(
        double.lock_of(b"k"),
        None,
        "the failed prewrite left no lock"
    );
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_sees_exactly_what_committed_before_its_timestamp() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let before = within("ts", CALL, client.current_timestamp())
        .await
        .unwrap();
    write(&client, &[("k", "v1")]).await.unwrap();
    let between = within("ts", CALL, client.current_timestamp())
        .await
        .unwrap();
    write(&client, &[("k", "v2")]).await.unwrap();

    let at = |ts| client.snapshot(ts, TransactionOptions::new_optimistic());
    assert_eq!(
        within("get", CALL, at(before).get(b"k".to_vec()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        within("get", CALL, at(between).get(b"k".to_vec()))
            .await
            .unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(read(&client, "k").await.unwrap(), Some("v2".to_owned()));
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_scan_crosses_regions_in_order_and_honours_its_limit() {
    // Split inside the prefix, so the scan and the commit span both regions.
    let double = start(Options {
        split_key: Some(b"p/m".to_vec()),
        ..Options::default()
    })
    .await;
    let client = client(&double).await;
    write(
        &client,
        &[
            ("o", "before"),
            ("p/a", "1"),
            ("p/k", "2"),
            ("p/m", "3"),
            ("p/z", "4"),
            ("q", "after"),
        ],
    )
    .await
    .unwrap();
    let mut snap = snapshot(&client).await;
    let all: Vec<(Vec<u8>, Vec<u8>)> =
        within("scan", CALL, snap.scan(b"p/".to_vec()..b"p0".to_vec(), 100))
            .await
            .unwrap()
            .map(|pair| (pair.key().clone().into(), pair.value().clone()))
            .collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        [("p/a", "1"), ("p/k", "2"), ("p/m", "3"), ("p/z", "4")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
    assert_eq!(all, expected);
    let first_three: Vec<Vec<u8>> = within(
        "scan keys",
        CALL,
        snap.scan_keys(b"p/".to_vec()..b"p0".to_vec(), 3),
    )
    .await
    .unwrap()
    .map(Into::into)
    .collect();
    assert_eq!(
        first_three,
        vec![b"p/a".to_vec(), b"p/k".to_vec(), b"p/m".to_vec()]
    );
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_abandoned_after_prewrite_is_rolled_back_by_a_later_reader() {
    let double = start(Options::default()).await;
    let writer = client(&double).await;
    write(&writer, &[("a", "old"), ("b", "old")]).await.unwrap();
    // The writer prewrites both keys, then never gets a commit through.
    double.faults().inject(Rpc::KvCommit, Fault::Unavailable);
    let options = TransactionOptions::new_optimistic().drop_check(CheckLevel::None);
    let mut txn = within("begin", CALL, writer.begin_with_options(options))
        .await
        .unwrap();
    txn.put(b"a".to_vec(), b"new".to_vec()).await.unwrap();
    txn.put(b"b".to_vec(), b"new".to_vec()).await.unwrap();
    let err = within("commit", CALL, txn.commit()).await.unwrap_err();
    assert!(
        is_grpc_status(&err),
        "commit refused with a status: {err:?}"
    );
    drop(txn); // abandoned: no rollback
    assert!(
        double.lock_of(b"a").is_some() && double.lock_of(b"b").is_some(),
        "locks left behind"
    );
    double.faults().clear_all();

    // Locks live for ~3 s of TSO time; move the clock past them instead of waiting.
    double.advance_clock(Duration::from_secs(60));
    let reader = client(&double).await;
    assert_eq!(
        read(&reader, "b").await.unwrap(),
        Some("old".to_owned()),
        "secondary read resolves"
    );
    assert_eq!(read(&reader, "a").await.unwrap(), Some("old".to_owned()));
    assert!(double.faults().calls(Rpc::KvCheckTxnStatus) >= 1);
    assert!(double.faults().calls(Rpc::KvResolveLock) >= 1);
    assert_eq!(double.lock_of(b"a"), None);
    assert_eq!(double.lock_of(b"b"), None);
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lock_makes_a_reader_wait_until_its_transaction_commits() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let mut txn = within("begin", CALL, client.begin_optimistic())
        .await
        .unwrap();
    txn.put(b"k".to_vec(), b"v".to_vec()).await.unwrap();
    // A pessimistic-free way to hold a prewrite lock: commit with the commit RPC hanging.
    double.faults().inject(Rpc::KvCommit, Fault::Hang);
    let committing = tokio::spawn(async move { (txn.commit().await, txn) });
    eventually("prewrite lock", Duration::from_secs(10), || {
        double.lock_of(b"k").is_some()
    })
    .await;
    let reader = client.clone();
    let reading = tokio::spawn(async move { read(&reader, "k").await });
    // The reader finds a live lock (TTL not passed) and backs off; release the commit.
    eventually("reader met the lock", Duration::from_secs(10), || {
        double.faults().calls(Rpc::KvCheckTxnStatus) >= 1
    })
    .await;
    double.faults().clear_all();
    let (committed, _txn) = within("commit", CALL, committing).await.unwrap();
    committed.unwrap();
    // The reader's timestamp is above the commit ts the writer took before its commit RPC: it
    // must see "v" or give up on the lock (its lock backoff is ~1.5 s) — never the old state.
    match within("read", CALL, reading).await.unwrap() {
        Ok(seen) => assert_eq!(seen, Some("v".to_owned())),
        Err(e) => assert!(
            matches!(e, tikv_client::Error::ResolveLockError(_)),
            "{e:?}"
        ),
    }
    assert_eq!(read(&client, "k").await.unwrap(), Some("v".to_owned()));
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pessimistic_transactions_lock_on_write_and_commit() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    write(&client, &[("k", "0")]).await.unwrap();
    let mut txn = within("begin", CALL, client.begin_pessimistic())
        .await
        .unwrap();
    within("put", CALL, txn.put(b"k".to_vec(), b"1".to_vec()))
        .await
        .unwrap();
    assert!(
        double.lock_of(b"k").is_some(),
        "a pessimistic put locks at once"
    );
    // An optimistic writer now conflicts with the lock.
    let err = write(&client, &[("k", "other")]).await.unwrap_err();
    assert!(
        has_key_error(&err, &|k| k.locked.is_some())
            || matches!(err, tikv_client::Error::ResolveLockError(_)),
        "blocked by the pessimistic lock: {err:?}"
    );
    within("commit", CALL, txn.commit()).await.unwrap();
    assert_eq!(read(&client, "k").await.unwrap(), Some("1".to_owned()));
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_moves_the_safe_point_and_resolves_old_locks() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    write(&client, &[("k", "v")]).await.unwrap();
    let safe_point = within("ts", CALL, client.current_timestamp())
        .await
        .unwrap();
    let moved = within("gc", CALL, client.gc(safe_point.clone()))
        .await
        .unwrap();
    assert!(moved);
    assert_eq!(double.gc_safe_point(), safe_point.version());
    assert!(
        double.faults().calls(Rpc::KvScanLock) >= 1
            && double.faults().calls(Rpc::UpdateGcSafePoint) == 1
    );
    double.shutdown().await;
}
