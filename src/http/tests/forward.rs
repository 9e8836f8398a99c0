//! Forwarding over real loopback servers: a follower proxies to the leader, exactly once.

use serde_json::json;

use super::fake::{FakeBackend, Mode};
use super::{http, Server};
use crate::http::Limits;

#[tokio::test]
async fn a_write_to_a_follower_lands_on_the_leader() {
    let leader = FakeBackend::new();
    let b = Server::start(leader.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    let a = Server::start(follower.clone(), Limits::default()).await;

    let r = http("PUT", &a.url("/v1/kv/player:1/pos?epoch=0"), b"12,34", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.json()["ts"].as_u64().is_some());
    assert_eq!(
        r.header("kvs-forwarded-to"),
        Some(b.addr.to_string().as_str())
    );
    assert_eq!(leader.value(b"player:1/pos").unwrap(), b"12,34");
    assert_eq!(follower.value(b"player:1/pos"), None);

    // A linearizable read through the follower is served by the leader, headers included.
    let g = http("GET", &a.url("/v1/kv/player:1/pos"), b"", &[]).await;
    assert_eq!((g.status.as_u16(), &g.body[..]), (200, &b"12,34"[..]));
    assert!(g.header("kvs-ts").is_some());

    // JSON bodies and their content type are forwarded intact.
    let body =
        serde_json::to_vec(&json!({"ops": [{"op": "incr", "key": "player:1/score", "delta": 5}]}))
            .unwrap();
    let r = http(
        "POST",
        &a.url("/v1/batch"),
        &body,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["results"][0]["value"], 5);
    // Errors come back as the leader gave them.
    let r = http("PUT", &a.url("/v1/kv/player:1/pos?epoch=7"), b"x", &[]).await;
    assert_eq!(r.err(), (409, "stale_epoch".into()));

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_forwarded_request_is_never_forwarded_again() {
    let fa = FakeBackend::new();
    let fb = FakeBackend::new();
    let a = Server::start(fa.clone(), Limits::default()).await;
    let b = Server::start(fb.clone(), Limits::default()).await;
    // Each believes the other leads: without the loop guard this would bounce forever.
    fa.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    fb.set_mode(Mode::NotLeader(Some(a.addr.to_string())));

    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[]).await;
    assert_eq!(r.err(), (503, "not_leader".into()));
    assert_eq!(r.json()["error"]["leader"], a.addr.to_string());
    assert_eq!((fa.proposals(), fb.proposals()), (1, 1));

    // Marked as forwarded: answered here, with the leader it believes in.
    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[("kvs-forwarded", "1")]).await;
    assert_eq!(r.err(), (503, "not_leader".into()));
    assert_eq!(r.json()["error"]["leader"], b.addr.to_string());
    assert_eq!((fa.proposals(), fb.proposals()), (2, 1));
    assert_eq!(fa.value(b"k"), None);
    assert_eq!(fb.value(b"k"), None);

    a.shutdown().await;
    b.shutdown().await;
}
