//! The engine's behaviour over real RocksDB: SPEC §2 semantics, GC, bloom filter, snapshots.

use std::sync::Arc;

use engine::{
    Clock, CmpOp, Compare, Engine, EngineConfig, Error, ManualClock, Op, OpError, OpOutcome,
    ScanRequest, Versioned,
};
use tempfile::TempDir;

const SEC: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * SEC;

struct Fixture {
    _dir: TempDir,
    clock: Arc<ManualClock>,
    engine: Engine,
    index: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::open(dir.path(), EngineConfig::tiny(clock.clone())).unwrap();
        Fixture {
            _dir: dir,
            clock,
            engine,
            index: 0,
        }
    }

    /// Apply one entry at the clock's current time; every test write is synced.
    fn apply(&mut self, ops: &[Op]) -> Vec<Result<OpOutcome, OpError>> {
        self.index += 1;
        let ts = self.clock.now_micros();
        self.engine
            .apply(self.index, ts, ops, true)
            .unwrap()
            .results
    }

    fn tick(&self, micros: u64) -> u64 {
        let now = self.clock.now_micros() + micros;
        self.clock.set(now);
        now
    }

    fn get(&self, key: &str, at: u64) -> Option<Vec<u8>> {
        self.engine
            .get(key.as_bytes(), at)
            .unwrap()
            .map(|v| v.value)
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::put(key, value)
}

fn put_fenced(key: &str, value: &str, epoch: u64) -> Op {
    Op::put(key, value).with_epoch(Some(epoch))
}

fn checkpoint(entity: &str, name: &str) -> Op {
    Op::checkpoint(entity, name, b"lap")
}

#[test]
fn stale_epoch_write_is_rejected_and_changes_nothing() {
    let mut f = Fixture::new();
    f.apply(&[put("p/pos", "a")]);
    f.tick(10);
    f.apply(&[checkpoint("p", "cp1")]);
    f.tick(10);
    f.apply(&[put("p/pos", "b")]);
    let before = f.engine.verify().unwrap().content_sha256;
    f.tick(10);
    let r = f.apply(&[
        put_fenced("p/pos", "late", 0),
        Op::delete("p/pos").with_epoch(Some(0)),
    ]);
    assert_eq!(
        r,
        vec![
            Err(OpError::StaleEpoch { current: 1 }),
            Err(OpError::StaleEpoch { current: 1 })
        ]
    );
    assert_eq!(f.get("p/pos", u64::MAX), Some(b"b".to_vec()));
    // Only the applied index moved; no data, epoch or crossing changed.
    let after = f.engine.verify().unwrap();
    assert_eq!(after.data_entries, 2);
    assert_ne!(after.content_sha256, before, "applied index must advance");
    let r = f.apply(&[put_fenced("p/pos", "ok", 1)]);
    assert!(matches!(r[0], Ok(OpOutcome::Written { epoch: 1, .. })));
}

#[test]
fn checkpoint_hides_old_state_at_and_after_its_ts_but_not_before() {
    let mut f = Fixture::new();
    let t1 = f.tick(1);
    f.apply(&[
        put("p/pos", "x1"),
        put("p/score", "7"),
        put("q/pos", "other"),
    ]);
    let t2 = f.tick(SEC);
    let r = f.apply(&[checkpoint("p", "gate-3")]);
    assert_eq!(r, vec![Ok(OpOutcome::Checkpointed { epoch: 1, ts: t2 })]);
    let t3 = f.tick(SEC);
    f.apply(&[put("p/pos", "x2")]);

    // Before the checkpoint: the old state.
    assert_eq!(f.get("p/pos", t2 - 1), Some(b"x1".to_vec()));
    assert_eq!(f.get("p/score", t1), Some(b"7".to_vec()));
    let old = f.engine.entity(b"p", t2 - 1, 100, usize::MAX).unwrap();
    assert_eq!(old.epoch, 0);
    assert_eq!(old.items.len(), 2);
    // At and after it: nothing of the entity until written again.
    assert_eq!(f.get("p/pos", t2), None);
    assert_eq!(f.get("p/score", u64::MAX), None);
    assert_eq!(
        f.engine.entity(b"p", t2, 100, usize::MAX).unwrap().items,
        vec![]
    );
    let now = f.engine.entity(b"p", t3, 100, usize::MAX).unwrap();
    assert_eq!(now.epoch, 1);
    assert_eq!(
        now.items,
        vec![(
            b"p/pos".to_vec(),
            Versioned {
                value: b"x2".to_vec(),
                ts: t3,
                epoch: 1
            }
        )]
    );
    // Other entities are untouched.
    assert_eq!(f.get("q/pos", u64::MAX), Some(b"other".to_vec()));
    // The crossing is recorded with its epoch, ts and data.
    let c = f.engine.crossed(b"p", b"gate-3").unwrap().unwrap();
    assert_eq!((c.epoch, c.ts, c.data.as_slice()), (1, t2, &b"lap"[..]));
    assert_eq!(f.engine.crossed(b"q", b"gate-3").unwrap(), None);
}

