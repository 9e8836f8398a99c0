//! The change feed: every applied entry's effects recorded in log order in the same batch, trimmed by
//! the replicated sync cursor, kept across restarts and carried by snapshots.

use std::sync::Arc;

use engine::{
    codec, Change, ChangeEntry, Engine, EngineConfig, ManualClock, Op, OpError, OpOutcome,
};
use tempfile::TempDir;

const T0: u64 = 1_700_000_000_000_000;

fn open(dir: &TempDir, feed: bool) -> Engine {
    let clock = Arc::new(ManualClock::new(T0 + 1_000_000));
    let mut cfg = EngineConfig::tiny(clock);
    cfg.change_feed = feed;
    Engine::open(dir.path(), cfg).unwrap()
}

fn write(key: &str, value: Option<&str>, ts: u64, epoch: u64) -> Change {
    Change::Write {
        key: key.into(),
        value: value.map(Into::into),
        ts,
        epoch,
    }
}

fn changes(entries: &[ChangeEntry]) -> Vec<(u64, Vec<Change>)> {
    entries
        .iter()
        .map(|e| (e.index, e.changes.clone()))
        .collect()
}

#[test]
fn the_feed_records_effects_in_log_order_and_the_cursor_trims_them() {
    let dir = TempDir::new().unwrap();
    let engine = open(&dir, true);
    engine
        .apply(
            1,
            T0 + 1,
            &[Op::put("p/pos", "a"), Op::incr("score", 5)],
            true,
        )
        .unwrap();
    // A read, a failed fence and a delete of an absent key change nothing: no record.
    engine
        .apply(
            2,
            T0 + 2,
            &[
                Op::get("p/pos"),
                Op::put("p/x", "y").with_epoch(Some(9)),
                Op::delete("absent"),
            ],
            true,
        )
        .unwrap();
    engine
        .apply(
            3,
            T0 + 3,
            &[Op::checkpoint("p", "gate", "d"), Op::delete("score")],
            true,
        )
        .unwrap();
    let all = engine.changes(0, 100, usize::MAX).unwrap();
    assert_eq!(
        changes(&all),
        vec![
            (
                1,
                vec![
                    write("p/pos", Some("a"), T0 + 1, 0),
                    write("score", Some("5"), T0 + 1, 0)
                ]
            ),
            (
                3,
                vec![
                    Change::Checkpoint {
                        entity: b"p".to_vec(),
                        name: b"gate".to_vec(),
                        data: b"d".to_vec(),
                        epoch: 1,
                        ts: T0 + 3
                    },
                    write("score", None, T0 + 3, 0)
                ]
            ),
        ]
    );
    let stats = engine.stats();
    assert_eq!(stats.feed_entries, 2);
    assert_eq!(stats.feed_bytes, all.iter().map(|e| e.bytes).sum::<u64>());
    // Paging: one entry at most, or a byte budget the first record reaches.
    assert_eq!(changes(&engine.changes(0, 1, usize::MAX).unwrap()).len(), 1);
    assert_eq!(changes(&engine.changes(0, 100, 1).unwrap()).len(), 1);
    assert_eq!(
        changes(&engine.changes(1, 100, usize::MAX).unwrap())[0].0,
        3
    );

    // The cursor trims entries up to it and never moves back.
    let r = engine
        .apply(4, T0 + 4, &[Op::SyncCursor { index: 1 }], true)
        .unwrap();
    assert_eq!(r.results, vec![Ok(OpOutcome::CursorRecorded { cursor: 1 })]);
    assert_eq!(engine.sync_cursor(), 1);
    assert_eq!(
        changes(&engine.changes(0, 100, usize::MAX).unwrap())[0].0,
        3
    );
    assert_eq!(engine.stats().feed_entries, 1);
    let r = engine
        .apply(5, T0 + 5, &[Op::SyncCursor { index: 0 }], true)
        .unwrap();
    assert_eq!(r.results, vec![Ok(OpOutcome::CursorRecorded { cursor: 1 })]);

    // Kept across a restart, counted again at open.
    drop(engine);
    let engine = open(&dir, true);
    assert_eq!(engine.sync_cursor(), 1);
    assert_eq!(engine.stats().feed_entries, 1);
    engine
        .apply(6, T0 + 6, &[Op::SyncCursor { index: 3 }], true)
        .unwrap();
    assert!(engine.changes(0, 100, usize::MAX).unwrap().is_empty());
    let stats = engine.stats();
    assert_eq!((stats.feed_entries, stats.feed_bytes), (0, 0));
    assert!(engine.verify().is_ok());
}

