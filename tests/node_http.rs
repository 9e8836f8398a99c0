//! The HTTP API over a real single-node replica (Raft log, engine, `ReplicaBackend`) in-process: the routes
//! answer through the node loop, and `/metrics`, `/readyz` and `/v1/cluster` report the node's real state.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::replicas::Site;
use kvs_raft::http::{self, Limits};
use kvs_raft::node::{Replica, ReplicaBackend};

async fn single_node() -> (Arc<Replica>, ReplicaBackend, Site) {
    let site = Site::start(1, "node-http", |cfg| {
        cfg.group.advertise_client = "127.0.0.1:1".into();
    })
    .await;
    let replica = site.replica(1);
    let backend = ReplicaBackend::new(replica.clone());
    // Wait until the single voter leads and the backend's status cache has seen it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routes = http::routes(backend.clone(), Limits::default());
        let r = warp::test::request().path("/readyz").reply(&routes).await;
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {:?}", r.body());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (replica, backend, site)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_go_through_the_node_and_metrics_report_it() {
    let (site, backend, _site) = single_node().await;
    let routes = http::routes(backend.clone(), Limits::default());
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/player:1/pos")
        .body("12,34")
        .reply(&routes)
        .await;
    assert_eq!(put.status(), 200, "{:?}", put.body());
    let put: serde_json::Value = serde_json::from_slice(put.body()).expect("json");
    let ts = put["ts"].as_u64().expect("ts");
    let get = warp::test::request()
        .path("/v1/kv/player:1/pos")
        .reply(&routes)
        .await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.body().as_ref(), b"12,34");
    assert_eq!(
        get.headers()["kvs-ts"].to_str().ok(),
        Some(ts.to_string().as_str())
    );
    for _ in 0..3 {
        let incr = warp::test::request()
            .method("POST")
            .path("/v1/kv/player:1/score/incr?delta=2")
            .reply(&routes)
            .await;
        assert_eq!(incr.status(), 200);
    }
    let stale = warp::test::request()
        .path("/v1/kv/player:1/score?consistency=stale")
        .reply(&routes)
        .await;
    assert_eq!(stale.body().as_ref(), b"6");
    let lease = warp::test::request()
        .path("/v1/kv/player:1/score?consistency=lease")
        .reply(&routes)
        .await;
    assert_eq!(lease.status(), 200);
    assert_eq!(lease.body().as_ref(), b"6");

    let cluster = warp::test::request()
        .path("/v1/cluster")
        .reply(&routes)
        .await;
    let cluster: serde_json::Value = serde_json::from_slice(cluster.body()).expect("json");
    assert_eq!(cluster["cluster_id"], "node-http");
    assert_eq!(cluster["leader"], 1);
    assert_eq!(cluster["members"][0]["role"], "leader");
    assert!(cluster["members"][0]["applied"].as_u64() >= Some(4));

    // The status cache refreshes every 100 ms; wait until it has seen the writes.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let m = warp::test::request().path("/metrics").reply(&routes).await;
        let text = String::from_utf8_lossy(m.body()).to_string();
        if metric(&text, "kvs_raft_applied_index") >= 5.0 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never caught up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metric(&text, "kvs_raft_log_fsync_seconds_count") >= 5.0,
        "{text}"
    );
    assert!(metric(&text, "kvs_raft_commands_applied_total") >= 4.0);
    assert_eq!(metric(&text, "kvs_raft_is_leader"), 1.0);
    assert!(metric(&text, "process_resident_memory_bytes") > 1e6);
    assert!(text.contains("kvs_http_requests_total{"), "{text}");
    assert!(text.contains("kvs_rocksdb_memory_bytes{component=\"block_cache\"}"));
    assert!(text.contains("kvs_engine_bloom_negatives_total"));
    site.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_shutdown_is_refused_and_changes_nothing() {
    let (site, backend, _site) = single_node().await;
    let routes = http::routes(backend.clone(), Limits::default());
    site.shutdown().await.expect("shutdown");
    let applied = site.engine().applied();
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/k")
        .body("v")
        .reply(&routes)
        .await;
    // The loop is gone: nothing was proposed, so this is a definite refusal, not an unknown outcome.
    assert_eq!(put.status(), 503, "{:?}", put.body());
    let body: serde_json::Value = serde_json::from_slice(put.body()).expect("json");
    assert_eq!(body["error"]["code"], "shutting_down");
    assert_eq!(site.engine().applied(), applied);
    assert!(site.engine().get(b"k", u64::MAX).expect("read").is_none());
}

/// Issue 9 item 8: once the node loop is gone, `/healthz` says so at once, and `/readyz` stops trusting
/// its cached status when that grows old (before: both answered 200 for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_fail_once_the_node_loop_is_gone() {
    let (site, backend, _site) = single_node().await;
    let routes = http::routes(backend.clone(), Limits::default());
    let health = warp::test::request().path("/healthz").reply(&routes).await;
    assert_eq!(health.status(), 200);
    site.shutdown().await.expect("shutdown");
    let health = warp::test::request().path("/healthz").reply(&routes).await;
    assert_eq!(health.status(), 503, "{:?}", health.body());
    let stopped_at = Instant::now();
    let deadline = stopped_at + Duration::from_secs(5);
    let body = loop {
        let r = warp::test::request().path("/readyz").reply(&routes).await;
        if r.status() == 503 {
            break String::from_utf8_lossy(r.body()).to_string();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {} 5 s after the loop stopped: {:?}",
            r.status(),
            r.body()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body.contains("node status is"), "{body}");
}
