//! Growing a running site over HTTP, with the same `serve` code the binary runs (in-process, real sockets):
//! `POST /v1/cluster/members` on a follower adds node 4 as a learner, node 4 starts with `--join`, catches
//! up, is promoted, and serves; a removed node's id is refused for ever.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::http::Http;
use common::replicas::bind;
use common::{view, wait_for, View};
use hyper::Method;
use kvs_raft::cli::{Cli, Command};
use kvs_raft::config::ServeConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Node {
    client: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve returns Ok");
        }
    }
}

/// Parse `serve` flags exactly as the binary does (no environment, no file).
fn config(flags: &[String]) -> ServeConfig {
    let argv: Vec<String> = ["kvs-raft", "serve"]
        .iter()
        .map(|s| s.to_string())
        .chain(flags.iter().cloned())
        .collect();
    let Command::Serve(args) = Cli::try_parse_from(argv).expect("flags parse").command else {
        panic!("not serve");
    };
    ServeConfig::from_sources(args, &|_| None, &|p| std::fs::read(p)).expect("valid config")
}

fn start(cfg: ServeConfig, client: TcpListener, peer: TcpListener) -> Node {
    let (tx, rx) = oneshot::channel::<()>();
    let client_addr = cfg.listen_client;
    let task = tokio::spawn(kvs_raft::node::serve(cfg, client, peer, async move {
        let _ = rx.await;
    }));
    Node {
        client: client_addr,
        stop: Some(tx),
        task: Some(task),
    }
}

/// One request to `addr` (a JSON body if any): the status and the body as text; status 0 when no
/// answer came.
async fn call(method: Method, addr: SocketAddr, path: &str, json: Option<&str>) -> (u16, String) {
    let http = Http::new(Duration::from_secs(10));
    let body = json.map(|b| (b.as_bytes().to_vec(), "application/json"));
    match http.send(method, addr, path, body).await {
        Ok(r) => (r.status, r.text()),
        Err(e) => (0, e.to_string()),
    }
}

async fn put(addr: SocketAddr, path: &str, value: &str) -> (u16, String) {
    let http = Http::new(Duration::from_secs(10));
    match http.put(addr, path, value.as_bytes()).await {
        Ok(r) => (r.status, r.text()),
        Err(e) => (0, e.to_string()),
    }
}

async fn cluster_view(node: &Node) -> Option<View> {
    view(&Http::new(Duration::from_secs(10)), node.client)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_added_over_http_joins_catches_up_and_is_promoted() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut listeners = Vec::new();
    let mut initial = BTreeMap::new();
    for id in 1..=3u64 {
        let (c, ca) = bind().await;
        let (p, pa) = bind().await;
        initial.insert(id, pa.clone());
        listeners.push((id, c, ca, p, pa));
    }
    let initial_flag = initial
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = BTreeMap::new();
    for (id, c, ca, p, pa) in listeners {
        let cfg = config(&[
            "--id".into(),
            id.to_string(),
            "--cluster-id".into(),
            "join-test".into(),
            "--data-dir".into(),
            dirs[(id - 1) as usize].path().display().to_string(),
            "--listen-client".into(),
            ca,
            "--listen-peer".into(),
            pa,
            "--initial-cluster".into(),
            initial_flag.clone(),
        ]);
        nodes.insert(id, start(cfg, c, p));
    }
    let leader = {
        let n1 = &nodes[&1];
        let mut leader = 0;
        wait_for("a leader", Duration::from_secs(15), async || {
            leader = cluster_view(n1).await.and_then(|v| v.leader).unwrap_or(0);
            leader != 0
        })
        .await;
        leader
    };
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    for i in 0..100 {
        let (s, b) = put(nodes[&follower].client, &format!("/v1/kv/before{i}"), "x").await;
        assert_eq!(s, 200, "{b}");
    }

    // Add node 4 as a learner through a follower (forwarded to the leader).
    let (c4, ca4) = bind().await;
    let (p4, pa4) = bind().await;
    let body = format!(r#"{{"id":4,"peer_addr":"{pa4}","client_addr":"{ca4}","learner":true}}"#);
    let (s, b) = call(
        Method::POST,
        nodes[&follower].client,
        "/v1/cluster/members",
        Some(&body),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let cfg4 = config(&[
        "--id".into(),
        "4".into(),
        "--cluster-id".into(),
        "join-test".into(),
        "--data-dir".into(),
        dirs[3].path().display().to_string(),
        "--listen-client".into(),
        ca4.clone(),
        "--listen-peer".into(),
        pa4,
        "--join".into(),
        format!("http://{}", nodes[&leader].client),
    ]);
    nodes.insert(4, start(cfg4, c4, p4));
    let n4: SocketAddr = ca4.parse().expect("node 4's address");
    wait_for("node 4 to catch up", Duration::from_secs(20), async || {
        let (s, b) = call(Method::GET, n4, "/v1/kv/before99?consistency=stale", None).await;
        s == 200 && b == "x"
    })
    .await;
    // Promote it (add as voter), then it takes part in the quorum and serves linearizable reads.
    let (s, b) = call(
        Method::POST,
        nodes[&leader].client,
        "/v1/cluster/members",
        Some(r#"{"id":4,"peer_addr":"ignored for a promotion","learner":false}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let n4 = &nodes[&4];
    wait_for(
        "node 4 to apply its promotion",
        Duration::from_secs(10),
        async || {
            cluster_view(n4).await.is_some_and(|v| {
                v.member(4)
                    .is_some_and(|m| !m.role.is_empty() && m.role != "learner")
            })
        },
    )
    .await;
    let (s, b) = put(n4.client, "/v1/kv/after", "y").await;
    assert_eq!(
        s,
        200,
        "write through node 4: {b}; node 4 sees {:?}",
        cluster_view(n4).await
    );
    let (s, b) = call(Method::GET, n4.client, "/v1/kv/after", None).await;
    assert_eq!((s, b.as_str()), (200, "y"));

    // Remove a follower; its id can never come back.
    let gone = (1..=3).find(|&id| id != leader).expect("follower");
    let (s, b) = call(
        Method::DELETE,
        nodes[&leader].client,
        &format!("/v1/cluster/members/{gone}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        Method::POST,
        nodes[&leader].client,
        "/v1/cluster/members",
        Some(&format!(
            r#"{{"id":{gone},"peer_addr":"127.0.0.1:1","learner":true}}"#
        )),
    )
    .await;
    assert_eq!(s, 409, "a removed id was accepted again: {b}");
    assert!(b.contains("member_removed"), "{b}");
    for node in nodes.values_mut() {
        node.stop().await;
    }
}
