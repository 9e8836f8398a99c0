//! Issue 10 with the real binary: the three requests that used to stop a site for good, and every
//! membership guard rail. Each request is answered with a clear refusal, nothing changes (the members are
//! the same, writes commit), and the site still works after every node is restarted.
//!
//! Unreachable addresses are loopback ports nobody listens on.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{Http, Resp};
use common::proc::Cluster;
use common::{await_leader, view, wait_for};
use hyper::Method;
use serde_json::{json, Value};

const START: Duration = Duration::from_secs(20);

fn http() -> Http {
    // Longer than a request's own deadline (5 s): a promotion waits for its learner up to that.
    Http::new(Duration::from_secs(10))
}

async fn post_member(http: &Http, addr: SocketAddr, body: Value) -> Resp {
    http.post_json(addr, "/v1/cluster/members", &body)
        .await
        .expect("an answer")
}

async fn delete_member(http: &Http, addr: SocketAddr, id: u64) -> Resp {
    http.send(
        Method::DELETE,
        addr,
        &format!("/v1/cluster/members/{id}"),
        None,
    )
    .await
    .expect("an answer")
}

/// The answer is `status` with `code`, and its message says something.
fn assert_refused(r: &Resp, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (status, Some(code)),
        "{r}"
    );
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.len() > 20, "a clear message: {r}");
}

/// `(id, role)` of every member as node `at` sees it.
async fn roles(http: &Http, cluster: &Cluster, at: u64) -> Vec<(u64, String)> {
    let v = view(http, cluster.addr(at)).await.expect("cluster view");
    let mut out: Vec<(u64, String)> = v.members.iter().map(|m| (m.id, m.role.clone())).collect();
    out.sort();
    out
}

/// Voters only (the leader counts as one), as every node in `ids` sees them.
async fn assert_members(http: &Http, cluster: &Cluster, ids: &[u64], expected: &[u64]) {
    for &id in ids {
        let got = roles(http, cluster, id).await;
        let voters: Vec<u64> = got
            .iter()
            .filter(|(_, role)| role != "learner")
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(voters, expected, "node {id} sees {got:?}");
        assert!(
            got.iter().all(|(_, role)| role != "learner"),
            "node {id} sees {got:?}"
        );
    }
}

