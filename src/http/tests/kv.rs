//! `/v1/kv` routes: put, get, delete, incr, scan; conditions, snapshot reads, consistency modes, keys.

use serde_json::json;

use super::fake::Mode;
use super::Api;

#[tokio::test]
async fn put_then_get_returns_the_raw_value_with_ts_and_epoch_headers() {
    let api = Api::new();
    let r = api.put("/v1/kv/player:1/pos", "12.5,40.1").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let ts = body["ts"].as_u64().unwrap();
    assert_eq!(body["epoch"], 0);
    let g = api.get("/v1/kv/player:1/pos").await;
    assert_eq!(g.status, 200);
    assert_eq!(&g.body[..], b"12.5,40.1");
    assert_eq!(g.header_u64("kvs-ts"), ts);
    assert_eq!(g.header_u64("kvs-epoch"), 0);
    assert_eq!(g.header("content-type"), Some("application/octet-stream"));
    assert_eq!(g.header("kvs-stale-ms"), None);
}

#[tokio::test]
async fn get_of_an_absent_key_is_404_key_not_found() {
    let api = Api::new();
    let r = api.get("/v1/kv/nope").await;
    assert_eq!(r.err(), (404, "key_not_found".into()));
}

#[tokio::test]
async fn put_conditions_if_absent_and_if_version() {
    let api = Api::new();
    let ts1 = api.put_ok("/v1/kv/k?if_absent", "a").await;
    let r = api.put("/v1/kv/k?if_absent=true", "b").await;
    assert_eq!(r.err(), (409, "condition_failed".into()));
    assert_eq!(r.json()["error"]["current_version"], ts1);
    let ts2 = api.put_ok(&format!("/v1/kv/k?if_version={ts1}"), "c").await;
    let r = api.put(&format!("/v1/kv/k?if_version={ts1}"), "d").await;
    assert_eq!(r.err(), (409, "condition_failed".into()));
    assert_eq!(r.json()["error"]["current_version"], ts2);
    assert_eq!(api.fake.value(b"k").unwrap(), b"c");
}

#[tokio::test]
async fn delete_returns_ts_and_hides_the_key() {
    let api = Api::new();
    let ts1 = api.put_ok("/v1/kv/k", "v").await;
    let r = api.delete("/v1/kv/k?if_version=1").await;
    assert_eq!(r.err(), (409, "condition_failed".into()));
    let r = api.delete(&format!("/v1/kv/k?if_version={ts1}")).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["ts"].as_u64().unwrap() > ts1);
    assert_eq!(r.json()["existed"], true);
    assert_eq!(api.get("/v1/kv/k").await.status, 404);
    let r = api.delete("/v1/kv/k").await;
    assert_eq!(r.json()["existed"], false);
}

#[tokio::test]
async fn incr_defaults_to_one_takes_delta_and_stores_decimal() {
    let api = Api::new();
    let r = api.post_raw("/v1/kv/score/incr", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["value"], 1);
    let r = api.post_raw("/v1/kv/score/incr?delta=41", "").await;
    let body = r.json();
    assert_eq!(body["value"], 42);
    assert!(body["ts"].as_u64().is_some());
    assert_eq!(body["epoch"], 0);
    assert_eq!(&api.get("/v1/kv/score").await.body[..], b"42");
    let r = api.post_raw("/v1/kv/score/incr?delta=-50", "").await;
    assert_eq!(r.json()["value"], -8);
}

#[tokio::test]
async fn incr_on_a_non_integer_or_past_i64_is_409() {
    let api = Api::new();
    api.put_ok("/v1/kv/name", "alice").await;
    let r = api.post_raw("/v1/kv/name/incr", "").await;
    assert_eq!(r.err(), (409, "not_an_integer".into()));
    api.put_ok("/v1/kv/big", i64::MAX.to_string()).await;
    let r = api.post_raw("/v1/kv/big/incr", "").await;
    assert_eq!(r.err(), (409, "overflow".into()));
    assert_eq!(
        api.fake.value(b"big").unwrap(),
        i64::MAX.to_string().as_bytes()
    );
}

