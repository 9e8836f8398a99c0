//! SPEC §9: bad input gets a clear error and changes nothing. Each case asserts the status, the error
//! code, and that the state is unchanged: the key's value, the engine's data, and (for input refused
//! before proposing) the applied index.

use std::time::Duration;

use serde_json::json;
use warp::test::RequestBuilder;

use super::{Api, Resp};
use crate::http::Limits;

fn limits() -> Limits {
    Limits {
        max_body: 64 << 10,
        max_key: 256,
        max_value: 8 << 10,
        ..Limits::default()
    }
}

#[derive(Debug, PartialEq, Eq)]
struct State {
    applied_index: u64,
    data_entries: u64,
    k: Option<Vec<u8>>,
    fenced: Option<Vec<u8>>,
    epoch: u64,
}

fn state(api: &Api) -> State {
    let engine = crate::http::Backend::engine(&api.fake);
    State {
        applied_index: engine.applied().index,
        data_entries: engine.data_entries().unwrap(),
        k: api.fake.value(b"k"),
        fenced: api.fake.value(b"p/x"),
        epoch: engine.epoch(b"p", u64::MAX).unwrap(),
    }
}

/// `k` = "v0", and entity `p` past one checkpoint (epoch 1) with `p/x` = "live".
async fn setup() -> Api {
    let api = Api::with_limits(limits());
    api.put_ok("/v1/kv/k", "v0").await;
    let r = api
        .post_json("/v1/entities/p/checkpoint", &json!({"name": "c1"}))
        .await;
    assert_eq!(r.json()["epoch"], 1);
    api.put_ok("/v1/kv/p/x?epoch=1", "live").await;
    api
}

fn post(path: &str, body: impl Into<Vec<u8>>) -> RequestBuilder {
    warp::test::request()
        .method("POST")
        .path(path)
        .header("content-type", "application/json")
        .body(body.into())
}

fn put(path: &str, body: impl Into<Vec<u8>>) -> RequestBuilder {
    warp::test::request()
        .method("PUT")
        .path(path)
        .body(body.into())
}

fn get(path: &str) -> RequestBuilder {
    warp::test::request().method("GET").path(path)
}

/// Send `req`, check status and code, and that nothing changed. `proposes`: the request reaches the log
/// (the engine refuses it when applying), so only the applied index moves.
async fn refused(api: &Api, req: RequestBuilder, status: u16, code: &str, proposes: bool) -> Resp {
    let before = state(api);
    let r = api.send(req).await;
    assert_eq!(
        r.err(),
        (status, code.to_owned()),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let after = state(api);
    let expected = State {
        applied_index: before.applied_index + u64::from(proposes),
        ..before
    };
    assert_eq!(after, expected, "state changed");
    r
}

/// A request refused with 400 `bad_request` that proposes nothing.
async fn bad_request(api: &Api, req: RequestBuilder) -> Resp {
    refused(api, req, 400, "bad_request", false).await
}

#[tokio::test]
async fn malformed_json() {
    let api = setup().await;
    bad_request(&api, post("/v1/txn", "{not json")).await;
    bad_request(&api, post("/v1/batch", "[1,2]")).await;
    bad_request(&api, post("/v1/entities/p/checkpoint", "\"name\"")).await;
    bad_request(&api, post("/v1/cluster/members", "{}")).await;
}

#[tokio::test]
async fn truncated_json() {
    let api = setup().await;
    let body = r#"{"ops":[{"op":"put","key":"k","value":"x"}"#;
    let r = bad_request(&api, post("/v1/batch", body)).await;
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("truncated"));
}

