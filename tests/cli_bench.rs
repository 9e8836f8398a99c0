//! `kvs-raft bench` end to end: the built binary against a real `kvs-raft serve` (one node), ~2 s at a
//! low rate in each update mode (`two`, `txn`, `--batch`): no errors, the achieved rate within 10 % of
//! the offered one, the documented JSON fields, and the data really written (scores read back). Also:
//! usage errors exit 2 naming the flag, and `--help` documents every flag.

mod common;

use std::time::Duration;

use common::await_leader;
use common::cli::{dead_endpoint, kvs, Run};
use common::http::Http;
use common::proc::Cluster;
use serde_json::Value;

/// The fields of the `--json` report (docs/cli.md), and of its parts.
const REPORT_FIELDS: &[&str] = &[
    "mode",
    "workload",
    "connections",
    "batch",
    "warmup_s",
    "duration_s",
    "elapsed_s",
    "offered_rate",
    "achieved_rate",
    "requests",
    "ops",
    "ok_ops",
    "errors",
    "errors_by_label",
    "latency_us",
    "latency_by_kind_us",
    "max_queue_wait_us",
    "counters",
];
const WORKLOAD_FIELDS: &[&str] = &[
    "players",
    "rate_per_player",
    "shape",
    "checkpoint_fraction",
    "late_read_fraction",
    "late_age_ms",
    "value_size",
    "seed",
];
const LATENCY_FIELDS: &[&str] = &["count", "min", "mean", "p50", "p90", "p99", "p999", "max"];

fn bench(endpoint: &str, args: &[&str]) -> (Run, Value) {
    let mut all = vec![
        "bench",
        "--endpoints",
        endpoint,
        "--players",
        "10",
        "--rate",
        "10",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--connections",
        "8",
        "--json",
    ];
    all.extend_from_slice(args);
    let run = kvs(&all);
    assert_eq!(run.code, 0, "bench {args:?}: {run}");
    let report = run.json();
    (run, report)
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// The checks every run must pass: fields, no errors, achieved ≈ offered.
fn check_report(what: &str, run: &Run, r: &Value) {
    for field in REPORT_FIELDS {
        assert!(r.get(field).is_some(), "{what}: no {field}: {r}");
    }
    for field in WORKLOAD_FIELDS {
        assert!(
            r["workload"].get(field).is_some(),
            "{what}: no workload.{field}: {r}"
        );
    }
    for field in LATENCY_FIELDS {
        assert!(
            r["latency_us"].get(field).is_some(),
            "{what}: no latency_us.{field}: {r}"
        );
    }
    assert_eq!(r["mode"], "open", "{what}");
    assert_eq!(r["errors"], 0, "{what}: {r}");
    let offered = number(r, "offered_rate");
    assert_eq!(offered, 100.0, "{what}");
    let achieved = number(r, "achieved_rate");
    assert!(
        (achieved - offered).abs() / offered <= 0.1,
        "{what}: achieved {achieved} ops/s of {offered}: {r}"
    );
    // 2 s at 100 ops/s: 200 ops measured.
    assert_eq!(r["ops"], 200, "{what}: {r}");
    assert!(number(&r["latency_us"], "p50") > 0.0, "{what}: {r}");
    assert!(number(&r["latency_us"], "max") >= number(&r["latency_us"], "p99"));
    // The progress lines went to stderr.
    assert!(
        run.stderr.contains("ops/s") && run.stderr.contains("p99"),
        "{what}: no progress line: {run}"
    );
}

/// Player `p`'s score as the node has it now (0 when absent).
fn score(endpoint: &str, p: u64) -> i64 {
    let run = kvs(&["get", &format!("p{p}/score"), "--endpoints", endpoint]);
    if run.code == 1 && run.stderr.contains("not found") {
        return 0;
    }
    assert_eq!(run.code, 0, "get p{p}/score: {run}");
    run.out()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("score of p{p} is not an integer ({e}): {run}"))
}