#[tokio::test]
async fn post_under_kv_that_is_not_incr_is_405() {
    let api = Api::new();
    let r = api.post_raw("/v1/kv/a/b", "").await;
    assert_eq!(r.err(), (405, "method_not_allowed".into()));
}

#[tokio::test]
async fn scan_by_prefix_range_and_limit() {
    let api = Api::new();
    for k in ["a/1", "a/2", "a/3", "b/1"] {
        api.put_ok(&format!("/v1/kv/{k}"), format!("v{k}")).await;
    }
    let r = api.get("/v1/kv?prefix=a/").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let keys: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["a/1", "a/2", "a/3"]);
    assert_eq!(body["more"], false);
    let item = &body["items"][0];
    assert_eq!(item["value"], "va/1");
    assert!(item["ts"].as_u64().is_some());
    assert_eq!(item["epoch"], 0);

    let r = api.get("/v1/kv?prefix=a/&limit=2").await.json();
    assert_eq!(r["items"].as_array().unwrap().len(), 2);
    assert_eq!(r["more"], true);

    let r = api.get("/v1/kv?start=a/2&end=b/1").await.json();
    let keys: Vec<_> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["a/2", "a/3"]);

    let all = api.get("/v1/kv").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 4);

    let r = api.get("/v1/kv?prefix=a&start=a").await;
    assert_eq!(r.err(), (400, "bad_request".into()));
}

#[tokio::test]
async fn non_utf8_keys_and_values_use_b64() {
    let api = Api::new();
    // key 0xff 0x00, value 0xfe: PUT by key_b64 (URL-safe, unpadded) on the bare /v1/kv path.
    let r = api.put("/v1/kv?key_b64=_wA", [0xfe]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(api.fake.value(&[0xff, 0x00]).unwrap(), [0xfe]);
    // Point read by key_b64, standard alphabet, with the trailing slash form too.
    let g = api.get("/v1/kv?key_b64=%2FwA%3D").await;
    assert_eq!((g.status.as_u16(), &g.body[..]), (200, &[0xfe][..]));
    let g = api.get("/v1/kv/?key_b64=_wA").await;
    assert_eq!(&g.body[..], &[0xfe]);
    // Scans show them as *_b64.
    let body = api.get("/v1/kv").await.json();
    assert_eq!(body["items"][0]["key_b64"], "/wA=");
    assert_eq!(body["items"][0]["value_b64"], "/g==");
    assert!(body["items"][0].get("key").is_none());
    // incr and delete by key_b64.
    let r = api.post_raw("/v1/kv/incr?key_b64=AQ", "").await;
    assert_eq!(r.json()["value"], 1);
    assert_eq!(api.fake.value(&[1]).unwrap(), b"1");
    let r = api.delete("/v1/kv?key_b64=_wA").await;
    assert_eq!(r.json()["existed"], true);
    // A key in the path and in key_b64 is ambiguous.
    let r = api.get("/v1/kv/a?key_b64=AQ").await;
    assert_eq!(r.err(), (400, "bad_request".into()));
}

#[tokio::test]
async fn path_keys_are_percent_decoded() {
    let api = Api::new();
    api.put_ok("/v1/kv/a%20b%2Fc%3F", "x").await;
    assert_eq!(api.fake.value(b"a b/c?").unwrap(), b"x");
    let g = api.get("/v1/kv/a%20b/c%3F").await;
    assert_eq!(&g.body[..], b"x");
}

#[tokio::test]
async fn snapshot_reads_at_a_past_ts_see_the_old_version() {
    let api = Api::new();
    let ts1 = api.put_ok("/v1/kv/k", "one").await;
    let ts2 = api.put_ok("/v1/kv/k", "two").await;
    let g = api.get(&format!("/v1/kv/k?at={ts1}")).await;
    assert_eq!(&g.body[..], b"one");
    assert_eq!(g.header_u64("kvs-ts"), ts1);
    let g = api.get(&format!("/v1/kv/k?at={ts2}")).await;
    assert_eq!(&g.body[..], b"two");
    assert_eq!(
        api.get(&format!("/v1/kv/k?at={}", ts1 - 1)).await.status,
        404
    );
    // Scans take `at` too.
    let s = api.get(&format!("/v1/kv?prefix=k&at={ts1}")).await.json();
    assert_eq!(s["items"][0]["value"], "one");
    assert_eq!(s["at"], ts1);
}

#[tokio::test]
async fn consistency_modes_choose_the_barrier() {
    let api = Api::new();
    api.put_ok("/v1/kv/k", "v").await;
    let b0 = api.fake.barriers();
    let g = api.get("/v1/kv/k").await;
    assert_eq!(g.status, 200);
    assert_eq!(api.fake.barriers(), b0 + 1, "linearizable is the default");
    api.get("/v1/kv/k?consistency=lease").await;
    api.get("/v1/kv/k?consistency=linearizable").await;
    assert_eq!(api.fake.barriers(), b0 + 3);
    let g = api.get("/v1/kv/k?consistency=stale").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header_u64("kvs-stale-ms"), 7);
    assert_eq!(api.fake.barriers(), b0 + 3, "stale reads take no barrier");
    let s = api.get("/v1/kv?consistency=stale").await.json();
    assert_eq!(s["stale_ms"], 7);
    let r = api.get("/v1/kv/k?consistency=eventual").await;
    assert_eq!(r.err(), (400, "bad_request".into()));
}

