//! TLS on both ports with real `kvs-raft serve` processes (certificates generated here with rcgen): a
//! 3-node site with https on the client port (mutual TLS, `--client-ca`) and mutual TLS between the nodes;
//! writes, writes forwarded by a follower, linearizable reads, a 4th node joining with `--join https://`;
//! clients with the wrong CA, with a certificate of another CA, without a certificate or without TLS are
//! refused and change nothing; certificates replaced on disk are served after SIGHUP on both ports, and a
//! broken file keeps the certificate in use.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::http::Http;
use common::proc::{Cluster, Node};
use common::{await_applied, await_leader, await_writes_everywhere, get_value, view, wait_for};
use serde_json::json;
use testkit::certs::{client_config, der_of, Ca, Leaf};
use tokio::net::TcpStream;

/// The site's CA and where its files live.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    ca_path: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        let ca = Ca::new("kvs test site CA");
        let ca_path = ca.write(dir.path(), "ca");
        Pki { dir, ca, ca_path }
    }

    /// Node `id`'s certificate, for both ports: `node-<id>` (peer identity) and 127.0.0.1 (client port).
    fn node_leaf(&self) -> impl Fn(u64) -> Leaf + '_ {
        |id| {
            self.ca
                .issue(&[&format!("node-{id}"), "127.0.0.1", "localhost"])
        }
    }

    fn files(&self, id: u64) -> (PathBuf, PathBuf) {
        let dir = self.dir.path();
        (
            dir.join(format!("node-{id}.crt")),
            dir.join(format!("node-{id}.key")),
        )
    }

    /// Write node `id`'s certificate and point its environment at the files.
    fn equip(&self, node: &mut Node) {
        let (cert, key) =
            self.node_leaf()(node.id).write(self.dir.path(), &format!("node-{}", node.id));
        let path = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
        for (k, v) in [
            ("KVS_RAFT_CLIENT_CERT", path(&cert)),
            ("KVS_RAFT_CLIENT_KEY", path(&key)),
            ("KVS_RAFT_CLIENT_CA", path(&self.ca_path)),
            ("KVS_RAFT_PEER_CERT", path(&cert)),
            ("KVS_RAFT_PEER_KEY", path(&key)),
            ("KVS_RAFT_PEER_CA", path(&self.ca_path)),
        ] {
            node.env.push((k.to_string(), v));
        }
    }
}

/// The certificate a fresh TLS connection to `addr` is served (DER), checked against `ca` for `name`.
async fn served_certificate(
    addr: SocketAddr,
    name: &str,
    ca: &Ca,
    identity: &Leaf,
) -> Result<Vec<u8>, String> {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca, Some(identity)));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::ServerName::try_from(name).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?[0]
        .0
        .clone())
}

