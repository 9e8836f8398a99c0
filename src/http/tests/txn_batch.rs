//! `POST /v1/txn` and `POST /v1/batch`.

use serde_json::json;

use super::Api;

#[tokio::test]
async fn txn_success_branch_applies_when_every_compare_holds() {
    let api = Api::new();
    let ts = api.put_ok("/v1/kv/k", "v1").await;
    let r = api
        .post_json(
            "/v1/txn",
            &json!({
                "compares": [
                    {"key": "k", "target": "value", "op": "eq", "value": "v1"},
                    {"key": "k", "target": "version", "op": "eq", "version": ts},
                    {"key": "k", "target": "exists", "exists": true},
                    {"key": "none", "target": "exists", "exists": false},
                    {"entity": "p", "target": "epoch", "op": "eq", "epoch": 0},
                    {"key": "k", "target": "version", "op": "gt", "value": 0},
                    {"key": "k", "target": "value", "op": "lt", "value": "v2"}
                ],
                "success": [
                    {"op": "put", "key": "k", "value": "v2"},
                    {"op": "incr", "key": "n", "delta": 5},
                    {"op": "get", "key": "k"}
                ],
                "failure": [{"op": "put", "key": "k", "value": "lost"}]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["succeeded"], true);
    let txn_ts = body["ts"].as_u64().unwrap();
    assert_eq!(
        body["results"],
        json!([
            {"op": "put", "ts": txn_ts, "epoch": 0},
            {"op": "incr", "value": 5, "ts": txn_ts, "epoch": 0},
            {"op": "get", "found": true, "value": "v2", "ts": txn_ts, "epoch": 0}
        ])
    );
    assert_eq!(api.fake.value(b"k").unwrap(), b"v2");
}

#[tokio::test]
async fn txn_failure_branch_runs_when_a_compare_fails() {
    let api = Api::new();
    api.put_ok("/v1/kv/k", "v1").await;
    let r = api
        .post_json(
            "/v1/txn",
            &json!({
                "compares": [{"key": "k", "target": "value", "op": "eq", "value": "other"}],
                "success": [{"op": "put", "key": "k", "value": "no"}],
                "failure": [{"op": "get", "key": "k"}, {"op": "get", "key": "absent"}]
            }),
        )
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["succeeded"], false);
    assert_eq!(body["results"][0]["value"], "v1");
    assert_eq!(body["results"][1], json!({"op": "get", "found": false}));
    assert_eq!(api.fake.value(b"k").unwrap(), b"v1");
}

#[tokio::test]
async fn a_failing_op_in_the_chosen_branch_fails_the_whole_txn() {
    let api = Api::new();
    api.post_json("/v1/entities/p/checkpoint", &json!({"name": "c"}))
        .await;
    let r = api
        .post_json(
            "/v1/txn",
            &json!({
                "success": [
                    {"op": "put", "key": "a", "value": "1"},
                    {"op": "put", "key": "p/x", "value": "late", "epoch": 0}
                ]
            }),
        )
        .await;
    assert_eq!(r.err(), (409, "stale_epoch".into()));
    assert_eq!(r.json()["error"]["current_epoch"], 1);
    assert_eq!(api.fake.value(b"a"), None, "all or nothing");
}

#[tokio::test]
async fn batch_ops_are_independent_with_one_result_each() {
    let api = Api::new();
    api.post_json("/v1/entities/p/checkpoint", &json!({"name": "c"}))
        .await;
    api.put_ok("/v1/kv/old", "x").await;
    let r = api
        .post_json(
            "/v1/batch",
            &json!({"ops": [
                {"op": "put", "key": "p/pos", "value": "1,2", "epoch": 1},
                {"op": "put", "key": "p/late", "value": "stale", "epoch": 0},
                {"op": "incr", "key": "p/score", "delta": 3},
                {"op": "get", "key": "p/pos"},
                {"op": "delete", "key": "old"},
                {"op": "put", "key_b64": "AQI=", "value_b64": "/w=="},
                {"op": "checkpoint", "entity": "q", "name": "n1", "data": "d"},
                {"op": "txn", "compares": [{"key": "old", "target": "exists", "exists": false}],
                 "success": [{"op": "put", "key": "t", "value": "ok"}]}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = r.json();
    let ts = body["ts"].as_u64().unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    assert_eq!(results[0], json!({"op": "put", "ts": ts, "epoch": 1}));
    assert_eq!(results[1]["error"]["code"], "stale_epoch");
    assert_eq!(results[1]["error"]["current_epoch"], 1);
    assert_eq!(
        results[2],
        json!({"op": "incr", "value": 3, "ts": ts, "epoch": 1})
    );
    assert_eq!(results[3]["value"], "1,2");
    assert_eq!(
        results[4],
        json!({"op": "delete", "ts": ts, "existed": true})
    );
    assert_eq!(results[5]["op"], "put");
    assert_eq!(
        results[6],
        json!({"op": "checkpoint", "epoch": 1, "ts": ts})
    );
    assert_eq!(results[7]["succeeded"], true);
    assert_eq!(api.fake.value(b"p/late"), None);
    assert_eq!(api.fake.value(&[1, 2]).unwrap(), [0xff]);
    assert_eq!(api.fake.value(b"t").unwrap(), b"ok");
    assert_eq!(api.fake.proposals(), 3, "the batch is one proposal");
}

#[tokio::test]
async fn batch_refuses_empty_and_too_many_ops_and_nested_txns() {
    let limits = crate::http::Limits {
        max_ops: 2,
        ..crate::http::Limits::default()
    };
    let api = Api::with_limits(limits);
    let r = api.post_json("/v1/batch", &json!({"ops": []})).await;
    assert_eq!(r.err(), (400, "bad_request".into()));
    let op = json!({"op": "put", "key": "k", "value": "v"});
    let r = api
        .post_json("/v1/batch", &json!({"ops": [op, op, op]}))
        .await;
    assert_eq!(r.err(), (413, "too_large".into()));
    let r = api
        .post_json(
            "/v1/txn",
            &json!({"success": [{"op": "txn", "success": []}]}),
        )
        .await;
    assert_eq!(r.err(), (400, "invalid_op".into()));
    assert_eq!(api.fake.proposals(), 0);
}
