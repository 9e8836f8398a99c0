//! A short real chaos run: a kvs-raft site ×3 (this build's binary), the game workload, one SIGKILL of
//! the leader; the nemesis must really have killed the process and no acknowledged write may be lost.

mod common;

use std::time::Duration;

use bench_harness::chaos::nemesis::StopMode;
use bench_harness::chaos::{chaos, ChaosConfig};
use bench_harness::cluster::alive;
use common::kvs_raft_binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write() {
    let cfg = ChaosConfig {
        kvs_raft: kvs_raft_binary(),
        duration: Duration::from_secs(20),
        rate: 200.0,
        players: 200,
        stop_every: Duration::from_secs(10),
        down: Duration::from_secs(3),
        mode: StopMode::Kill,
        connections: 32,
        command: "tests/chaos_run.rs".into(),
        progress_every: 0,
    };
    let report = chaos(&cfg).await.expect("the chaos run completes");
    println!("{}", report.markdown());

    assert_eq!(report.stops.len(), 1, "one stop at 10 s");
    let stop = &report.stops[0];
    assert!(stop.was_leader, "the first stop takes the leader");
    assert_eq!(stop.how, "sigkill");
    let old = stop.pid.expect("the node had a pid");
    assert!(stop.pid_gone && !alive(old), "pid {old} still runs");
    let new = stop.new_pid.expect("restarted");
    assert_ne!(new, old);
    assert!(stop.error.is_none(), "{:?}", stop.error);
    assert!(
        stop.term_changes().is_some_and(|c| c >= 1),
        "a new leader was elected: {:?} → {:?}",
        stop.term_before,
        stop.term_after
    );

    let v = &report.verification;
    assert!(v.ok(), "lost writes: {:?}", v.anomalies);
    assert_eq!(v.players, 200);
    assert!(v.acked_writes > 2_000, "{v:?}");
    assert!(report.passed());
    // The site is gone with the report: no node outlives the run.
    assert!(!alive(new), "the restarted node {new} outlived the run");
}