async fn put(http: &Http, addr: SocketAddr, key: &str, value: &str) -> common::http::Resp {
    http.put(addr, &format!("/v1/kv/{key}"), value.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("PUT {key} on {addr}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_site_serves_forwards_joins_refuses_strangers_and_reloads_certificates() {
    let pki = Pki::new();
    let client_leaf = pki.ca.issue(&["test-client"]);
    let http = Http::tls(
        Duration::from_secs(10),
        client_config(&pki.ca, Some(&client_leaf)),
    );
    let mut cluster = Cluster::start_with("tls", 3, |node| pki.equip(node));
    cluster
        .wait_serving(&http, &[1, 2, 3], Duration::from_secs(30))
        .await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], Duration::from_secs(20)).await;
    let followers: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();

    // Writes on the leader, writes forwarded by a follower (over https, presenting its certificate to
    // the leader's mutual TLS), and linearizable reads on the other follower.
    let mut acked = BTreeMap::new();
    for i in 0..20 {
        let (key, value) = (format!("tls/{i}"), format!("v{i}"));
        let on = if i % 2 == 0 { leader } else { followers[0] };
        let r = put(&http, cluster.addr(on), &key, &value).await;
        assert_eq!(r.status, 200, "PUT {key} on node {on}: {r}");
        if on != leader {
            assert_eq!(
                r.header("kvs-forwarded-to").as_deref(),
                Some(cluster.addr(leader).to_string().as_str()),
                "answered by the leader"
            );
        }
        let read = get_value(&http, cluster.addr(followers[1]), &key, "").await;
        assert_eq!(read, Ok(Some(value.clone())), "linearizable read of {key}");
        acked.insert(key, value);
    }

    // Refused clients change nothing: another CA's server view (it cannot verify the site), a
    // certificate from another CA, no certificate, and no TLS at all.
    let stranger_ca = Ca::new("stranger CA");
    let stranger_leaf = stranger_ca.issue(&["test-client"]);
    let refused = [
        (
            "client trusting another CA",
            Http::tls(
                Duration::from_secs(5),
                client_config(&stranger_ca, Some(&stranger_leaf)),
            ),
        ),
        (
            "client certificate from another CA",
            Http::tls(
                Duration::from_secs(5),
                client_config(&pki.ca, Some(&stranger_leaf)),
            ),
        ),
        (
            "client without a certificate",
            Http::tls(Duration::from_secs(5), client_config(&pki.ca, None)),
        ),
        ("plain HTTP client", Http::new(Duration::from_secs(5))),
    ];
    for (who, client) in &refused {
        let r = client
            .put(cluster.addr(leader), "/v1/kv/tls/intruder", who.as_bytes())
            .await;
        assert!(r.is_err(), "{who}: answered {r:?}");
        let r = client.get(cluster.addr(leader), "/v1/cluster").await;
        assert!(r.is_err(), "{who}: answered {r:?}");
    }
    assert_eq!(
        get_value(&http, cluster.addr(leader), "tls/intruder", "").await,
        Ok(None),
        "a refused client wrote nothing"
    );

    // A 4th node joins with --join https://.
    let join = format!("https://{}", cluster.addr(followers[0]));
    cluster.add_node(4, vec!["--join".into(), join]);
    let node4 = cluster.nodes.get_mut(&4).expect("node 4");
    pki.equip(node4);
    let (peer4, client4) = (node4.peer, node4.client);
    let r = http
        .post_json(
            cluster.addr(leader),
            "/v1/cluster/members",
            &json!({"id": 4, "peer_addr": peer4.to_string(), "client_addr": client4.to_string(), "learner": true}),
        )
        .await
        .expect("add node 4");
    assert_eq!(r.status, 200, "add node 4: {r}");
    cluster.spawn(4);
    cluster
        .wait_serving(&http, &[4], Duration::from_secs(30))
        .await;
    let commit = view(&http, cluster.addr(leader))
        .await
        .expect("leader view")
        .member(leader)
        .expect("leader entry")
        .commit;
    await_applied(&cluster, &http, 4, commit, Duration::from_secs(30)).await;
    await_writes_everywhere(&cluster, &http, &[4], &acked, Duration::from_secs(30)).await;

    // Reload: node 1's certificate is replaced on disk; after SIGHUP new connections on both ports get
    // the new one.
    let (cert1, _) = pki.files(1);
    let old = der_of(&std::fs::read_to_string(&cert1).expect("node 1 cert"));
    let renewed = pki.node_leaf()(1);
    renewed.write(pki.dir.path(), "node-1");
    assert_ne!(renewed.der(), old);
    let (client1, peer1) = (cluster.addr(1), cluster.nodes[&1].peer);
    cluster.sighup(1);
    for (port, addr, name) in [("client", client1, "127.0.0.1"), ("peer", peer1, "node-1")] {
        wait_for(
            &format!("the renewed certificate on the {port} port"),
            Duration::from_secs(10),
            async || {
                served_certificate(addr, name, &pki.ca, &client_leaf).await == Ok(renewed.der())
            },
        )
        .await;
    }
    // A broken file: an error is logged, and the renewed certificate stays in use.
    std::fs::write(
        &cert1,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    )
    .expect("break");
    cluster.sighup(1);
    wait_for(
        "the reload error in node 1's log",
        Duration::from_secs(10),
        async || {
            cluster
                .log_text(1)
                .contains("client-port TLS reload failed")
                && cluster.log_text(1).contains("peer TLS reload failed")
        },
    )
    .await;
    for (addr, name) in [(client1, "127.0.0.1"), (peer1, "node-1")] {
        assert_eq!(
            served_certificate(addr, name, &pki.ca, &client_leaf).await,
            Ok(renewed.der())
        );
    }
    // The site still works through node 1 (and node 1 still reaches its peers).
    let r = put(&http, cluster.addr(1), "tls/after-reload", "ok").await;
    assert_eq!(r.status, 200, "{r}");
    acked.insert("tls/after-reload".into(), "ok".into());
    await_writes_everywhere(
        &cluster,
        &http,
        &[1, 2, 3, 4],
        &acked,
        Duration::from_secs(30),
    )
    .await;
}

/// TLS and bearer tokens together: the client port runs https with tokens on, and a write sent to a
/// follower is forwarded to the leader over https with the caller's own token, which the leader checks
/// again. No token 401, a read token 403 (refused by the follower before anything is forwarded), a write
/// token 200 from the leader; the refused writes changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_tokens_together_forward_with_the_callers_token() {
    use kvs_raft::http::auth::{Role, TokenEntry};
    let pki = Pki::new();
    let client_leaf = pki.ca.issue(&["test-client"]);
    let http = Http::tls(
        Duration::from_secs(10),
        client_config(&pki.ca, Some(&client_leaf)),
    );
    let (read_token, write_token) = (
        "kvs_test-read-token-0123456789",
        "kvs_test-write-token-0123456789",
    );
    let tokens = pki.dir.path().join("tokens");
    std::fs::write(
        &tokens,
        [
            TokenEntry::new("reader", Role::Read, read_token.as_bytes()).line(),
            TokenEntry::new("writer", Role::Write, write_token.as_bytes()).line(),
        ]
        .join("\n"),
    )
    .expect("write the token file");
    let tokens_path = tokens.to_str().expect("UTF-8 path").to_string();
    let mut cluster = Cluster::start_with("tls-auth", 3, |node| {
        pki.equip(node);
        node.env
            .push(("KVS_RAFT_AUTH_TOKEN_FILE".into(), tokens_path.clone()));
    });
    let reader = http.with_bearer(Some(read_token));
    let writer = http.with_bearer(Some(write_token));
    cluster
        .wait_serving(&reader, &[1, 2, 3], Duration::from_secs(30))
        .await;
    let (leader, _) = await_leader(&cluster, &reader, &[1, 2, 3], Duration::from_secs(20)).await;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    let at = cluster.addr(follower);

    let r = put(&http, at, "tls-auth/k", "none").await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (401, Some("unauthorized")),
        "{r}"
    );
    let r = put(&reader, at, "tls-auth/k", "read").await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("forbidden")),
        "{r}"
    );
    assert_eq!(
        r.header("kvs-forwarded-to"),
        None,
        "refused before forwarding: {r}"
    );
    let r = put(&writer, at, "tls-auth/k", "write").await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(
        r.header("kvs-forwarded-to").as_deref(),
        Some(cluster.addr(leader).to_string().as_str()),
        "forwarded over https and answered by the leader"
    );
    let acked = BTreeMap::from([("tls-auth/k".to_string(), "write".to_string())]);
    await_writes_everywhere(
        &cluster,
        &reader,
        &[1, 2, 3],
        &acked,
        Duration::from_secs(30),
    )
    .await;
}
