//! The HTTP API over a real single-node replica (Raft log, engine, `ReplicaBackend`) in-process: the routes
//! answer through the node loop, and `/metrics`, `/readyz` and `/v1/cluster` report the node's real state.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::replicas::Site;
use kvs_raft::http::{self, Limits};
use kvs_raft::node::{Replica, ReplicaBackend};

async fn single_node() -> (Arc<Replica>, ReplicaBackend, Site) {
    single_node_with(|_| {}).await
}

async fn single_node_with(
    tune: impl Fn(&mut kvs_raft::node::ReplicaConfig),
) -> (Arc<Replica>, ReplicaBackend, Site) {
    let site = Site::start(1, "node-http", |cfg| {
        cfg.group.advertise_client = "127.0.0.1:1".into();
        tune(cfg);
    })
    .await;
    let replica = site.replica(1);
    let backend = ReplicaBackend::new(replica.clone());
    // Wait until the single voter leads, the backend's status cache has seen it, and the node is quiet:
    // everything committed (the new leader's first entry) is applied, so a test that compares the
    // engine's applied index before and after a request sees only that request's effect.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routes = http::routes(backend.clone(), Limits::default());
        let r = warp::test::request().path("/readyz").reply(&routes).await;
        let quiet = match replica
            .status(Instant::now() + Duration::from_secs(1))
            .await
        {
            Ok(s) => s.leader.is_some() && replica.engine().applied().index >= s.commit,
            Err(_) => false,
        };
        if r.status() == 200 && quiet {
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
    let mut writes_took = Duration::ZERO;
    let started = Instant::now();
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/player:1/pos")
        .body("12,34")
        .reply(&routes)
        .await;
    writes_took += started.elapsed();
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
        let started = Instant::now();
        let incr = warp::test::request()
            .method("POST")
            .path("/v1/kv/player:1/score/incr?delta=2")
            .reply(&routes)
            .await;
        writes_took += started.elapsed();
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
    // Each of the four writes passed every stage once, and the stages lie within the requests' time.
    let mut stages_took = 0.0;
    for stage in [
        "http_in",
        "spawn",
        "queue",
        "batch",
        "log_persist",
        "commit",
        "apply",
        "reply",
        "join",
    ] {
        let count = format!("kvs_write_stage_seconds_count{{stage=\"{stage}\"}}");
        assert_eq!(metric(&text, &count), 4.0, "{stage}: {text}");
        stages_took += metric(
            &text,
            &format!("kvs_write_stage_seconds_sum{{stage=\"{stage}\"}}"),
        );
    }
    assert!(stages_took > 0.0, "{text}");
    assert!(
        stages_took <= writes_took.as_secs_f64(),
        "stages {stages_took} s, requests {writes_took:?}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_scan_over_large_values_is_cut_at_the_byte_budget_with_more() {
    let (site, backend, _site) = single_node().await;
    let limits = Limits::default();
    let routes = http::routes(backend.clone(), limits.clone());
    let value = vec![b'x'; 900_000];
    for i in 0..40 {
        let put = warp::test::request()
            .method("PUT")
            .path(&format!("/v1/kv/big/{i:02}"))
            .body(value.clone())
            .reply(&routes)
            .await;
        assert_eq!(put.status(), 200, "{:?}", put.body());
    }
    // Page through the prefix: every page stays near the budget, and together they hold every key.
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let path = match &start {
            None => "/v1/kv?prefix=big/".to_string(),
            Some(s) => format!("/v1/kv?start={s}&end=big0"),
        };
        let r = warp::test::request().path(&path).reply(&routes).await;
        assert_eq!(r.status(), 200);
        let size = r.body().len();
        let page: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(!items.is_empty());
        // The item that reaches the budget ends the page: at most one value past it, plus JSON.
        assert!(
            size < limits.max_scan_bytes + 2 * value.len(),
            "a {size}-byte page of {} items, more: {}",
            items.len(),
            page["more"]
        );
        for item in items {
            seen.push(item["key"].as_str().expect("key").to_string());
        }
        if page["more"] == false {
            break;
        }
        // Continue just after the last key ("big/07" → "big/07%00").
        start = Some(format!("{}%00", seen.last().expect("a key")));
    }
    let want: Vec<String> = (0..40).map(|i| format!("big/{i:02}")).collect();
    assert_eq!(seen, want);
    site.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_larger_than_one_raft_entry_is_refused_with_413_and_changes_nothing() {
    let (site, backend, _site) =
        single_node_with(|cfg| cfg.group.node.max_entry_bytes = 256 << 10).await;
    let routes = http::routes(backend.clone(), Limits::default());
    let applied = site.engine().applied();
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/huge")
        .body(vec![b'x'; 300 << 10])
        .reply(&routes)
        .await;
    assert_eq!(put.status(), 413, "{:?}", put.body());
    let body: serde_json::Value = serde_json::from_slice(put.body()).expect("json");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(body["error"]["limit"].as_u64() < Some(256 << 10), "{body}");
    assert_eq!(site.engine().applied(), applied);
    // Just under the limit is fine.
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/big")
        .body(vec![b'x'; 200 << 10])
        .reply(&routes)
        .await;
    assert_eq!(put.status(), 200, "{:?}", put.body());
    site.shutdown().await.expect("shutdown");
}

/// While a snapshot install streams its image (here one whose last chunk turns out corrupt, so it is
/// refused and changes nothing), linearizable and stale reads and `/metrics` keep answering: nothing on
/// the async workers waits for the install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_metrics_answer_while_a_snapshot_install_streams_its_image() {
    use std::sync::mpsc;

    let (site, backend, _site) = single_node().await;
    let routes = http::routes(backend.clone(), Limits::default());
    let put = warp::test::request()
        .method("PUT")
        .path("/v1/kv/k")
        .body("v")
        .reply(&routes)
        .await;
    assert_eq!(put.status(), 200, "{:?}", put.body());

    // An image from another engine, its last chunk corrupted.
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = engine::Engine::open(src_dir.path(), engine::EngineConfig::default()).expect("open");
    src.apply(1, 1, &[engine::Op::put("other", "x")], true)
        .expect("apply");
    let mut chunks = Vec::new();
    src.write_snapshot(&mut |c| {
        chunks.push(c);
        Ok(())
    })
    .expect("snapshot");
    if let Some(last) = chunks.last_mut().and_then(|c| c.last_mut()) {
        *last ^= 1;
    }

    let (permit, gate) = mpsc::channel::<()>();
    let (sent, started) = tokio::sync::oneshot::channel::<()>();
    let engine = site.engine().clone();
    let installer = std::thread::spawn(move || {
        let mut sent = Some(sent);
        let mut stream = chunks.into_iter().inspect(move |_| match sent.take() {
            Some(s) => {
                let _ = s.send(());
            }
            None => {
                let _ = gate.recv();
            }
        });
        engine.install_snapshot(&mut stream).map(|_| ())
    });
    started.await.expect("the install started");

    let requests = tokio::spawn({
        let routes = routes.clone();
        async move {
            let mut answers = Vec::new();
            for path in ["/v1/kv/k", "/v1/kv/k?consistency=stale", "/metrics"] {
                let r = warp::test::request().path(path).reply(&routes).await;
                answers.push((path, r.status().as_u16(), r.body().clone()));
            }
            answers
        }
    });
    let answered = tokio::time::timeout(Duration::from_secs(3), requests).await;
    // Let the install go on either way, so a failure does not leave it hanging.
    drop(permit);
    let answers = answered
        .expect("reads and /metrics blocked behind the snapshot install")
        .expect("requests task");
    for (path, status, body) in &answers {
        assert_eq!(*status, 200, "{path}: {body:?}");
    }
    assert_eq!(answers[0].2.as_ref(), b"v");
    assert_eq!(answers[1].2.as_ref(), b"v");

    let refused = installer.join().expect("installer thread");
    assert!(refused.is_err(), "the corrupt image was installed");
    let after = warp::test::request().path("/v1/kv/k").reply(&routes).await;
    assert_eq!(after.body().as_ref(), b"v");
    site.shutdown().await.expect("shutdown");
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
