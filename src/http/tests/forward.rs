//! Forwarding over real loopback servers: a follower proxies to the leader, exactly once.

use std::time::Duration;

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

/// A loopback address nothing listens on.
async fn dead_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn a_forward_to_a_leader_that_is_gone_waits_for_the_next_leader_and_goes_there() {
    let dead = dead_addr().await;
    let next = FakeBackend::new();
    let b = Server::start(next.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(dead.clone())));
    follower.learn_leader(Duration::from_millis(50), &b.addr.to_string());
    let a = Server::start(follower.clone(), Limits::default()).await;

    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.header("kvs-forwarded-to"),
        Some(b.addr.to_string().as_str())
    );
    assert_eq!(next.value(b"k").unwrap(), b"v");
    // It waited for a leader other than the one it could not reach.
    assert_eq!(follower.leader_waits(), vec![Some(dead)]);

    // No next leader by the end of the wait: the failure stands (nothing was sent anywhere).
    let dead = dead_addr().await;
    follower.set_mode(Mode::NotLeader(Some(dead.clone())));
    let r = http("PUT", &a.url("/v1/kv/k2"), b"v", &[]).await;
    assert_eq!(r.err(), (503, "leader_unreachable".into()));
    assert_eq!(next.value(b"k2"), None);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_old_leader_answering_not_leader_sends_the_request_on_to_the_new_one() {
    // b led, handed leadership over and does not know the new leader yet; c is the new leader.
    let old = FakeBackend::new();
    old.set_mode(Mode::NotLeader(None));
    let b = Server::start(old.clone(), Limits::default()).await;
    let new = FakeBackend::new();
    let c = Server::start(new.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    follower.learn_leader(Duration::from_millis(20), &c.addr.to_string());
    let a = Server::start(follower.clone(), Limits::default()).await;

    let body =
        serde_json::to_vec(&json!({"ops": [{"op": "incr", "key": "n", "delta": 2}]})).unwrap();
    let r = http(
        "POST",
        &a.url("/v1/batch"),
        &body,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["results"][0]["value"], 2);
    assert_eq!((old.proposals(), new.proposals()), (1, 1));
    assert_eq!(new.value(b"n").unwrap(), b"2");
    assert_eq!(follower.leader_waits(), vec![Some(b.addr.to_string())]);
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn a_node_that_knows_no_leader_waits_for_one_and_forwards() {
    let leader = FakeBackend::new();
    let b = Server::start(leader.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(None));
    follower.learn_leader(Duration::from_millis(30), &b.addr.to_string());
    let a = Server::start(follower.clone(), Limits::default()).await;

    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(leader.value(b"k").unwrap(), b"v");
    // The first failure was this node's own.
    assert_eq!(follower.leader_waits(), vec![None]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_unknown_outcome_is_never_sent_again() {
    let leader = FakeBackend::new();
    leader.set_mode(Mode::Unknown);
    let b = Server::start(leader.clone(), Limits::default()).await;
    let other = FakeBackend::new();
    let c = Server::start(other.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    follower.learn_leader(Duration::ZERO, &c.addr.to_string());
    let a = Server::start(follower.clone(), Limits::default()).await;

    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[]).await;
    assert_eq!(r.err(), (504, "unknown_outcome".into()));
    assert_eq!((leader.proposals(), other.proposals()), (1, 0));
    assert!(follower.leader_waits().is_empty());
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn a_request_is_forwarded_at_most_max_hops_times() {
    // b keeps answering not_leader and this node keeps believing b is next: bounded.
    let stuck = FakeBackend::new();
    stuck.set_mode(Mode::NotLeader(None));
    let b = Server::start(stuck.clone(), Limits::default()).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    for _ in 0..10 {
        follower.learn_leader(Duration::ZERO, &b.addr.to_string());
    }
    let a = Server::start(follower.clone(), Limits::default()).await;

    let r = http("PUT", &a.url("/v1/kv/k"), b"v", &[]).await;
    assert_eq!(r.err(), (503, "not_leader".into()));
    assert_eq!(stuck.proposals(), crate::http::forward::MAX_HOPS as u64);
    assert_eq!(follower.proposals(), 1);
    a.shutdown().await;
    b.shutdown().await;
}
