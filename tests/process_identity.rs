//! A node's identity across restarts, with real `kvs-raft serve` processes: a data dir started under
//! another id is refused; an empty data dir under `--initial-cluster-state existing` is refused; a node
//! restarted during `--join`, before its first snapshot arrived, still joins. Each ends with every
//! acknowledged write present on every running node.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::http::Http;
use common::proc::Cluster;
use common::{await_leader, wait_for};
use serde_json::json;

fn http() -> Http {
    Http::new(Duration::from_secs(5))
}

/// Write `n` keys `prefix{i}` through node `via`; returns them with their values.
async fn write_keys(
    cluster: &Cluster,
    http: &Http,
    via: u64,
    prefix: &str,
    n: usize,
) -> BTreeMap<String, String> {
    let mut acked = BTreeMap::new();
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}"));
        let r = http
            .put(cluster.addr(via), &format!("/v1/kv/{k}"), v.as_bytes())
            .await
            .expect("write");
        assert_eq!(r.status, 200, "write {k}: {r}");
        acked.insert(k, v);
    }
    acked
}

/// Every acknowledged write is readable on each of `ids` from its own state (stale reads, waited for).
async fn assert_everywhere(
    cluster: &Cluster,
    http: &Http,
    ids: &[u64],
    acked: &BTreeMap<String, String>,
) {
    for &id in ids {
        for (k, v) in acked {
            let path = format!("/v1/kv/{k}?consistency=stale");
            wait_for(
                &format!("node {id} to hold {k}"),
                Duration::from_secs(30),
                async || {
                    http.get(cluster.addr(id), &path)
                        .await
                        .is_ok_and(|r| r.status == 200 && r.text() == *v)
                },
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_nodes_data_dir_started_under_another_id_refuses_to_start() {
    let http = http();
    let mut cluster = Cluster::start("idswap", 1);
    cluster
        .wait_serving(&http, &[1], Duration::from_secs(20))
        .await;
    await_leader(&cluster, &http, &[1], Duration::from_secs(10)).await;
    let acked = write_keys(&cluster, &http, 1, "k", 5).await;
    cluster.sigterm(1);
    let status = cluster.wait_exit(1, Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "SIGTERM: {status:?}");

    // Node 1's data dir, as node 2 of a matching single-member cluster.
    let peer = cluster.nodes[&1].peer;
    cluster.spawn_as(1, 2, &["--initial-cluster".into(), format!("2={peer}")]);
    let status = cluster.wait_exit(1, Duration::from_secs(15)).await;
    let log = cluster.log_text(1);
    assert!(
        status.is_some_and(|s| !s.success()),
        "node 1's data dir kept running as node 2: {status:?}\n{}",
        cluster.log_tail(1, 30)
    );
    assert!(
        log.contains("node 1") && log.contains("node 2"),
        "the refusal should name both ids:\n{}",
        cluster.log_tail(1, 30)
    );

    // Under its own id it starts and still has everything.
    cluster.spawn(1);
    cluster
        .wait_serving(&http, &[1], Duration::from_secs(20))
        .await;
    assert_everywhere(&cluster, &http, &[1], &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_data_dir_under_initial_cluster_state_existing_refuses_to_start() {
    let http = http();
    let mut cluster = Cluster::start("existing", 3);
    cluster
        .wait_serving(&http, &[1, 2, 3], Duration::from_secs(20))
        .await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], Duration::from_secs(15)).await;
    let mut acked = write_keys(&cluster, &http, leader, "a", 20).await;
    let existing = |c: &Cluster| {
        vec![
            "--initial-cluster".to_string(),
            c.initial_cluster().to_string(),
            "--initial-cluster-state".to_string(),
            "existing".to_string(),
        ]
    };

    // A follower loses its disk and is started again with the usual flags plus `existing`.
    let lost = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.kill9(lost);
    std::fs::remove_dir_all(&cluster.nodes[&lost].data_dir).expect("wipe the data dir");
    let args = existing(&cluster);
    cluster.spawn_as(lost, lost, &args);
    let status = cluster.wait_exit(lost, Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.code() == Some(1)),
        "an empty data dir under --initial-cluster-state existing: {status:?}\n{}",
        cluster.log_tail(lost, 30)
    );
    let log = cluster.log_text(lost);
    assert!(
        log.contains("existing") && log.contains("new id"),
        "the refusal should say why and what to do:\n{}",
        cluster.log_tail(lost, 30)
    );

    // A node with its data restarts fine under `existing`.
    let other = (1..=3)
        .find(|&id| id != leader && id != lost)
        .expect("the other follower");
    cluster.kill9(other);
    let args = existing(&cluster);
    cluster.spawn_as(other, other, &args);
    cluster
        .wait_serving(&http, &[other], Duration::from_secs(20))
        .await;
    acked.extend(write_keys(&cluster, &http, leader, "b", 20).await);
    assert_everywhere(&cluster, &http, &[leader, other], &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_join_before_the_first_snapshot_still_joins() {
    let http = http();
    let mut cluster = Cluster::start("joinrestart", 3);
    cluster
        .wait_serving(&http, &[1, 2, 3], Duration::from_secs(20))
        .await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], Duration::from_secs(15)).await;
    let mut acked = write_keys(&cluster, &http, leader, "a", 50).await;

    // Node 4 starts with --join: it learns the members and creates its log, but nobody sends it
    // anything yet (it is not a member). It dies there, before any snapshot.
    let join = format!("http://{}", cluster.addr(leader));
    cluster.add_node(4, vec!["--join".into(), join]);
    cluster.spawn(4);
    cluster
        .wait_serving(&http, &[4], Duration::from_secs(20))
        .await;
    let raft_dir = cluster.nodes[&4].data_dir.join("raft");
    wait_for(
        "node 4 to create its log",
        Duration::from_secs(10),
        async || raft_dir.exists(),
    )
    .await;
    cluster.kill9(4);

    // Now it is added, and restarted with the same flags.
    let (peer4, client4) = (cluster.nodes[&4].peer, cluster.nodes[&4].client);
    let r = http
        .post_json(
            cluster.addr(leader),
            "/v1/cluster/members",
            &json!({"id": 4, "peer_addr": peer4.to_string(), "client_addr": client4.to_string(), "learner": true}),
        )
        .await
        .expect("add node 4");
    assert_eq!(r.status, 200, "add node 4: {r}");
    acked.extend(write_keys(&cluster, &http, leader, "b", 50).await);
    cluster.spawn(4);
    cluster
        .wait_serving(&http, &[4], Duration::from_secs(20))
        .await;

    acked.extend(write_keys(&cluster, &http, leader, "c", 20).await);
    assert_everywhere(&cluster, &http, &[4, 1, 2, 3], &acked).await;
}