/// A write through node `at` commits.
async fn assert_writes(http: &Http, cluster: &Cluster, at: u64, key: &str) {
    let deadline = Instant::now() + START;
    loop {
        match http
            .put(cluster.addr(at), &format!("/v1/kv/{key}"), b"v")
            .await
        {
            Ok(r) if r.status == 200 => return,
            other => assert!(
                Instant::now() < deadline,
                "a write through node {at} does not commit: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM every node, wait for each to exit, start them all again, wait for a leader.
async fn restart_all(http: &Http, cluster: &mut Cluster) -> u64 {
    let ids = cluster.ids();
    for &id in &ids {
        cluster.sigterm(id);
    }
    for &id in &ids {
        let status = cluster.wait_exit(id, START).await;
        assert!(status.is_some(), "node {id} did not stop");
    }
    for &id in &ids {
        cluster.spawn(id);
    }
    cluster.wait_serving(http, &ids, START).await;
    await_leader(cluster, http, &ids, START).await.0
}

/// A loopback address nobody listens on.
fn unreachable(n: u16) -> String {
    format!("127.0.0.1:{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_requests_on_a_three_node_site_are_refused_and_the_site_keeps_working() {
    let http = http();
    let mut cluster = Cluster::start("members-site", 3);
    cluster.wait_serving(&http, &[1, 2, 3], START).await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], START).await;
    let follower = if leader == 1 { 2 } else { 1 };

    // 1. An address the old encoder cut inside a character (through a follower: forwarded).
    let long = format!("{}é", "a".repeat(1023));
    let r = post_member(
        &http,
        cluster.addr(follower),
        json!({"id": 9, "peer_addr": long, "client_addr": "127.0.0.1:1", "learner": true}),
    )
    .await;
    assert_refused(&r, 400, "invalid_member");
    for bad in [
        "no-port",
        "127.0.0.1:0",
        "0.0.0.0:7380",
        "[::1]:99999",
        "a b:1",
    ] {
        let r = post_member(
            &http,
            cluster.addr(leader),
            json!({"peer_addr": bad, "learner": true}),
        )
        .await;
        assert_refused(&r, 400, "invalid_member");
    }
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": 9, "peer_addr": "127.0.0.1:7", "client_addr": "bad", "learner": true}),
    )
    .await;
    assert_refused(&r, 400, "invalid_member");

    // 3. Three voters at unreachable addresses: each refused, a new node joins as a learner.
    for (id, port) in [(4, 1), (5, 2), (6, 3)] {
        let r = post_member(
            &http,
            cluster.addr(leader),
            json!({"id": id, "peer_addr": unreachable(port), "learner": false}),
        )
        .await;
        assert_refused(&r, 409, "learner_first");
    }
    assert_members(&http, &cluster, &[1, 2, 3], &[1, 2, 3]).await;
    assert_writes(&http, &cluster, follower, "after-refusals").await;

    // Guard rails on a working site: existing ids, non-members.
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": follower, "peer_addr": unreachable(4), "learner": true}),
    )
    .await;
    assert_refused(&r, 409, "member_exists");
    let r = delete_member(&http, cluster.addr(leader), 77).await;
    assert_refused(&r, 404, "member_not_found");

    // Quorum of healthy voters: with one follower down, removing the other would leave voters
    // {leader, down one}, of which only the leader is healthy.
    let down = (1..=3)
        .find(|&id| id != leader && id != follower)
        .expect("a third node");
    cluster.kill9(down);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = delete_member(&http, cluster.addr(leader), follower).await;
    assert_refused(&r, 409, "quorum_at_risk");
    assert_writes(&http, &cluster, leader, "one-down").await;
    cluster.spawn(down);
    cluster.wait_serving(&http, &[down], START).await;
    await_leader(&cluster, &http, &[1, 2, 3], START).await;
    assert_members(&http, &cluster, &[1, 2, 3], &[1, 2, 3]).await;

    // Every node restarted: the same members, and writes commit.
    let leader = restart_all(&http, &mut cluster).await;
    assert_members(&http, &cluster, &[1, 2, 3], &[1, 2, 3]).await;
    assert_writes(&http, &cluster, leader, "after-restart").await;
    for id in [1, 2, 3] {
        assert_writes(&http, &cluster, id, &format!("through-{id}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_only_voter_is_refused_and_the_node_keeps_working() {
    let http = http();
    let mut cluster = Cluster::start("members-single", 1);
    cluster.wait_serving(&http, &[1], START).await;
    await_leader(&cluster, &http, &[1], START).await;

    // 2. The last voter.
    let r = delete_member(&http, cluster.addr(1), 1).await;
    assert_refused(&r, 409, "last_voter");
    assert_members(&http, &cluster, &[1], &[1]).await;
    assert_writes(&http, &cluster, 1, "after-refusal").await;

    restart_all(&http, &mut cluster).await;
    assert_members(&http, &cluster, &[1], &[1]).await;
    assert_writes(&http, &cluster, 1, "after-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_joins_as_a_learner_and_is_promoted_once_caught_up() {
    let http = http();
    let mut cluster = Cluster::start("members-promote", 3);
    cluster.wait_serving(&http, &[1, 2, 3], START).await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], START).await;
    for i in 0..20 {
        assert_writes(&http, &cluster, leader, &format!("before{i}")).await;
    }
    cluster.add_node(
        4,
        vec!["--join".into(), format!("http://{}", cluster.addr(leader))],
    );
    let peer = cluster.nodes[&4].peer.to_string();
    let client = cluster.nodes[&4].client.to_string();

    // Straight in as a voter: refused, nothing changes.
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": 4, "peer_addr": peer, "client_addr": client, "learner": false}),
    )
    .await;
    assert_refused(&r, 409, "learner_first");
    assert_members(&http, &cluster, &[1, 2, 3], &[1, 2, 3]).await;

    // As a learner: added. Not running yet, it cannot be promoted (the request waits for it until its
    // deadline, then says why).
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": 4, "peer_addr": peer, "client_addr": client, "learner": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{r}");
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": 4, "peer_addr": peer, "learner": false}),
    )
    .await;
    assert_refused(&r, 409, "learner_not_caught_up");
    assert!(roles(&http, &cluster, leader)
        .await
        .contains(&(4, "learner".to_owned())));

    // It starts, catches up, and the same request promotes it.
    cluster.spawn(4);
    cluster.wait_serving(&http, &[4], START).await;
    let r = post_member(
        &http,
        cluster.addr(leader),
        json!({"id": 4, "peer_addr": peer, "learner": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{r}");
    wait_for("node 4 to be a voter everywhere", START, async || {
        let mut all = true;
        for id in [1, 2, 3, 4] {
            all &= roles(&http, &cluster, id)
                .await
                .iter()
                .any(|(m, role)| *m == 4 && role != "learner");
        }
        all
    })
    .await;
    assert_writes(&http, &cluster, 4, "through-4").await;

    let leader = restart_all(&http, &mut cluster).await;
    assert_members(&http, &cluster, &[1, 2, 3, 4], &[1, 2, 3, 4]).await;
    assert_writes(&http, &cluster, leader, "after-restart").await;
}