#[test]
fn reads_older_than_retention_fail_with_version_gone() {
    let mut f = Fixture::new();
    let t1 = f.tick(1);
    f.apply(&[put("k", "v")]);
    f.tick(4 * SEC);
    assert_eq!(f.get("k", t1), Some(b"v".to_vec()));
    f.tick(2 * SEC);
    match f.engine.get(b"k", t1) {
        Err(Error::VersionGone { at, floor }) => assert!(at == t1 && floor > t1),
        other => panic!("expected VersionGone, got {other:?}"),
    }
    assert!(matches!(
        f.engine.scan(&ScanRequest::prefix(b"", 10, t1)),
        Err(Error::VersionGone { .. })
    ));
    assert!(matches!(
        f.engine.entity(b"p", t1, 10, usize::MAX),
        Err(Error::VersionGone { .. })
    ));
}

#[test]
fn gc_reclaims_old_versions_once_the_safepoint_passes_them() {
    let mut f = Fixture::new();
    for round in 0..50 {
        f.tick(1000);
        let ops: Vec<Op> = (0..40)
            .map(|k| put(&format!("k{k:02}"), &format!("{round}-{}", "x".repeat(100))))
            .collect();
        f.apply(&ops);
    }
    let last_write = f.tick(0);
    f.engine.compact().unwrap();
    let before = f.engine.data_entries().unwrap();
    assert_eq!(
        before,
        50 * 40,
        "nothing may be dropped while the safepoint is 0"
    );
    // Safepoint below all writes: still nothing to drop.
    f.tick(10 * SEC);
    // The safepoint stays `retention` behind the applied ts: a later write lets it pass the others.
    f.apply(&[put("later", "x")]);
    f.engine.gc_step(T0, 100).unwrap();
    f.engine.compact().unwrap();
    assert_eq!(f.engine.data_entries().unwrap(), before + 1);
    // Past every write: only the newest version of each key survives.
    f.engine.gc_step(last_write, 100).unwrap();
    f.engine.compact().unwrap();
    assert_eq!(f.engine.data_entries().unwrap(), 40 + 1);
    assert!(f.engine.stats().gc_versions_dropped >= 50 * 40 - 40);
    assert_eq!(
        f.get("k07", u64::MAX).unwrap(),
        format!("49-{}", "x".repeat(100)).into_bytes()
    );
}

#[test]
fn gc_reclaims_invalidated_epochs_by_range_deletion() {
    let mut f = Fixture::new();
    f.tick(1);
    let ops: Vec<Op> = (0..2000).map(|k| put(&format!("p/k{k:05}"), "v")).collect();
    f.apply(&ops);
    f.apply(&[put("q/keep", "v")]);
    let t_cp = f.tick(SEC);
    f.apply(&[checkpoint("p", "cp")]);
    f.tick(SEC);
    f.apply(&[put("p/new", "v")]);
    assert_eq!(f.engine.data_entries().unwrap(), 2002);
    // The safepoint is clamped to now − retention: the checkpoint is too recent to reclaim.
    let r = f.engine.gc_step(u64::MAX, 10).unwrap();
    assert_eq!(r.epochs_reclaimed, 0);
    f.tick(10 * SEC);
    f.apply(&[put("q/later", "v")]);
    let r = f.engine.gc_step(t_cp, 10).unwrap();
    assert_eq!((r.epochs_reclaimed, r.more), (1, false));
    assert_eq!(f.engine.data_entries().unwrap(), 3);
    assert_eq!(f.get("p/new", u64::MAX), Some(b"v".to_vec()));
    assert_eq!(f.get("q/keep", u64::MAX), Some(b"v".to_vec()));
    assert!(matches!(
        f.engine.get(b"p/k00001", t_cp - 1),
        Err(Error::VersionGone { .. })
    ));
    f.engine.verify().unwrap();
}

