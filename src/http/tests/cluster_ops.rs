//! Cluster view, membership, leader transfer, sync, metrics, healthz, readyz.

use serde_json::json;

use super::Api;
use crate::http::Readiness;

#[tokio::test]
async fn cluster_view_has_the_spec_shape() {
    let api = Api::new();
    let r = api.get("/v1/cluster").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["cluster_id"], "site-a");
    assert_eq!(body["leader"], 1);
    assert_eq!(body["term"], 3);
    let m = &body["members"][0];
    for field in [
        "id",
        "peer_addr",
        "client_addr",
        "role",
        "commit",
        "applied",
        "healthy",
    ] {
        assert!(m.get(field).is_some(), "member field {field} missing: {m}");
    }
    assert_eq!(m["role"], "leader");
    assert_eq!(body["members"][1]["role"], "follower");
}

#[tokio::test]
async fn members_add_and_remove() {
    let api = Api::new();
    let r = api
        .post_json(
            "/v1/cluster/members",
            &json!({"peer_addr": "10.0.0.4:7380", "client_addr": "10.0.0.4:7379", "learner": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let members = r.json()["members"].as_array().unwrap().clone();
    let new = members.iter().find(|m| m["id"] == 4).expect("member 4");
    assert_eq!(new["role"], "learner");
    assert_eq!(new["peer_addr"], "10.0.0.4:7380");

    let r = api
        .post_json("/v1/cluster/members", &json!({"id": 4, "peer_addr": "x:1"}))
        .await;
    assert_eq!(r.err(), (409, "member_exists".into()));
    let r = api
        .post_json("/v1/cluster/members", &json!({"peer_addr": ""}))
        .await;
    assert_eq!(r.err(), (400, "bad_request".into()));

    let r = api.delete("/v1/cluster/members/4").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["id"] != 4));
    let r = api.delete("/v1/cluster/members/4").await;
    assert_eq!(r.err(), (404, "member_not_found".into()));
    let r = api.delete("/v1/cluster/members/four").await;
    assert_eq!(r.err(), (400, "bad_request".into()));
}

#[tokio::test]
async fn leader_transfer_to_a_member_or_to_any() {
    let api = Api::new();
    let r = api.post_json("/v1/cluster/leader", &json!({"to": 2})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"requested": true, "to": 2}));
    let r = api.post_raw("/v1/cluster/leader", "").await;
    assert_eq!(r.json()["to"], json!(null));
    let r = api
        .post_json("/v1/cluster/leader", &json!({"to": null}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(api.fake.transfers(), [Some(2), None, None]);
    let r = api
        .post_json("/v1/cluster/leader", &json!({"to": "two"}))
        .await;
    assert_eq!(r.err(), (400, "bad_request".into()));
}

#[tokio::test]
async fn sync_reports_federation_not_configured() {
    let api = Api::new();
    let r = api.get("/v1/sync").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["configured"], false);
    assert_eq!(body["cursor"], json!(null));
    assert_eq!(body["state"], json!(null));
    // Pause and resume need federation: without it they are a 409 and change nothing.
    for path in ["/v1/sync/pause", "/v1/sync/resume"] {
        let r = api.post_raw(path, "").await;
        assert_eq!(r.err(), (409, "sync_not_configured".into()), "{path}");
    }
}

#[tokio::test]
async fn healthz_and_readyz() {
    let api = Api::new();
    let r = api.get("/healthz").await;
    assert_eq!(
        (r.status.as_u16(), r.json()["status"].clone()),
        (200, json!("ok"))
    );
    let r = api.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ready"], true);
    api.fake.set_readiness(Readiness {
        leader_known: false,
        applied_caught_up: true,
        disk_writable: true,
        detail: vec!["no leader known".into()],
        degraded: Vec::new(),
    });
    let r = api.get("/readyz").await;
    assert_eq!(r.err(), (503, "not_ready".into()));
    let body = r.json();
    assert_eq!(body["leader_known"], false);
    assert_eq!(body["applied_caught_up"], true);
    assert_eq!(body["detail"], json!(["no leader known"]));
}

#[tokio::test]
async fn healthz_fails_once_the_node_loop_died() {
    let api = Api::new();
    assert_eq!(api.get("/healthz").await.status, 200);
    api.fake.kill_loop("storage: No space left on device");
    let r = api.get("/healthz").await;
    assert_eq!(r.err(), (503, "shutting_down".into()));
    let message = r.json()["error"]["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("No space left on device")),
        "{message}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_append_backend_metrics() {
    let api = Api::new();
    api.put_ok("/v1/kv/player:1/pos", "a").await;
    api.put_ok("/v1/kv/player:2/pos", "b").await;
    api.get("/v1/kv/none").await;
    api.get("/nowhere").await;
    let r = api.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for line in [
        "kvs_http_requests_total{code=\"200\",method=\"PUT\",route=\"/v1/kv/{key}\"} 2",
        "kvs_http_requests_total{code=\"404\",method=\"GET\",route=\"/v1/kv/{key}\"} 1",
        "kvs_http_requests_total{code=\"404\",method=\"GET\",route=\"other\"} 1",
        "kvs_http_request_duration_seconds_count{route=\"/v1/kv/{key}\"} 3",
        "kvs_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",le=\"+Inf\"} 3",
        "kvs_http_proposals_inflight 0",
        "kvs_fake_proposals_total 2",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
