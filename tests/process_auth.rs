//! Client auth on a site of `kvs-raft serve` processes sharing one token file (made with `kvs-raft token
//! create --append`): every route × {no token, bad token, read, write, admin} sent to a follower (writes
//! forwarded to the leader, which authenticates them again); the token file reloaded on SIGHUP (a token
//! added works without a restart, a removed one stops working, a malformed file keeps the tokens in
//! force); and a client address off loopback refused without auth, served with `--insecure-no-auth`
//! and a warning on every start.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{Http, Resp};
use common::proc::Cluster;
use common::{await_leader, wait_for};
use hyper::Method;
use kvs_raft::http::auth::{Access, Role};
use kvs_raft::http::ROUTES;
use serde_json::json;

/// `kvs-raft token create --name NAME --role ROLE --append FILE`: the token it prints.
fn create_token(file: &Path, name: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .args([
            "token", "create", "--name", name, "--role", role, "--append",
        ])
        .arg(file)
        .env_clear()
        .output()
        .expect("run kvs-raft token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    assert!(token.starts_with("kvs_") && token.len() > 40, "{token:?}");
    token
}

/// A request of `route` that the route may carry out without harming the site: data routes do their
/// work, the membership and leader routes are given a body or id they refuse with 400 (after auth).
fn sample(method: &Method, template: &str) -> (String, Option<serde_json::Value>, &'static [u8]) {
    let path = match template {
        "/v1/kv" if method == Method::GET => "/v1/kv?prefix=m".to_owned(),
        "/v1/kv" => "/v1/kv?key_b64=bQ==".to_owned(),
        "/v1/kv/incr" => "/v1/kv/incr?key_b64=bWM=".to_owned(),
        "/v1/kv/{key}/incr" => "/v1/kv/mc/incr".to_owned(),
        "/v1/cluster/members/{id}" => "/v1/cluster/members/not-an-id".to_owned(),
        t => t
            .replace("{key}", "mk")
            .replace("{entity}", "me")
            .replace("{name}", "c1"),
    };
    let body = match template {
        "/v1/entities/{entity}/checkpoint" => Some(json!({"name": "c1"})),
        "/v1/txn" => Some(json!({"success": [{"op": "put", "key": "mt", "value": "1"}]})),
        "/v1/batch" => Some(json!({"ops": [{"op": "put", "key": "mb", "value": "1"}]})),
        // Refused as invalid (400) once authorized: no member is added, no leader moved.
        "/v1/cluster/members" => Some(json!({"peer_addr": "", "learner": true})),
        "/v1/cluster/leader" => Some(json!({"to": "nobody"})),
        _ => None,
    };
    (path, body, b"v")
}

async fn send(http: &Http, addr: std::net::SocketAddr, method: &Method, template: &str) -> Resp {
    let (path, json, raw) = sample(method, template);
    let body = match (json, method) {
        (Some(v), _) => Some((serde_json::to_vec(&v).expect("JSON"), "application/json")),
        (None, &Method::PUT) => Some((raw.to_vec(), "application/octet-stream")),
        _ => None,
    };
    http.send(method.clone(), addr, &path, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn needed(access: Access) -> Option<Role> {
    match access {
        Access::Open | Access::Metrics => None,
        Access::Token(r) => Some(r),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_through_a_follower_and_reload_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens");
    let read = create_token(&file, "reader", "read");
    let write = create_token(&file, "writer", "write");
    let admin = create_token(&file, "ops", "admin");
    let file_str = file.to_str().expect("UTF-8 path").to_owned();
    let mut cluster = Cluster::start_with("auth", 3, |node| {
        node.env
            .push(("KVS_RAFT_AUTH_TOKEN_FILE".into(), file_str.clone()));
    });
    let anon = Http::new(Duration::from_secs(10));
    let as_admin = anon.with_bearer(Some(&admin));
    cluster
        .wait_serving(&anon, &[1, 2, 3], Duration::from_secs(30))
        .await;
    let (leader, _) = await_leader(&cluster, &as_admin, &[1, 2, 3], Duration::from_secs(30)).await;
    let follower = if leader == 1 { 2 } else { 1 };
    let (f_addr, l_addr) = (cluster.addr(follower), cluster.addr(leader));

    // The matrix, through the follower.
    let credentials: [(&str, Option<&str>, Option<Role>); 5] = [
        ("no token", None, None),
        ("bad token", Some("kvs_AAAAnot-a-token"), None),
        ("read", Some(&read), Some(Role::Read)),
        ("write", Some(&write), Some(Role::Write)),
        ("admin", Some(&admin), Some(Role::Admin)),
    ];
    let mut tally = std::collections::BTreeMap::<u16, usize>::new();
    for route in ROUTES {
        for (label, token, role) in credentials {
            let http = anon.with_bearer(token);
            let r = send(&http, f_addr, &route.method, route.template).await;
            *tally.entry(r.status).or_default() += 1;
            let what = format!(
                "{} {} with {label} on follower {follower}: {r}",
                route.method, route.template
            );
            match (needed(route.access), role) {
                (Some(_), None) => {
                    assert_eq!(
                        (r.status, r.error_code().as_deref()),
                        (401, Some("unauthorized")),
                        "{what}"
                    );
                    assert!(r.header("www-authenticate").is_some(), "{what}");
                }
                (Some(n), Some(have)) if have < n => {
                    assert_eq!(
                        (r.status, r.error_code().as_deref()),
                        (403, Some("forbidden")),
                        "{what}"
                    );
                }
                (n, _) => {
                    let code = r.error_code();
                    assert!(
                        r.status < 500
                            && ![401, 403].contains(&r.status)
                            && !matches!(code.as_deref(), Some("not_found" | "method_not_allowed")),
                        "{what}"
                    );
                    // A write let through was carried out by the leader.
                    if n == Some(Role::Write) {
                        assert_eq!(r.status, 200, "{what}");
                        assert_eq!(
                            r.header("kvs-forwarded-to"),
                            Some(l_addr.to_string()),
                            "{what}"
                        );
                    }
                    // Admin routes: the membership and leader routes refuse the empty body (400),
                    // a backup streams (200), sync pause/resume say federation is off (409).
                    if n == Some(Role::Admin) {
                        let want = match route.template {
                            "/v1/snapshot" => 200,
                            "/v1/sync/pause" | "/v1/sync/resume" => 409,
                            _ => 400,
                        };
                        assert_eq!(r.status, want, "{what}");
                    }
                }
            }
        }
    }
    eprintln!(
        "follower matrix: {} routes × {} credentials, answers by status {tally:?}",
        ROUTES.len(),
        credentials.len()
    );
    // The refused writes changed nothing; the allowed ones are on the leader.
    let as_read = anon.with_bearer(Some(&read));
    for (key, want) in [("mt", "1"), ("mb", "1"), ("mc", "4")] {
        let r = as_read
            .get(l_addr, &format!("/v1/kv/{key}"))
            .await
            .expect("read");
        // The counter: two incr routes, each let through for the write and the admin token only.
        assert_eq!((r.status, r.text()), (200, want.to_owned()), "{key}");
    }

    // A node added while auth is on joins with a read token (and says what is missing without one).
    let join_token_file = dir.path().join("join-token");
    std::fs::write(&join_token_file, format!("{read}\n")).expect("write join token");
    let join = format!("http://{l_addr}");
    cluster.add_node(4, vec!["--join".into(), join.clone()]);
    let node4 = &cluster.nodes[&4];
    let (c4, p4) = (node4.client, node4.peer);
    cluster
        .nodes
        .get_mut(&4)
        .expect("node 4")
        .env
        .push(("KVS_RAFT_AUTH_TOKEN_FILE".into(), file_str.clone()));
    let r = as_admin
        .post_json(
            l_addr,
            "/v1/cluster/members",
            &json!({"id": 4, "learner": true, "peer_addr": p4.to_string(), "client_addr": c4.to_string()}),
        )
        .await
        .expect("add member");
    assert_eq!(r.status, 200, "{r}");
    let status = {
        cluster.spawn(4);
        cluster
            .wait_exit(4, Duration::from_secs(30))
            .await
            .expect("refused to join")
    };
    assert_eq!(status.code(), Some(1), "{}", cluster.log_tail(4, 20));
    assert!(
        cluster.log_text(4).contains("--join-token-file"),
        "{}",
        cluster.log_tail(4, 20)
    );
    cluster.nodes.get_mut(&4).expect("node 4").args = vec![
        "--join".into(),
        join,
        "--join-token-file".into(),
        join_token_file.to_str().expect("UTF-8").into(),
    ];
    cluster.spawn(4);
    cluster
        .wait_serving(&anon, &[4], Duration::from_secs(30))
        .await;
    wait_for(
        "node 4 to catch up as a learner",
        Duration::from_secs(30),
        async || {
            common::view(&as_admin, c4).await.is_ok_and(|v| {
                v.member(4).is_some_and(|m| m.applied > 0) && v.leader == Some(leader)
            })
        },
    )
    .await;

    // SIGHUP: a token added to the file works without a restart ...
    let late = create_token(&file, "late", "write");
    let as_late = anon.with_bearer(Some(&late));
    let r = as_late.put(f_addr, "/v1/kv/late", b"1").await.expect("put");
    assert_eq!(r.status, 401, "{r}");
    for id in cluster.ids() {
        cluster.sighup(id);
    }
    wait_for(
        "the added token to work through the follower",
        Duration::from_secs(10),
        async || {
            as_late
                .put(f_addr, "/v1/kv/late", b"1")
                .await
                .is_ok_and(|r| r.status == 200)
        },
    )
    .await;
    // ... a removed one stops working on every node ...
    let text = std::fs::read_to_string(&file).expect("read tokens");
    let without_writer: String = text
        .lines()
        .filter(|l| !l.starts_with("writer "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without_writer.lines().count() + 1, text.lines().count());
    std::fs::write(&file, without_writer).expect("rewrite tokens");
    for id in cluster.ids() {
        cluster.sighup(id);
    }
    let as_writer = anon.with_bearer(Some(&write));
    for id in cluster.ids() {
        let addr = cluster.addr(id);
        wait_for(
            &format!("node {id} to refuse the removed token"),
            Duration::from_secs(10),
            async || {
                as_writer
                    .get(addr, "/v1/cluster")
                    .await
                    .is_ok_and(|r| r.status == 401)
            },
        )
        .await;
    }
    // ... and a malformed file keeps the tokens in force, with an error in the log.
    std::fs::write(&file, "ops admin sha256:not-hex\n").expect("break tokens");
    for id in cluster.ids() {
        cluster.sighup(id);
    }
    for id in cluster.ids() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cluster.log_text(id).contains("token file not reloaded") {
            assert!(
                Instant::now() < deadline,
                "node {id} logged no reload error:\n{}",
                cluster.log_tail(id, 20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            cluster.log_text(id).contains("line 1"),
            "{}",
            cluster.log_tail(id, 20)
        );
    }
    let r = as_late.put(f_addr, "/v1/kv/late", b"2").await.expect("put");
    assert_eq!(
        (r.status, r.header("kvs-forwarded-to")),
        (200, Some(l_addr.to_string())),
        "{r}"
    );
    // No node ever logged a token.
    for id in cluster.ids() {
        let log = cluster.log_text(id);
        for t in [&read, &write, &admin, &late] {
            assert!(!log.contains(t.as_str()), "node {id} logged a token");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_address_off_loopback_needs_auth_or_insecure_no_auth() {
    // The node listens on loopback but advertises a name others dial: reachable, so auth is required.
    let mut cluster = Cluster::start_with("insecure", 1, |node| {
        let advertised = format!("kvs-node.example:{}", node.client.port());
        node.env
            .push(("KVS_RAFT_ADVERTISE_CLIENT".into(), advertised));
    });
    let status = cluster
        .wait_exit(1, Duration::from_secs(30))
        .await
        .expect("refused to start");
    assert_eq!(status.code(), Some(2), "{}", cluster.log_tail(1, 20));
    let log = cluster.log_text(1);
    assert!(
        log.contains("reachable from other hosts") && log.contains("--insecure-no-auth"),
        "{log}"
    );
    assert!(
        !cluster.nodes[&1].data_dir.exists(),
        "nothing may be created before the refusal"
    );

    // Told explicitly: it serves, open, and warns on every start.
    cluster
        .nodes
        .get_mut(&1)
        .expect("node")
        .env
        .push(("KVS_RAFT_INSECURE_NO_AUTH".into(), "true".into()));
    let http = Http::new(Duration::from_secs(10));
    let warning = "--insecure-no-auth: the client API is open to anyone";
    for start in 1..=2 {
        cluster.spawn(1);
        cluster
            .wait_serving(&http, &[1], Duration::from_secs(30))
            .await;
        assert_eq!(
            cluster.log_text(1).matches(warning).count(),
            start,
            "start {start}"
        );
        let r = http
            .get(cluster.addr(1), "/v1/cluster")
            .await
            .expect("cluster");
        assert_eq!(r.status, 200, "open without a token: {r}");
        if start == 1 {
            // SIGHUP with auth off reloads nothing and stops nothing.
            cluster.sighup(1);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cluster.log_text(1).contains("no token file to reload") {
                assert!(Instant::now() < deadline, "{}", cluster.log_tail(1, 20));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let r = http
                .get(cluster.addr(1), "/healthz")
                .await
                .expect("still serving");
            assert_eq!(r.status, 200, "{r}");
        }
        cluster.sigterm(1);
        let status = cluster
            .wait_exit(1, Duration::from_secs(30))
            .await
            .expect("stopped");
        assert!(status.success(), "{status}");
    }
}