#[tokio::test]
async fn a_follower_serves_past_snapshot_reads_locally_and_stale_reads_too() {
    let api = Api::new();
    let ts = api.put_ok("/v1/kv/k", "v").await;
    // Port 1 on loopback refuses connections: anything forwarded fails visibly.
    api.fake
        .set_mode(Mode::NotLeader(Some("127.0.0.1:1".into())));
    let g = api.get(&format!("/v1/kv/k?at={ts}")).await;
    assert_eq!((g.status.as_u16(), &g.body[..]), (200, &b"v"[..]));
    let g = api.get("/v1/kv/k?consistency=stale").await;
    assert_eq!(g.status, 200);
    // A linearizable read is forwarded (and here the leader is unreachable).
    let r = api.get("/v1/kv/k").await;
    assert_eq!(r.err(), (503, "leader_unreachable".into()));
    assert_eq!(r.json()["error"]["leader"], "127.0.0.1:1");
    // An `at` this replica has not applied yet: the backend says NotLeader, the read is forwarded.
    let r = api.get(&format!("/v1/kv/k?at={}", ts + 10)).await;
    assert_eq!(r.err(), (503, "leader_unreachable".into()));
    assert!(api.fake.waits() >= 1);
}

#[tokio::test]
async fn epoch_fencing_on_put_delete_and_incr() {
    let api = Api::new();
    api.put_ok("/v1/kv/p:1/x?epoch=0", "a").await;
    let r = api
        .post_json("/v1/entities/p:1/checkpoint", &json!({"name": "cp1"}))
        .await;
    assert_eq!(r.json()["epoch"], 1);
    for r in [
        api.put("/v1/kv/p:1/x?epoch=0", "late").await,
        api.delete("/v1/kv/p:1/x?epoch=0").await,
        api.post_raw("/v1/kv/p:1/n/incr?epoch=0", "").await,
    ] {
        assert_eq!(r.err(), (409, "stale_epoch".into()));
        assert_eq!(r.json()["error"]["current_epoch"], 1);
    }
    assert_eq!(api.get("/v1/kv/p:1/x").await.status, 404);
    let r = api.put("/v1/kv/p:1/x?epoch=1", "fresh").await;
    assert_eq!(r.json()["epoch"], 1);
    assert_eq!(api.get("/v1/kv/p:1/x").await.header_u64("kvs-epoch"), 1);
}