fn scores(endpoint: &str) -> Vec<i64> {
    (0..10).map(|p| score(endpoint, p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_update_mode_writes_at_the_offered_rate_without_errors() {
    let mut cluster = Cluster::start("bench", 1);
    let http = Http::new(Duration::from_secs(10));
    cluster
        .wait_serving(&http, &[1], Duration::from_secs(30))
        .await;
    await_leader(&cluster, &http, &[1], Duration::from_secs(30)).await;
    let ep = format!("http://{}", cluster.addr(1));
    let ep = ep.as_str();

    // Two requests per update, no checkpoints: every player's score only grows.
    let (run, r) = bench(ep, &["--update", "two", "--checkpoints", "0"]);
    check_report("two", &run, &r);
    assert_eq!(r["workload"]["checkpoint_fraction"], 0.0);
    // Each update is two HTTP requests, a late read one: more HTTP requests than ops.
    let http_requests = number(&r["counters"], "http_requests");
    assert!(http_requests > number(&r, "ops"), "{r}");
    assert!(r["counters"].get("late_read_missing").is_some(), "{r}");
    let after_two = scores(ep);
    assert!(
        after_two.iter().all(|&s| s > 0),
        "every player was updated: {after_two:?}"
    );

    // One /v1/txn per update (checkpoints at the default 1 %).
    let (run, r) = bench(
        ep,
        &["--update", "txn", "--checkpoints", "0", "--seed", "2"],
    );
    check_report("txn", &run, &r);
    assert!(r["latency_by_kind_us"].get("update").is_some(), "{r}");
    let after_txn = scores(ep);
    assert!(
        after_txn.iter().zip(&after_two).all(|(b, a)| b > a),
        "every score grew: {after_two:?} → {after_txn:?}"
    );

    // Batches of 10 updates per /v1/batch, with checkpoints: 20 requests of 10 ops.
    let (run, r) = bench(
        ep,
        &[
            "--batch",
            "10",
            "--update",
            "txn",
            "--checkpoints",
            "0.05",
            "--seed",
            "3",
        ],
    );
    check_report("batch", &run, &r);
    assert_eq!(r["batch"], 10);
    assert_eq!(r["requests"], 20, "{r}");
    assert_eq!(r["latency_by_kind_us"]["batch"]["count"], 20, "{r}");
    let after_batch = scores(ep);
    assert!(
        after_batch.iter().sum::<i64>() > 0,
        "scores after the batches: {after_batch:?}"
    );

    // The human report: a latency table.
    let run = kvs(&[
        "bench",
        "--endpoints",
        ep,
        "--players",
        "5",
        "--rate",
        "10",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--workload",
        "put",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let out = run.out();
    assert!(
        out.contains("p99.9") && out.contains("achieved") && out.contains("put workload"),
        "{run}"
    );
}

#[test]
fn usage_errors_exit_2_naming_the_flag() {
    let dead = dead_endpoint();
    for (args, flag) in [
        (&["--players", "0"][..], "--players"),
        (&["--checkpoints", "1.5"], "--checkpoints"),
        (&["--batch", "0"], "--batch"),
        (&["--clients", "3"], "--closed-loop"),
        (&["--update", "three"], "--update"),
        (&["--duration", "soon"], "--duration"),
        (&["--endpoints", "ftp://x:1"], "--endpoints"),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        if !args.contains(&"--endpoints") {
            all.extend(["--endpoints", &dead]);
        }
        let run = kvs(&all);
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert!(
            run.stderr.contains(flag),
            "{args:?} should name {flag}: {run}"
        );
    }
    // Nothing listening: the workers' first requests fail, the run still reports them (exit 0).
    let run = kvs(&[
        "bench",
        "--endpoints",
        &dead,
        "--players",
        "1",
        "--rate",
        "20",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--timeout",
        "2s",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let r = run.json();
    assert_eq!(r["errors"], r["requests"], "{r}");
    assert!(
        r["errors_by_label"]["unreachable"].as_u64() > Some(0),
        "{r}"
    );
    assert_eq!(r["ok_ops"], 0);
}

#[test]
fn help_documents_every_flag() {
    let help = kvs(&["bench", "--help"]).ok().out();
    for flag in [
        "--players",
        "--rate",
        "--workload",
        "--update",
        "--batch",
        "--checkpoints",
        "--late-reads",
        "--late-age",
        "--value-size",
        "--seed",
        "--duration",
        "--warmup",
        "--open-loop",
        "--closed-loop",
        "--clients",
        "--connections",
        "--endpoints",
        "--token",
        "--token-file",
        "--cacert",
        "--cert",
        "--key",
        "--timeout",
        "--json",
        "Examples:",
    ] {
        assert!(help.contains(flag), "bench --help lacks {flag}:\n{help}");
    }
    // Defaults come from the library's constants.
    for default in [
        "[default: 30s]",
        "[default: 5s]",
        "[default: 150]",
        "[default: 1s]",
    ] {
        assert!(
            help.contains(default),
            "bench --help lacks {default}:\n{help}"
        );
    }
}