#[test]
fn gc_step_work_is_bounded_by_its_budget() {
    let mut f = Fixture::new();
    for i in 0..5 {
        f.tick(10);
        f.apply(&[
            put(&format!("e{i}/k"), "v"),
            checkpoint(&format!("e{i}"), "cp"),
        ]);
    }
    f.tick(10 * SEC);
    f.apply(&[put("later", "v")]);
    let first = f.engine.gc_step(u64::MAX, 2).unwrap();
    assert_eq!((first.epochs_reclaimed, first.more), (2, true));
    let second = f.engine.gc_step(u64::MAX, 10).unwrap();
    assert_eq!((second.epochs_reclaimed, second.more), (3, false));
    assert_eq!(f.engine.data_entries().unwrap(), 1);
}

#[test]
fn bloom_filter_serves_negatives_without_touching_rocksdb_and_has_no_false_negatives() {
    let mut f = Fixture::new();
    for i in 0..300 {
        f.tick(1);
        f.apply(&[checkpoint(&format!("player:{i}"), "gate")]);
    }
    let stats = f.engine.stats();
    for i in 0..300 {
        assert!(
            f.engine
                .crossed(format!("player:{i}").as_bytes(), b"gate")
                .unwrap()
                .is_some(),
            "false negative {i}"
        );
    }
    let after_positive = f.engine.stats();
    assert!(
        after_positive.store_reads >= stats.store_reads + 300,
        "positive lookups read RocksDB"
    );

    let mut negatives_from_filter = 0;
    for i in 0..1000 {
        let before = f.engine.stats();
        assert_eq!(
            f.engine
                .crossed(format!("player:{i}").as_bytes(), b"never")
                .unwrap(),
            None
        );
        let after = f.engine.stats();
        if after.bloom_negatives == before.bloom_negatives + 1 {
            negatives_from_filter += 1;
            assert_eq!(
                after.store_reads, before.store_reads,
                "a filter negative must not read RocksDB"
            );
        }
    }
    assert!(
        negatives_from_filter > 900,
        "filter answered only {negatives_from_filter}/1000 negatives"
    );

    // After a restart the filter is rebuilt from disk: still no false negatives.
    let dir = f._dir.path().to_path_buf();
    drop(f.engine);
    let engine = Engine::open(&dir, EngineConfig::tiny(f.clock.clone())).unwrap();
    assert_eq!(engine.stats().bloom_items, 300);
    for i in 0..300 {
        assert!(engine
            .crossed(format!("player:{i}").as_bytes(), b"gate")
            .unwrap()
            .is_some());
    }
}

