//! `kvs-raft check` on a stopped node's data dir, with real processes: it passes on a healthy node
//! (every check OK, exit 0), and detects — each in its own test, exit 1 naming the failed check — a
//! log whose tail was lost (last index < commit), a flipped byte in an SST of the engine and of the
//! Raft log, a data dir of another node id or cluster (`--id`, `--cluster-id`), and a state behind the
//! log's first index.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::http::Http;
use common::proc::Cluster;
use common::{await_leader, wait_for};
use serde_json::{json, Value};

fn http() -> Http {
    Http::new(Duration::from_secs(10))
}

/// `kvs-raft check --json --data-dir DIR` plus `extra`; the exit status and the parsed report.
fn check(dir: &Path, extra: &[&str]) -> (Output, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .args(["check", "--json", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run kvs-raft check");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

/// The names of the checks that failed.
fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] != true)
        .map(|c| c["name"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Assert that `check` failed (exit 1) on exactly the named checks, each with its reason.
fn assert_fails(out: &Output, report: &Value, names: &[&str], what: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: check should exit 1: {report}"
    );
    assert_eq!(report["ok"], false, "{what}: {report}");
    let got = failed(report);
    for name in names {
        assert!(
            got.iter().any(|g| g == name),
            "{what}: expected {name} to fail; failed: {got:?}\n{report:#}"
        );
    }
    for c in report["checks"].as_array().expect("checks") {
        if c["ok"] != true {
            assert!(
                c["problem"].as_str().is_some_and(|p| !p.is_empty()),
                "{what}: a failed check without a reason: {c}"
            );
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checks failed"), "{what}: {stderr}");
}

/// A one-node site with `entries` batches of 20 writes (and a checkpoint every 5th), stopped with
/// SIGTERM; its data dir. `env`: extra settings of the node.
async fn stopped_node(name: &str, entries: usize, env: &[(&str, &str)]) -> (Cluster, PathBuf) {
    stopped_site(name, 1, entries, env).await
}

/// As [`stopped_node`] with `n` nodes: every node stopped; node 1's data dir.
async fn stopped_site(
    name: &str,
    n: u64,
    entries: usize,
    env: &[(&str, &str)],
) -> (Cluster, PathBuf) {
    let http = http();
    let mut cluster = Cluster::start_with(name, n, |node| {
        for (k, v) in env {
            node.env.push(((*k).into(), (*v).into()));
        }
    });
    let ids = cluster.ids();
    cluster
        .wait_serving(&http, &ids, Duration::from_secs(30))
        .await;
    let (leader, _) = await_leader(&cluster, &http, &ids, Duration::from_secs(15)).await;
    write_batches(&cluster, &http, leader, 0, entries).await;
    for id in ids {
        stop(&mut cluster, id).await;
    }
    let dir = cluster.nodes[&1].data_dir.clone();
    (cluster, dir)
}

/// `n` batches of writes through node `via` (batch i: 20 keys of entity `p{i % 10}`, plus a
/// checkpoint every 5th).
async fn write_batches(cluster: &Cluster, http: &Http, via: u64, from: usize, n: usize) {
    for i in from..from + n {
        let mut ops: Vec<Value> = (0..20)
            .map(|k| json!({"op": "put", "key": format!("p{}/k{k}", i % 10), "value": format!("{i}")}))
            .collect();
        if i % 5 == 4 {
            ops.push(json!({"op": "checkpoint", "entity": format!("p{}", i % 10), "name": format!("cp{i}")}));
        }
        let r = http
            .post_json(cluster.addr(via), "/v1/batch", &json!({ "ops": ops }))
            .await
            .expect("batch");
        assert_eq!(r.status, 200, "batch {i}: {r}");
    }
}

async fn stop(cluster: &mut Cluster, id: u64) {
    cluster.sigterm(id);
    let status = cluster.wait_exit(id, Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "SIGTERM: {status:?}");
}

/// Every `*.sst` under `dir` (recursively), largest first.
fn ssts(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sst") {
                out.push(p);
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)));
    out
}

/// Flip one byte inside the first data block of every SST under `dir` (data blocks come first in a
/// block-based table); returns how many files were changed.
fn flip_a_byte_in_each_sst(dir: &Path) -> usize {
    let files = ssts(dir);
    for f in &files {
        let mut bytes = std::fs::read(f).expect("read sst");
        let at = 32.min(bytes.len() / 4);
        bytes[at] ^= 0x55;
        std::fs::write(f, bytes).expect("write sst");
    }
    files.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_healthy_stopped_node_and_reports_its_identity() {
    let (cluster, dir) = stopped_node("check-ok", 30, &[]).await;
    let (out, report) = check(&dir, &["--id", "1", "--cluster-id", &cluster.cluster_id]);
    assert!(
        out.status.success(),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["ok"], true);
    assert_eq!(failed(&report), Vec::<String>::new());
    assert_eq!(report["node_id"], 1);
    assert_eq!(report["cluster_id"], cluster.cluster_id.as_str());
    assert_eq!(report["voters"], json!([1]));
    let applied = report["applied_index"].as_u64().expect("applied");
    let commit = report["commit"].as_u64().expect("commit");
    let last = report["last_index"].as_u64().expect("last");
    assert!(applied >= 30 && last >= commit, "{report:#}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for expected in [
        "state_verifies",
        "log_opens",
        "log_readable",
        "entries_decode",
        "entries_contiguous",
        "terms_non_decreasing",
        "commit_within_log",
        "cluster_id_recorded",
        "node_id_recorded",
        "metadata_decodes",
        "membership_decodes",
        "state_not_behind_log",
        "applied_vs_commit",
        "node_id_matches",
        "cluster_id_matches",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    // The human report: one OK line per check.
    let human = std::process::Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .args(["check", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run check");
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("OK  ")).count(),
        names.len() - 2,
        "{text}"
    );
    println!(
        "healthy node: {} checks OK, applied {applied}, commit {commit}, log {}..={last}",
        names.len(),
        report["first_index"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_detects_a_log_whose_tail_was_lost() {
    // Three nodes: a single voter persists its commit index lazily (it commits through raft-rs's light
    // ready), while a member of a group records every commit it learns.
    let (_cluster, dir) = stopped_site("check-tail", 3, 30, &[]).await;
    let (_, before) = check(&dir, &[]);
    let commit = before["commit"].as_u64().expect("commit");
    assert!(commit > 5, "{before:#}");
    // The entries from the commit index on are gone: the log ends before what it committed.
    raft_node::storage::drop_log_tail_for_tests(&dir.join("raft"), commit - 2).expect("drop tail");
    let (out, report) = check(&dir, &[]);
    assert_fails(&out, &report, &["commit_within_log"], "lost tail");
    assert_eq!(report["last_index"].as_u64(), Some(commit - 3));
    println!(
        "lost tail detected: log ends at {}, commit {commit}",
        report["last_index"]
    );
}

/// A stopped one-node site whose `part` (`state` or `raft`) has a byte flipped in every SST; what
/// `check` says then, and how many files were changed.
async fn check_after_flipping_ssts(name: &str, part: &str) -> (Cluster, Output, Value, usize) {
    let (cluster, dir) = stopped_node(name, 30, &[]).await;
    // A first check opens both stores, which flush their recovered WALs into SSTs.
    let (out, _) = check(&dir, &[]);
    assert!(out.status.success());
    let changed = flip_a_byte_in_each_sst(&dir.join(part));
    assert!(changed > 0, "no SST under {part} to corrupt");
    let (out, report) = check(&dir, &[]);
    (cluster, out, report, changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_detects_a_flipped_byte_in_an_engine_sst() {
    let (_cluster, out, report, changed) =
        check_after_flipping_ssts("check-engine-sst", "state").await;
    assert_fails(&out, &report, &["state_verifies"], "flipped engine SST");
    println!("engine SST corruption detected in {changed} file(s): {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_detects_a_flipped_byte_in_a_raft_log_sst() {
    let (_cluster, out, report, changed) = check_after_flipping_ssts("check-log-sst", "raft").await;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let got = failed(&report);
    assert!(
        got.iter()
            .any(|g| g == "log_readable" || g == "log_opens" || g == "entries_decode"),
        "the log's corruption is not named: {got:?}\n{report:#}"
    );
    println!("raft log SST corruption detected in {changed} file(s): failed {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_data_dir_of_another_node_or_cluster() {
    let (cluster, dir) = stopped_node("check-identity", 5, &[]).await;
    let (out, report) = check(&dir, &["--id", "2"]);
    assert_fails(&out, &report, &["node_id_matches"], "another node id");
    let problem = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "node_id_matches"))
        .and_then(|c| c["problem"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        problem.contains("node 1") && problem.contains("node 2"),
        "{problem}"
    );
    let (out, report) = check(&dir, &["--cluster-id", "another-site"]);
    assert_fails(&out, &report, &["cluster_id_matches"], "another cluster");
    assert_eq!(failed(&report), vec!["cluster_id_matches".to_string()]);
    // The right identity passes.
    let (out, _) = check(&dir, &["--id", "1", "--cluster-id", &cluster.cluster_id]);
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_detects_a_state_behind_the_logs_first_index() {
    let http = http();
    let compact = [("KVS_RAFT_COMPACT_LOG_ENTRIES", "20")];
    let (mut cluster, dir) = stopped_node("check-behind", 5, &compact).await;
    // An old copy of the state, then the node runs on and compacts its log well past it.
    let old_state = tempfile::tempdir().expect("tempdir");
    copy_dir(&dir.join("state"), old_state.path());
    cluster.spawn(1);
    cluster
        .wait_serving(&http, &[1], Duration::from_secs(30))
        .await;
    await_leader(&cluster, &http, &[1], Duration::from_secs(15)).await;
    write_batches(&cluster, &http, 1, 5, 80).await;
    stop(&mut cluster, 1).await;
    let (_, current) = check(&dir, &[]);
    let first = current["first_index"].as_u64().expect("first index");
    let old_applied = {
        std::fs::remove_dir_all(dir.join("state")).expect("remove state");
        copy_dir(old_state.path(), &dir.join("state"));
        let (_, r) = check(&dir, &[]);
        r["applied_index"].as_u64().expect("applied")
    };
    assert!(
        old_applied + 1 < first,
        "the log was not compacted past the old state: applied {old_applied}, first {first}"
    );
    let (out, report) = check(&dir, &[]);
    assert_fails(
        &out,
        &report,
        &["state_not_behind_log"],
        "state behind the log",
    );
    // The node itself refuses to start on it, as check said.
    cluster.spawn(1);
    let status = cluster.wait_exit(1, Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    wait_for(
        "the refusal in the log",
        Duration::from_secs(5),
        async || cluster.log_text(1).contains("behind the raft log"),
    )
    .await;
    println!("state at {old_applied} behind a log starting at {first}: detected");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
