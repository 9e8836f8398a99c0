//! A crash in the middle of the snapshot switch (`--features failpoints`): the install stops at the
//! failpoint as if the process died there; the store is dropped and reopened, and `open` must finish the
//! switch, leaving exactly the snapshot's content. Run with one test at a time (failpoints are global).

use std::sync::Arc;

use engine::{Engine, EngineConfig, ManualClock, Op};

const T0: u64 = 1_700_000_000_000_000;

fn config() -> EngineConfig {
    EngineConfig::tiny(Arc::new(ManualClock::new(T0)))
}

fn crash_during_switch(failpoint: &str) {
    let scenario = fail::FailScenario::setup();
    let source_dir = tempfile::TempDir::new().unwrap();
    let source = Engine::open(source_dir.path(), config()).unwrap();
    let ops: Vec<Op> = (0..3000)
        .map(|i| Op::put(format!("p{}/k{i}", i % 11), b"v"))
        .collect();
    source.apply(1, T0, &ops, false).unwrap();
    let mut chunks = Vec::new();
    let meta = source
        .write_snapshot(&mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();

    let dir = tempfile::TempDir::new().unwrap();
    let target = Engine::open(dir.path(), config()).unwrap();
    target.apply(1, T0, &[Op::put(b"old", b"x")], true).unwrap();
    fail::cfg(failpoint, "return").unwrap();
    assert!(
        target.install_snapshot(&mut chunks.into_iter()).is_err(),
        "{failpoint} did not fire"
    );
    fail::remove(failpoint);
    drop(target); // the "crash"

    let reopened = Engine::open(dir.path(), config()).unwrap();
    let report = reopened.verify().unwrap();
    assert_eq!(
        report.content_sha256, meta.sha256,
        "after {failpoint} the store is not the snapshot"
    );
    assert_eq!(reopened.get(b"old", u64::MAX).unwrap(), None);
    assert!(!dir.path().join("snapshot-staging.sst").exists());
    scenario.teardown();
}

#[test]
fn crash_after_marker_before_ingest_is_finished_by_open() {
    crash_during_switch("engine::snapshot_switch_before_ingest");
}

#[test]
fn crash_after_ingest_before_marker_removal_is_finished_by_open() {
    crash_during_switch("engine::snapshot_switch_after_ingest");
}
