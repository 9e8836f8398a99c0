//! The production loop: one thread owns the node; callers get exactly one reply per command, including
//! after shutdown (never a hung request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_node::runner::{NodeHandle, RunnerConfig};
use raft_node::Error;
use testkit::mem_log::MemLog;
use testkit::single_node::{self, propose, status};

fn single_node() -> NodeHandle<Vec<u8>> {
    let micros = AtomicU64::new(1_000_000);
    let clock = move || micros.fetch_add(1, Ordering::Relaxed);
    single_node::start(
        MemLog::bootstrap(vec![1]),
        clock,
        RunnerConfig {
            tick: Duration::from_millis(5),
            queue: 10_000,
        },
    )
}

#[test]
fn concurrent_proposals_are_batched_and_each_gets_its_own_result() {
    let handle = single_node();
    let before = status(&handle).counters;
    let receivers: Vec<_> = (0..500u32)
        .map(|i| (i, propose(&handle, i.to_be_bytes().to_vec())))
        .collect();
    for (i, rx) in receivers {
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reply")
            .expect("applied");
        assert_eq!(got.output, i.to_be_bytes().to_vec());
    }
    let after = status(&handle).counters;
    assert_eq!(after.commands_applied - before.commands_applied, 500);
    let entries = after.entries_proposed - before.entries_proposed;
    assert!(
        entries < 500,
        "500 queued commands went into {entries} entries: no batching"
    );
    handle.shutdown().unwrap();
}

#[test]
fn every_request_gets_an_answer_around_shutdown() {
    let handle = single_node();
    let in_flight: Vec<_> = (0..200u32)
        .map(|i| propose(&handle, i.to_be_bytes().to_vec()))
        .collect();
    handle.shutdown().unwrap();
    for rx in in_flight {
        match rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a reply, not a hang")
        {
            Ok(_) | Err(Error::ShuttingDown) | Err(Error::Stopped) => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
}