#[tokio::test]
async fn a_stale_read_at_a_ts_this_replica_has_not_applied_is_not_served_as_that_snapshot() {
    let api = Api::with_limits(super::super::Limits {
        request_timeout: std::time::Duration::from_millis(300),
        ..super::super::Limits::default()
    });
    let ts = api.put_ok("/v1/kv/k", "v").await;
    // Applied up to `ts`: the state at `ts + 10` is not final here, so it must not be labelled as it.
    let r = api
        .get(&format!("/v1/kv/k?consistency=stale&at={}", ts + 10))
        .await;
    assert_eq!(
        r.err(),
        (504, "timeout".into()),
        "served {:?} as the snapshot at {}",
        String::from_utf8_lossy(&r.body),
        ts + 10
    );
    assert_eq!(r.json()["error"]["at"], ts + 10);
    assert_eq!(r.json()["error"]["applied_ts"], ts);
    // At or below the applied ts the stale snapshot read is served at once.
    let g = api
        .get(&format!("/v1/kv/k?consistency=stale&at={ts}"))
        .await;
    assert_eq!((g.status.as_u16(), &g.body[..]), (200, &b"v"[..]));
}

#[tokio::test]
async fn a_stale_read_at_a_future_applied_ts_waits_for_it_within_the_deadline() {
    use crate::http::backend::Backend;
    let api = Api::with_limits(super::super::Limits {
        request_timeout: std::time::Duration::from_secs(5),
        ..super::super::Limits::default()
    });
    let ts = api.put_ok("/v1/kv/k", "v").await;
    let fake = api.fake.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        fake.propose(
            vec![engine::Op::put(b"k".to_vec(), b"w".to_vec())],
            deadline,
        )
        .await
        .map(|a| a.ts)
    });
    // The next write's ts is above `ts`: the read waits until it is applied here, then answers.
    let g = api
        .get(&format!("/v1/kv/k?consistency=stale&at={}", ts + 1))
        .await;
    let ts2 = writer.await.expect("writer").expect("second write");
    assert_eq!(g.status, 200, "{:?}", String::from_utf8_lossy(&g.body));
    let expected: &[u8] = if ts2 == ts + 1 { b"w" } else { b"v" };
    assert_eq!(&g.body[..], expected);
}

#[tokio::test]
async fn a_stale_read_whose_staleness_is_unknown_does_not_claim_to_be_fresh() {
    let api = Api::new();
    api.put_ok("/v1/kv/k", "v").await;
    // The replica cannot bound how far behind it is (e.g. it has not applied all it knows is committed).
    api.fake.set_stale_by_ms(None);
    let g = api.get("/v1/kv/k?consistency=stale").await;
    assert_eq!((g.status.as_u16(), &g.body[..]), (200, &b"v"[..]));
    assert_eq!(
        g.header("kvs-stale-ms"),
        None,
        "an unknown staleness was reported as a number"
    );
    let s = api.get("/v1/kv?consistency=stale").await.json();
    assert!(s["stale_ms"].is_null(), "{s}");
}

#[tokio::test]
async fn a_stale_read_at_a_ts_far_in_the_future_is_refused_at_once() {
    let api = Api::new();
    api.put_ok("/v1/kv/k", "v").await;
    let future = engine::clock::wall_micros() + 3_600_000_000;
    let started = std::time::Instant::now();
    let r = api
        .get(&format!("/v1/kv/k?consistency=stale&at={future}"))
        .await;
    assert_eq!(r.err(), (400, "bad_request".into()));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "waited {:?} for an `at` an hour ahead",
        started.elapsed()
    );
}
