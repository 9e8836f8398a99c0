//! Group commit: throughput of the ready loop with real RocksDB fsyncs and no network (a single-voter
//! group), for 1, 16 and 256 concurrent proposers. Reports ops/s, fsyncs/s and ops per fsync.
//! `cargo bench -p raft-node --bench group_commit`; results are recorded in BENCHMARKS.md.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raft_node::runner::RunnerConfig;
use raft_node::storage::{LogStore, LogWrite};
use testkit::single_node::{self, propose, status};

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn run(proposers: usize, secs: u64) {
    let dir = tempfile::TempDir::new().unwrap();
    let log = LogStore::open(dir.path(), "bench").unwrap();
    let cs = raft::prelude::ConfState {
        voters: vec![1],
        ..Default::default()
    };
    log.persist(&LogWrite {
        entries: vec![],
        hard_state: None,
        conf_state: Some(cs),
        ..LogWrite::default()
    })
    .unwrap();
    // The state machine only echoes: the cost measured is the loop and the log fsync.
    let handle = single_node::start(
        log,
        now_micros,
        RunnerConfig {
            tick: Duration::from_millis(100),
            queue: 100_000,
            on_turn: None,
        },
    );
    let handle = Arc::new(handle);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let before = status(&handle).counters;
    let start = Instant::now();
    let threads: Vec<_> = (0..proposers)
        .map(|_| {
            let (handle, stop, ops) = (Arc::clone(&handle), Arc::clone(&stop), Arc::clone(&ops));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rx = propose(&handle, vec![b'x'; 150]);
                    if let Ok(Ok(_)) = rx.recv() {
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = status(&handle).counters;
    let fsyncs = after.fsync.count - before.fsync.count;
    let done = ops.load(Ordering::Relaxed);
    println!(
        "group_commit proposers={proposers:>3}: {:>8.0} ops/s, {:>6.0} fsyncs/s, {:>6.1} ops/fsync, {:>5.1} ops/entry",
        done as f64 / elapsed,
        fsyncs as f64 / elapsed,
        done as f64 / fsyncs.max(1) as f64,
        (after.commands_proposed - before.commands_proposed) as f64
            / (after.entries_proposed - before.entries_proposed).max(1) as f64,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = std::env::var("GROUP_COMMIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for proposers in [1, 16, 256] {
        run(proposers, secs);
    }
}