#[test]
fn snapshot_install_on_a_fresh_instance_reproduces_the_content_exactly() {
    let mut f = Fixture::new();
    for round in 0..20 {
        f.tick(100);
        let mut ops: Vec<Op> = (0..30)
            .map(|k| put(&format!("p{}/k{k}", k % 7), &format!("{round}")))
            .collect();
        ops.push(Op::incr("score", 3));
        if round % 5 == 0 {
            ops.push(checkpoint(
                &format!("p{}", round % 7),
                &format!("cp{round}"),
            ));
        }
        f.apply(&ops);
    }
    let source = f.engine.verify().unwrap();
    let mut chunks = Vec::new();
    let meta = f
        .engine
        .write_snapshot(&mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
    assert!(
        meta.chunks > 3,
        "expected several chunks, got {}",
        meta.chunks
    );
    assert_eq!(meta.sha256, source.content_sha256);
    // A backup file checks its image without installing it (`kvs-raft snapshot status|restore`).
    assert_eq!(
        engine::verify_image(&mut chunks.clone().into_iter()).unwrap(),
        meta
    );
    assert_eq!(
        engine::image_applied(&chunks[0]).unwrap(),
        f.engine.applied()
    );
    assert!(engine::image_applied(&chunks[1]).is_err());

    let dir = TempDir::new().unwrap();
    let target = Engine::open(dir.path(), EngineConfig::tiny(f.clock.clone())).unwrap();
    target
        .apply(1, T0, &[put("junk", "gone after install")], true)
        .unwrap();
    let installed = target
        .install_snapshot(&mut chunks.clone().into_iter())
        .unwrap();
    assert_eq!(installed.sha256, meta.sha256);
    let copy = target.verify().unwrap();
    assert_eq!(copy.content_sha256, source.content_sha256);
    assert_eq!(copy.applied, source.applied);
    assert_eq!(target.applied(), f.engine.applied());
    assert_eq!(target.get(b"junk", u64::MAX).unwrap(), None);
    assert_eq!(
        target.get(b"score", u64::MAX).unwrap().unwrap().value,
        b"60"
    );
    assert!(target.crossed(b"p0", b"cp0").unwrap().is_some());

    // A corrupted, truncated or reordered stream is refused and changes nothing.
    let mut bad = chunks.clone();
    let mid = bad.len() / 2;
    let last = bad[mid].len() - 5;
    bad[mid][last] ^= 1;
    let mut truncated = chunks.clone();
    truncated.pop();
    let mut reordered = chunks.clone();
    reordered.swap(1, 2);
    for stream in [bad, truncated, reordered, vec![]] {
        assert!(matches!(
            engine::verify_image(&mut stream.clone().into_iter()),
            Err(Error::BadSnapshot(_))
        ));
        assert!(matches!(
            target.install_snapshot(&mut stream.into_iter()),
            Err(Error::BadSnapshot(_))
        ));
        assert_eq!(
            target.verify().unwrap().content_sha256,
            source.content_sha256
        );
    }
}

#[test]
fn checkpoint_batch_size_does_not_depend_on_entity_key_count() {
    let mut f = Fixture::new();
    f.tick(1);
    f.apply(
        &(0..10)
            .map(|k| put(&format!("small/k{k}"), "v"))
            .collect::<Vec<_>>(),
    );
    for chunk in 0..100 {
        f.tick(1);
        f.apply(
            &(0..1000)
                .map(|k| put(&format!("large/k{chunk:03}-{k:04}"), "v"))
                .collect::<Vec<_>>(),
        );
    }
    // Entity names of equal length, so every record has the same size.
    f.tick(1);
    f.index += 1;
    let small = f
        .engine
        .apply(f.index, f.tick(1), &[checkpoint("small", "cp")], true)
        .unwrap();
    f.index += 1;
    let large = f
        .engine
        .apply(f.index, f.tick(1), &[checkpoint("large", "cp")], true)
        .unwrap();
    assert_eq!(small.batch_bytes, large.batch_bytes);
    assert!(
        large.batch_bytes < 200,
        "checkpoint batch is {} bytes",
        large.batch_bytes
    );
    assert_eq!(
        f.engine
            .entity(b"large", u64::MAX, 10, usize::MAX)
            .unwrap()
            .items
            .len(),
        0
    );
}

#[test]
fn scans_merge_entities_and_plain_keys_in_key_order_at_one_snapshot() {
    let mut f = Fixture::new();
    f.tick(1);
    f.apply(&[
        put("a", "1"),
        put("a/x", "2"),
        put("a-b", "3"),
        put("a0", "4"),
        put("b/y", "5"),
        put("a/z", "6"),
    ]);
    let t_before = f.tick(0);
    f.tick(10);
    f.apply(&[checkpoint("a", "cp"), put("a/w", "7"), Op::delete("a0")]);
    let keys = |page: engine::ScanPage| {
        page.items
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect::<Vec<_>>()
    };
    let all_now = f
        .engine
        .scan(&ScanRequest::prefix(b"", 100, u64::MAX))
        .unwrap();
    assert_eq!(keys(all_now), vec!["a", "a-b", "a/w", "b/y"]);
    let all_before = f
        .engine
        .scan(&ScanRequest::prefix(b"", 100, t_before))
        .unwrap();
    assert_eq!(
        keys(all_before),
        vec!["a", "a-b", "a/x", "a/z", "a0", "b/y"]
    );
    let page = f
        .engine
        .scan(&ScanRequest {
            start: b"a-".to_vec(),
            end: Some(b"a0".to_vec()),
            limit: 2,
            max_bytes: usize::MAX,
            at: t_before,
        })
        .unwrap();
    assert!(page.more);
    assert_eq!(keys(page), vec!["a-b", "a/x"]);
    let within = f
        .engine
        .scan(&ScanRequest {
            start: b"a/y".to_vec(),
            end: None,
            limit: 10,
            max_bytes: usize::MAX,
            at: t_before,
        })
        .unwrap();
    assert_eq!(keys(within), vec!["a/z", "a0", "b/y"]);
    let prefix = f
        .engine
        .scan(&ScanRequest::prefix(b"a/", 10, u64::MAX))
        .unwrap();
    assert_eq!(keys(prefix), vec!["a/w"]);
}

#[test]
fn incr_counts_exactly_and_txn_compares_on_stored_state() {
    let mut f = Fixture::new();
    for _ in 0..10 {
        f.tick(1);
        f.apply(&[Op::incr("p/score", 4)]);
    }
    assert_eq!(f.get("p/score", u64::MAX), Some(b"40".to_vec()));
    let v = f.engine.get(b"p/score", u64::MAX).unwrap().unwrap();
    f.tick(1);
    let txn = Op::Txn {
        compares: vec![
            Compare::Version {
                key: "p/score".into(),
                op: CmpOp::Eq,
                ts: v.ts,
            },
            Compare::Epoch {
                entity: "p".into(),
                op: CmpOp::Eq,
                epoch: 0,
            },
        ],
        success: vec![put("p/score", "0"), checkpoint("p", "reset")],
        failure: vec![],
    };
    let r = f.apply(std::slice::from_ref(&txn));
    assert!(matches!(&r[0], Ok(OpOutcome::Txn { succeeded: true, results }) if results.len() == 2));
    f.tick(1);
    let r = f.apply(&[txn]);
    assert_eq!(
        r[0],
        Ok(OpOutcome::Txn {
            succeeded: false,
            results: vec![]
        })
    );
    f.tick(1);
    let r = f.apply(&[put("n", "abc"), Op::incr("n", 1)]);
    assert_eq!(r[1], Err(OpError::NotAnInteger));
}

#[test]
fn apply_rejects_replays_and_time_going_back() {
    let mut f = Fixture::new();
    f.apply(&[put("k", "v")]);
    assert!(matches!(
        f.engine.apply(1, T0 + 5, &[put("k", "w")], true),
        Err(Error::AlreadyApplied { .. })
    ));
    assert!(matches!(
        f.engine.apply(2, T0 - 1, &[put("k", "w")], true),
        Err(Error::TsWentBack { .. })
    ));
    assert_eq!(f.get("k", u64::MAX), Some(b"v".to_vec()));
}

#[test]
fn a_foreign_rocksdb_directory_is_refused() {
    let dir = TempDir::new().unwrap();
    {
        let f = Engine::open(dir.path(), EngineConfig::default()).unwrap();
        drop(f);
    }
    // A second open of the same directory is fine; an engine dir with someone else's marker is not.
    Engine::open(dir.path(), EngineConfig::default()).unwrap();
    let other = TempDir::new().unwrap();
    std::fs::write(other.path().join("db"), b"not a directory").unwrap();
    assert!(Engine::open(other.path(), EngineConfig::default()).is_err());
}

#[test]
fn a_scan_page_stops_after_the_item_that_reaches_its_byte_budget() {
    let mut f = Fixture::new();
    f.tick(1);
    let value = "v".repeat(1000);
    let ops: Vec<Op> = (0..10).map(|i| put(&format!("k{i}"), &value)).collect();
    f.apply(&ops);
    let entity_ops: Vec<Op> = (0..10).map(|i| put(&format!("e/{i}"), &value)).collect();
    f.apply(&entity_ops);
    let scan = |max_bytes| {
        f.engine
            .scan(&ScanRequest {
                max_bytes,
                ..ScanRequest::prefix(b"k", 100, u64::MAX)
            })
            .unwrap()
    };
    // Each item is 2 + 1000 bytes: the third reaches 2,500, so the page ends after it.
    let page = scan(2_500);
    assert_eq!((page.items.len(), page.more), (3, true));
    // Exactly at the budget also ends the page.
    let page = scan(2 * 1002);
    assert_eq!((page.items.len(), page.more), (2, true));
    // A budget smaller than one item still returns that item.
    let page = scan(1);
    assert_eq!((page.items.len(), page.more), (1, true));
    // The last item reaching the budget: nothing more.
    let page = scan(10 * 1002);
    assert_eq!((page.items.len(), page.more), (10, false));
    let view = f.engine.entity(b"e", u64::MAX, 100, 3_000).unwrap();
    assert_eq!((view.items.len(), view.more), (3, true));
}

/// Reads, `applied()` and `stats()` (what `/metrics` and the HTTP read paths call on async workers) answer
/// while a snapshot install is still receiving its image: they must not wait for the whole install.
#[test]
fn reads_applied_and_stats_answer_while_a_snapshot_install_streams_its_image() {
    use std::sync::mpsc;
    use std::time::Duration;

    let mut f = Fixture::new();
    for round in 0..5 {
        f.tick(100);
        let ops: Vec<Op> = (0..50)
            .map(|k| put(&format!("k{k}"), &format!("{round}")))
            .collect();
        f.apply(&ops);
    }
    let mut chunks = Vec::new();
    f.engine
        .write_snapshot(&mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
    assert!(chunks.len() > 2, "{} chunks", chunks.len());

    let dir = TempDir::new().unwrap();
    let target = Arc::new(Engine::open(dir.path(), EngineConfig::tiny(f.clock.clone())).unwrap());
    target.apply(1, T0, &[put("before", "x")], true).unwrap();
    let before = target.applied();

    // The image arrives one chunk per permit: after the first chunk the install waits for the rest.
    let (permit, gate) = mpsc::channel::<()>();
    let (sent, started) = mpsc::channel::<()>();
    let installer = {
        let target = target.clone();
        let chunks = chunks.clone();
        std::thread::spawn(move || {
            let mut first = true;
            let mut stream = chunks.into_iter().inspect(move |_| {
                if first {
                    first = false;
                    let _ = sent.send(());
                } else {
                    let _ = gate.recv();
                }
            });
            target.install_snapshot(&mut stream)
        })
    };
    // The installer is now inside its stream (after taking whatever locks it takes).
    started.recv().unwrap();

    let (answer, answers) = mpsc::channel();
    {
        let target = target.clone();
        std::thread::spawn(move || {
            let applied = target.applied();
            let stats = target.stats();
            let value = target.get(b"before", u64::MAX).map(|v| v.map(|v| v.value));
            let _ = answer.send((applied, stats.applied, value));
        });
    }
    let got = answers.recv_timeout(Duration::from_secs(2));
    // Let the install finish either way, so a failure does not leave the thread hanging.
    for _ in 0..chunks.len() {
        let _ = permit.send(());
    }
    let (applied, stats_applied, value) =
        got.expect("applied()/stats()/get() blocked behind the snapshot install");
    assert_eq!(applied, before);
    assert_eq!(stats_applied, before);
    assert_eq!(value.unwrap(), Some(b"x".to_vec()));

    installer.join().unwrap().unwrap();
    assert_eq!(target.applied(), f.engine.applied());
    assert_eq!(target.get(b"before", u64::MAX).unwrap(), None);
}

/// A replica whose clock runs hours ahead must not move the safepoint (persisted, and carried by its
/// snapshots) past what the retention window still covers for the others: the safepoint stays
/// `retention` behind the applied ts (the log's clock), so a snapshot of it serves `at=` reads on a
/// replica with a good clock.
#[test]
fn a_fast_clock_never_moves_the_safepoint_past_the_applied_ts() {
    let mut f = Fixture::new();
    f.tick(SEC);
    f.apply(&[put("k", "v1")]);
    let t_v2 = f.tick(SEC);
    f.apply(&[put("k", "v2")]);
    let applied = f.engine.applied().ts;
    // This replica's clock jumps three hours ahead; its GC runs.
    f.clock.set(applied + 3 * 3600 * SEC);
    let r = f.engine.gc_step(u64::MAX, 100).unwrap();
    assert!(
        r.safepoint <= applied.saturating_sub(5 * SEC),
        "safepoint {} passed the applied ts {applied} minus the retention",
        r.safepoint
    );
    let mut chunks = Vec::new();
    f.engine
        .write_snapshot(&mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
    // A replica with a good clock installs that snapshot: reads in its retention window still work.
    let good = Arc::new(ManualClock::new(applied + SEC));
    let dir = TempDir::new().unwrap();
    let other = Engine::open(dir.path(), EngineConfig::tiny(good)).unwrap();
    other.install_snapshot(&mut chunks.into_iter()).unwrap();
    assert_eq!(
        other.get(b"k", t_v2 - 1).unwrap().map(|v| v.value),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        other.get(b"k", applied).unwrap().map(|v| v.value),
        Some(b"v2".to_vec())
    );
}