#[tokio::test]
async fn ten_thousand_deep_nesting() {
    let api = setup().await;
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    bad_request(&api, post("/v1/txn", deep.clone())).await;
    let nested = format!(r#"{{"compares":{deep}}}"#);
    bad_request(&api, post("/v1/txn", nested)).await;
    let objects = r#"{"a":"#.repeat(10_000) + "1" + &"}".repeat(10_000);
    bad_request(&api, post("/v1/batch", objects)).await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let api = setup().await;
    let body =
        serde_json::to_vec(&json!({"ops": [{"op": "put", "key": "k", "value": "x"}]})).unwrap();
    let req = warp::test::request()
        .method("POST")
        .path("/v1/batch")
        .header("content-type", "text/plain")
        .body(body);
    refused(&api, req, 415, "unsupported_media_type", false).await;
}

#[tokio::test]
async fn missing_content_length_is_411() {
    let api = setup().await;
    let req = warp::test::request().method("PUT").path("/v1/kv/k");
    refused(&api, req, 411, "length_required", false).await;
    let req = warp::test::request().method("POST").path("/v1/txn");
    refused(&api, req, 411, "length_required", false).await;
}

#[tokio::test]
async fn oversized_body_is_413_before_reading() {
    let api = setup().await;
    let big = vec![b' '; (64 << 10) + 1];
    refused(&api, post("/v1/batch", big), 413, "too_large", false).await;
    // A declared length over the limit is refused on the header alone: the body is never read.
    let req = put("/v1/kv/k", "x").header("content-length", "10000000000");
    refused(&api, req, 413, "too_large", false).await;
}

#[tokio::test]
async fn oversized_key_is_413() {
    let api = setup().await;
    let key = "a".repeat(257);
    refused(
        &api,
        put(&format!("/v1/kv/{key}"), "x"),
        413,
        "too_large",
        false,
    )
    .await;
    let body =
        serde_json::to_vec(&json!({"ops": [{"op": "put", "key": key, "value": "x"}]})).unwrap();
    refused(&api, post("/v1/batch", body), 413, "too_large", false).await;
    refused(&api, get(&format!("/v1/kv/{key}")), 413, "too_large", false).await;
}

#[tokio::test]
async fn oversized_value_is_413() {
    let api = setup().await;
    let value = vec![b'x'; (8 << 10) + 1];
    refused(
        &api,
        put("/v1/kv/k", value.clone()),
        413,
        "too_large",
        false,
    )
    .await;
    let body = serde_json::to_vec(
        &json!({"ops": [{"op": "put", "key": "k", "value": String::from_utf8(value).unwrap()}]}),
    )
    .unwrap();
    refused(&api, post("/v1/batch", body), 413, "too_large", false).await;
}

#[tokio::test]
async fn empty_key_is_400_invalid_key() {
    let api = setup().await;
    refused(&api, put("/v1/kv/", "x"), 400, "invalid_key", false).await;
    refused(&api, put("/v1/kv", "x"), 400, "invalid_key", false).await;
    let body =
        serde_json::to_vec(&json!({"ops": [{"op": "put", "key": "", "value": "x"}]})).unwrap();
    refused(&api, post("/v1/batch", body), 400, "invalid_key", false).await;
}

#[tokio::test]
async fn invalid_utf8_key_in_the_path_is_400_invalid_key() {
    let api = setup().await;
    refused(&api, put("/v1/kv/%FF%FE", "x"), 400, "invalid_key", false).await;
    refused(&api, get("/v1/kv/%C3%28"), 400, "invalid_key", false).await;
    refused(
        &api,
        post("/v1/entities/%FF/checkpoint", r#"{"name":"n"}"#),
        400,
        "invalid_key",
        false,
    )
    .await;
    // An entity may not contain '/'.
    refused(
        &api,
        post("/v1/entities/a%2Fb/checkpoint", r#"{"name":"n"}"#),
        400,
        "invalid_key",
        false,
    )
    .await;
    // Bad base64 in key_b64.
    bad_request(&api, put("/v1/kv?key_b64=!!", "x")).await;
}

#[tokio::test]
async fn stale_epoch_is_409_with_the_current_epoch() {
    let api = setup().await;
    let r = refused(
        &api,
        put("/v1/kv/p/x?epoch=0", "late"),
        409,
        "stale_epoch",
        true,
    )
    .await;
    assert_eq!(r.json()["error"]["current_epoch"], 1);
    let r = refused(
        &api,
        post("/v1/entities/p/checkpoint", r#"{"name":"c2","epoch":0}"#),
        409,
        "stale_epoch",
        true,
    )
    .await;
    assert_eq!(r.json()["error"]["current_epoch"], 1);
}

#[tokio::test]
async fn failed_txn_compare_is_200_not_succeeded_and_changes_nothing() {
    let api = setup().await;
    let before = state(&api);
    let body = json!({
        "compares": [{"key": "k", "target": "value", "op": "eq", "value": "nope"}],
        "success": [{"op": "put", "key": "k", "value": "changed"}]
    });
    let r = api.post_json("/v1/txn", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["succeeded"], false);
    assert_eq!(r.json()["results"], json!([]));
    let after = state(&api);
    assert_eq!(
        after,
        State {
            applied_index: before.applied_index + 1,
            ..before
        }
    );
}

#[tokio::test]
async fn unknown_route_is_404_and_unknown_method_is_405() {
    let api = setup().await;
    refused(&api, get("/v2/kv/k"), 404, "not_found", false).await;
    refused(&api, get("/v1/nothing"), 404, "not_found", false).await;
    refused(
        &api,
        get("/v1/entities/p/checkpoints"),
        404,
        "not_found",
        false,
    )
    .await;
    refused(&api, post("/v1/kvx", "{}"), 404, "not_found", false).await;
    let req = warp::test::request()
        .method("PATCH")
        .path("/v1/kv/k")
        .body("x");
    refused(&api, req, 405, "method_not_allowed", false).await;
    refused(&api, get("/v1/txn"), 405, "method_not_allowed", false).await;
    refused(
        &api,
        put("/v1/cluster", "{}"),
        405,
        "method_not_allowed",
        false,
    )
    .await;
    refused(
        &api,
        warp::test::request().method("DELETE").path("/healthz"),
        405,
        "method_not_allowed",
        false,
    )
    .await;
}

#[tokio::test]
async fn at_older_than_retention_is_410() {
    let api = setup().await;
    let old = api.fake.now() - 6_000_000;
    refused(
        &api,
        get(&format!("/v1/kv/k?at={old}")),
        410,
        "version_gone",
        false,
    )
    .await;
    refused(&api, get("/v1/kv/k?at=1"), 410, "version_gone", false).await;
    api.fake.advance_clock(Duration::from_secs(10));
    let r = api.get("/v1/kv/k").await;
    assert_eq!(&r.body[..], b"v0", "the latest version outlives the window");
}

#[tokio::test]
async fn non_numeric_parameters_are_400() {
    let api = setup().await;
    bad_request(&api, post("/v1/kv/n/incr?delta=abc", "")).await;
    bad_request(&api, post("/v1/kv/n/incr?delta=1.5", "")).await;
    bad_request(&api, post("/v1/kv/n/incr?delta=99999999999999999999", "")).await;
    bad_request(&api, get("/v1/kv/k?at=abc")).await;
    bad_request(&api, get("/v1/kv/k?at=-1")).await;
    bad_request(&api, put("/v1/kv/k?epoch=x", "v")).await;
    bad_request(&api, put("/v1/kv/k?if_version=", "v")).await;
    bad_request(&api, put("/v1/kv/k?if_absent=maybe", "v")).await;
    bad_request(&api, get("/v1/kv?limit=ten")).await;
    bad_request(
        &api,
        warp::test::request()
            .method("DELETE")
            .path("/v1/kv/k?epoch=one"),
    )
    .await;
}

#[tokio::test]
async fn unknown_parameters_and_fields_are_400() {
    let api = setup().await;
    // A typo must not silently drop a condition.
    bad_request(&api, put("/v1/kv/k?if_verison=1", "v")).await;
    bad_request(&api, get("/v1/kv/k?at=1&at=2")).await;
    let body = json!({"ops": [{"op": "put", "key": "k", "value": "x", "if_verison": 1}]});
    bad_request(&api, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    let body = json!({"ops": [{"op": "frobnicate", "key": "k"}]});
    bad_request(&api, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    let body = json!({"ops": [{"op": "put", "key": "k", "value_b64": "***"}]});
    bad_request(&api, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    let body = json!({"ops": [{"op": "put", "key": "k", "value": "a", "value_b64": "YQ=="}]});
    bad_request(&api, post("/v1/batch", serde_json::to_vec(&body).unwrap())).await;
    let body = json!({"compares": [{"key": "k", "target": "colour", "value": "x"}]});
    bad_request(&api, post("/v1/txn", serde_json::to_vec(&body).unwrap())).await;
}