#[test]
fn a_sync_cursor_inside_a_txn_is_refused_and_the_codec_never_nests_it() {
    let dir = TempDir::new().unwrap();
    let engine = open(&dir, true);
    let txn = Op::Txn {
        compares: vec![],
        success: vec![Op::SyncCursor { index: 7 }],
        failure: vec![],
    };
    let r = engine
        .apply(1, T0 + 1, std::slice::from_ref(&txn), true)
        .unwrap();
    assert_eq!(
        r.results,
        vec![Err(OpError::Invalid("a sync cursor inside a transaction"))]
    );
    assert_eq!(engine.sync_cursor(), 0);
    assert_eq!(
        codec::encode_ops(&[txn]),
        Err(codec::CodecError::CursorInTxn)
    );
    let bytes = codec::encode_ops(&[Op::SyncCursor { index: 300 }]).unwrap();
    assert_eq!(bytes, vec![1, 1, 0x07, 0xAC, 0x02]);
    assert_eq!(
        codec::decode_ops(&bytes).unwrap(),
        vec![Op::SyncCursor { index: 300 }]
    );
    // Every truncation of a change record is an error, never a panic.
    let record = codec::encode_changes(&[
        write("k", Some("v"), 5, 0),
        write("e/k", None, 6, 2),
        Change::Checkpoint {
            entity: b"e".to_vec(),
            name: b"n".to_vec(),
            data: vec![],
            epoch: 3,
            ts: 7,
        },
    ]);
    assert_eq!(codec::decode_changes(&record).unwrap().len(), 3);
    for cut in 0..record.len() {
        assert!(codec::decode_changes(&record[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn without_the_feed_nothing_is_recorded_but_the_cursor_still_replicates() {
    let dir = TempDir::new().unwrap();
    let engine = open(&dir, false);
    engine.apply(1, T0 + 1, &[Op::put("k", "v")], true).unwrap();
    assert!(engine.changes(0, 100, usize::MAX).unwrap().is_empty());
    engine
        .apply(2, T0 + 2, &[Op::SyncCursor { index: 1 }], true)
        .unwrap();
    assert_eq!(engine.sync_cursor(), 1);
}

#[test]
fn a_snapshot_carries_the_unsynced_feed_and_the_cursor() {
    let (a_dir, b_dir) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let a = open(&a_dir, true);
    a.apply(1, T0 + 1, &[Op::put("k1", "v")], true).unwrap();
    a.apply(2, T0 + 2, &[Op::put("k2", "v")], true).unwrap();
    a.apply(3, T0 + 3, &[Op::SyncCursor { index: 1 }], true)
        .unwrap();
    let mut chunks = Vec::new();
    a.write_snapshot(&mut |c| {
        chunks.push(c);
        Ok(())
    })
    .unwrap();
    let b = open(&b_dir, true);
    b.install_snapshot(&mut chunks.into_iter()).unwrap();
    assert_eq!(b.sync_cursor(), 1);
    assert_eq!(
        changes(&b.changes(0, 100, usize::MAX).unwrap()),
        vec![(2, vec![write("k2", Some("v"), T0 + 2, 0)])]
    );
    assert_eq!(b.stats().feed_entries, 1);
}
