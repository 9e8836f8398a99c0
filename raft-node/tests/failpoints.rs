//! Crashes at every persistence boundary of the node, injected with failpoints (`--features failpoints`).
//! Each test arms one failpoint to fire at random moments of a full simulated run (partitions, crashes,
//! clients); the node that hits it crashes and restarts from its persisted log. The run must still pass
//! every simulator check — no acknowledged write lost, nothing applied twice (the state machine asserts
//! it), history linearizable — and the failpoint must really have fired.
//! Failpoints are process-global: run this target with one test per process (nextest) or `--test-threads=1`.
#![cfg(feature = "failpoints")]

#[path = "sim/cluster.rs"]
#[allow(dead_code)] // `run_and_take_history` serves the sim target only
mod cluster;

use cluster::{Sim, SimConfig};

fn crash_at(failpoint: &str) {
    let scenario = fail::FailScenario::setup();
    // Fire on 3 % of the passes through the boundary.
    fail::cfg(failpoint, "3%return").unwrap();
    let mut fired = 0;
    for seed in 0..6 {
        let cfg = SimConfig {
            crash_on_error: true,
            ..SimConfig::for_seed(seed)
        };
        match Sim::new(cfg).run() {
            Ok(stats) => {
                eprintln!("{failpoint} seed {seed}: ok ({stats})");
                fired += stats.error_crashes;
            }
            Err(e) => panic!("{failpoint}, seed {seed}: {e}"),
        }
    }
    fail::remove(failpoint);
    scenario.teardown();
    assert!(fired > 0, "{failpoint} never fired");
}

#[test]
fn crash_before_log_persist() {
    crash_at("node::before_persist");
}

#[test]
fn crash_after_log_persist_before_send() {
    crash_at("node::after_persist_before_send");
}

#[test]
fn crash_after_commit_before_apply() {
    crash_at("node::before_apply");
}

#[test]
fn crash_after_apply_before_reply() {
    crash_at("node::after_apply_before_reply");
}
