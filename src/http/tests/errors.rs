//! Every backend failure maps to its status and code: not_leader, no_quorum, overloaded (+Retry-After),
//! unknown outcome, deadlines, shutting_down, version_gone; and the in-flight proposal bound.

use std::time::Duration;

use serde_json::json;

use super::fake::Mode;
use super::Api;
use crate::http::Limits;

#[tokio::test]
async fn not_leader_without_a_known_leader_is_503() {
    let api = Api::new();
    api.fake.set_mode(Mode::NotLeader(None));
    let r = api.put("/v1/kv/k", "v").await;
    assert_eq!(r.err(), (503, "not_leader".into()));
    assert_eq!(r.json()["error"]["leader"], json!(null));
    let r = api.get("/v1/kv/k").await;
    assert_eq!(r.err(), (503, "not_leader".into()));
}

#[tokio::test]
async fn a_forwarded_request_is_answered_not_leader_instead_of_forwarded_again() {
    let api = Api::new();
    api.fake
        .set_mode(Mode::NotLeader(Some("10.9.9.9:7379".into())));
    let r = api
        .send(
            warp::test::request()
                .method("PUT")
                .path("/v1/kv/k")
                .header("kvs-forwarded", "1")
                .body("v"),
        )
        .await;
    assert_eq!(r.err(), (503, "not_leader".into()));
    assert_eq!(r.json()["error"]["leader"], "10.9.9.9:7379");
}

#[tokio::test]
async fn overloaded_backend_is_429_with_retry_after() {
    let api = Api::new();
    api.fake.set_mode(Mode::Overloaded);
    let r = api.put("/v1/kv/k", "v").await;
    assert_eq!(r.err(), (429, "overloaded".into()));
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn the_in_flight_proposal_bound_answers_429_instead_of_queueing() {
    let limits = Limits {
        max_inflight_proposals: 1,
        ..Limits::default()
    };
    let api = Api::with_limits(limits);
    api.fake.set_delay(Duration::from_millis(300));
    let (a, b) = tokio::join!(api.put("/v1/kv/a", "1"), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        api.put("/v1/kv/b", "2").await
    });
    assert_eq!(a.status, 200);
    assert_eq!(b.err(), (429, "overloaded".into()));
    assert_eq!(b.header("retry-after"), Some("1"));
    assert_eq!(api.fake.value(b"b"), None);
    // The slot is free again once the first proposal finished.
    assert_eq!(api.put("/v1/kv/b", "2").await.status, 200);
}

#[tokio::test]
async fn unknown_outcome_is_504() {
    let api = Api::new();
    api.fake.set_mode(Mode::Unknown);
    let r = api.put("/v1/kv/k", "v").await;
    assert_eq!(r.err(), (504, "unknown_outcome".into()));
    let r = api.get("/v1/kv/k").await;
    assert_eq!(r.err(), (504, "timeout".into()));
}

#[tokio::test]
async fn a_write_past_its_deadline_is_504_unknown_outcome_and_may_still_apply() {
    let limits = Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let api = Api::with_limits(limits);
    api.fake.set_delay(Duration::from_millis(400));
    let r = api.put("/v1/kv/k", "v").await;
    assert_eq!(r.err(), (504, "unknown_outcome".into()));
    // The proposal ran on in its own task: the outcome really was unknown, and here it committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while api.fake.value(b"k").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "proposal never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_read_past_its_deadline_is_504_timeout() {
    let limits = Limits {
        request_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let api = Api::with_limits(limits);
    api.fake.set_delay(Duration::from_millis(400));
    let r = api.get("/v1/kv/k").await;
    assert_eq!(r.err(), (504, "timeout".into()));
}

#[tokio::test]
async fn no_quorum_and_shutting_down_are_503() {
    let api = Api::new();
    api.fake.set_mode(Mode::NoQuorum);
    assert_eq!(
        api.put("/v1/kv/k", "v").await.err(),
        (503, "no_quorum".into())
    );
    assert_eq!(api.get("/v1/kv/k").await.err(), (503, "no_quorum".into()));
    assert_eq!(
        api.get("/v1/cluster").await.err(),
        (503, "no_quorum".into())
    );
    api.fake.set_mode(Mode::ShuttingDown);
    assert_eq!(
        api.put("/v1/kv/k", "v").await.err(),
        (503, "shutting_down".into())
    );
    assert_eq!(
        api.post_json("/v1/cluster/leader", &json!({"to": 2}))
            .await
            .err(),
        (503, "shutting_down".into())
    );
}

#[tokio::test]
async fn a_read_older_than_the_retention_window_is_410_version_gone() {
    let api = Api::new();
    let ts = api.put_ok("/v1/kv/k", "v").await;
    assert_eq!(api.get(&format!("/v1/kv/k?at={ts}")).await.status, 200);
    api.fake.advance_clock(Duration::from_secs(6));
    for path in [
        format!("/v1/kv/k?at={ts}"),
        format!("/v1/kv?at={ts}"),
        format!("/v1/entities/p?at={ts}"),
        format!("/v1/entities/p/checkpoints/c?at={ts}"),
    ] {
        let r = api.get(&path).await;
        assert_eq!(r.err(), (410, "version_gone".into()), "{path}");
        assert_eq!(r.json()["error"]["at"], ts);
        assert!(r.json()["error"]["floor"].as_u64().unwrap() > ts);
    }
    // The latest state is still readable.
    assert_eq!(api.get("/v1/kv/k").await.status, 200);
}
