//! The launchers against the real servers (Debian's `etcd` and `redis-server` on PATH; scripts/compare.sh
//! and scripts/install-deps.sh install them), driven through the harness's drivers.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bench_harness::cluster::{alive, AofFsync, EtcdCluster, RedisServer};
use bench_harness::drivers::{EtcdDriver, RedisDriver};
use kvs_raft::bench::{position_key, score_key, Driver, Op};

fn etcd() -> EtcdCluster {
    EtcdCluster::start(Path::new("etcd"), 3).expect("etcd ×3 starts and is healthy")
}

fn redis(fsync: AofFsync) -> RedisServer {
    RedisServer::start(Path::new("redis-server"), fsync)
        .expect("redis-server starts and answers PING")
}

fn update(player: u64, position: &str, delta: i64) -> Op {
    Op::Update {
        player,
        position: position.as_bytes().to_vec(),
        score_delta: delta,
    }
}

fn checkpoint(player: u64) -> Op {
    Op::Checkpoint {
        player,
        name: "c1".into(),
    }
}

async fn etcd_get(endpoints: &[String], key: &str) -> Option<Vec<u8>> {
    let mut client = etcd_client::Client::connect(endpoints, None)
        .await
        .expect("connect to etcd");
    let got = client.get(key, None).await.expect("etcd get");
    got.kvs().first().map(|kv| kv.value().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_put_update_checkpoint_and_exact_concurrent_increments() {
    let cluster = etcd();
    let endpoints = cluster.endpoints();
    assert_eq!(endpoints.len(), 3);
    let driver = Arc::new(EtcdDriver::new(endpoints.clone()));

    // A put and a read back, through the driver's connection to member 2.
    let mut conn = driver.connect(1).await.expect("connect");
    let put = Op::Put {
        key: b"p9/pos".to_vec(),
        value: b"1,2".to_vec(),
    };
    driver.execute(&mut conn, &[put]).await.expect("put");
    assert_eq!(
        etcd_get(&endpoints, "p9/pos").await.as_deref(),
        Some(&b"1,2"[..])
    );
    let late = Op::LateRead {
        player: 9,
        age: Duration::from_secs(1),
    };
    driver.execute(&mut conn, &[late]).await.expect("late read");

    // 8 workers × 25 increments of player 1's score: every increment counts exactly once.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let driver = Arc::clone(&driver);
            tokio::spawn(async move {
                let mut conn = driver.connect(w).await.expect("connect");
                for i in 0..25 {
                    let op = update(1, &format!("w{w}-{i}"), 2);
                    driver.execute(&mut conn, &[op]).await.expect("update");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(
        etcd_get(&endpoints, &score_key(1)).await.as_deref(),
        Some(&b"400"[..]),
        "8 × 25 increments of 2"
    );

    // A batch: two updates of player 2 folded into one write, then a checkpoint of player 1 in the
    // middle, then an update of player 1 after it (which must survive).
    let batch = [
        update(2, "a", 1),
        update(1, "before", 5),
        update(2, "b", 3),
        checkpoint(1),
        update(1, "after", 7),
    ];
    driver.execute(&mut conn, &batch).await.expect("batch");
    assert_eq!(
        etcd_get(&endpoints, &score_key(2)).await.as_deref(),
        Some(&b"4"[..])
    );
    assert_eq!(
        etcd_get(&endpoints, &position_key(2)).await.as_deref(),
        Some(&b"b"[..])
    );
    assert_eq!(
        etcd_get(&endpoints, &score_key(1)).await.as_deref(),
        Some(&b"7"[..])
    );
    assert_eq!(
        etcd_get(&endpoints, &position_key(1)).await.as_deref(),
        Some(&b"after"[..])
    );

    // A checkpoint deletes every key of the player and nothing else.
    driver
        .execute(&mut conn, &[checkpoint(1)])
        .await
        .expect("checkpoint");
    assert_eq!(etcd_get(&endpoints, &position_key(1)).await, None);
    assert_eq!(etcd_get(&endpoints, &score_key(1)).await, None);
    assert_eq!(
        etcd_get(&endpoints, &score_key(2)).await.as_deref(),
        Some(&b"4"[..])
    );

    // A batch of 100 distinct players' updates fits one transaction (--max-txn-ops is raised).
    let big: Vec<Op> = (100..200).map(|p| update(p, "x", 1)).collect();
    driver.execute(&mut conn, &big).await.expect("batch of 100");
    assert_eq!(
        etcd_get(&endpoints, &score_key(199)).await.as_deref(),
        Some(&b"1"[..])
    );
}

/// Player `p`'s position and score as Redis holds them.
async fn redis_player(
    conn: &mut redis::aio::MultiplexedConnection,
    p: u64,
) -> (Option<String>, Option<i64>) {
    redis::pipe()
        .cmd("GET")
        .arg(position_key(p))
        .cmd("GET")
        .arg(score_key(p))
        .query_async(conn)
        .await
        .expect("GET position and score")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_put_update_checkpoint_batch() {
    for fsync in [AofFsync::Always, AofFsync::Everysec] {
        let server = redis(fsync);
        let driver = Arc::new(RedisDriver::new(&server.url()).expect("redis url"));
        let mut conn = driver.connect(0).await.expect("connect");
        let mut check = redis::Client::open(server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("check connection");

        driver
            .execute(&mut conn, &[update(3, "10,20", 4)])
            .await
            .expect("update");
        driver
            .execute(&mut conn, &[update(3, "11,21", 5)])
            .await
            .expect("update");
        assert_eq!(
            redis_player(&mut check, 3).await,
            (Some("11,21".into()), Some(9)),
            "{fsync:?}"
        );

        let batch: Vec<Op> = (0..100)
            .map(|p| update(p, "b", 1))
            .chain([checkpoint(3)])
            .collect();
        driver.execute(&mut conn, &batch).await.expect("batch");
        assert_eq!(
            redis_player(&mut check, 99).await,
            (Some("b".into()), Some(1))
        );
        assert_eq!(
            redis_player(&mut check, 3).await,
            (None, None),
            "the checkpoint deleted player 3's keys"
        );
        let late = Op::LateRead {
            player: 4,
            age: Duration::from_secs(1),
        };
        driver.execute(&mut conn, &[late]).await.expect("late read");
    }
}

#[test]
fn dropping_launchers_leaves_no_process_behind() {
    let cluster = etcd();
    let server = redis(AofFsync::Always);
    let pids: Vec<u32> = cluster.pids().into_iter().chain(server.pids()).collect();
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|&p| alive(p)), "{pids:?} run");
    drop(cluster);
    drop(server);
    let gone: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(gone.is_empty(), "still running after drop: {gone:?}");
}

#[test]
fn a_panicking_harness_still_cleans_up() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let server = redis(AofFsync::Everysec);
        tx.send(server.pids()).expect("send pids");
        panic!("the harness fails while the server runs");
    })
    .join();
    assert!(result.is_err(), "the thread panicked");
    let pids = rx.recv().expect("pids");
    assert_eq!(pids.len(), 1);
    assert!(!alive(pids[0]), "redis-server {pids:?} outlived the panic");
}

#[test]
fn stop_kill_restart_one_etcd_member() {
    let mut cluster = etcd();
    let before = cluster.pids();
    let stopped = cluster
        .stop_member(0, Duration::from_secs(5))
        .expect("SIGTERM");
    assert_eq!(stopped, bench_harness::cluster::Stopped::Graceful);
    assert!(!alive(before[0]));
    cluster.restart_member(0).expect("restart");
    cluster
        .wait_ready(Duration::from_secs(30))
        .expect("healthy again");
    cluster.kill_member(1).expect("SIGKILL");
    assert!(!alive(before[1]));
    assert_eq!(cluster.pids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvs_site_serves_survives_a_stop_and_a_kill_and_cleans_up() {
    use kvs_raft::bench::http::{HttpDriver, UpdateMode};
    use kvs_raft::client::ClientOptions;

    let binary = common::kvs_raft_binary();
    let mut site =
        tokio::task::spawn_blocking(move || bench_harness::cluster::KvsSite::start(&binary, 3))
            .await
            .expect("join")
            .expect("3 kvs-raft nodes ready");
    let options = ClientOptions {
        endpoints: site.endpoints(),
        ..ClientOptions::default()
    };
    let driver = Arc::new(HttpDriver::new(options, UpdateMode::Txn).expect("driver"));
    let mut conn = driver.connect(0).await.expect("connect");
    driver
        .execute(&mut conn, &[update(1, "1,1", 3)])
        .await
        .expect("update");
    driver
        .execute(&mut conn, &[checkpoint(1)])
        .await
        .expect("checkpoint");

    let leader = site.leader().expect("a leader");
    let follower = site
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let pids = site.pids();
    let stopped = tokio::task::block_in_place(|| site.stop_node(follower, Duration::from_secs(10)))
        .expect("SIGTERM");
    assert_eq!(stopped, bench_harness::cluster::Stopped::Graceful);
    driver
        .execute(&mut conn, &[update(2, "2,2", 1)])
        .await
        .expect("update with a node down");
    tokio::task::block_in_place(|| site.restart_node(follower, Duration::from_secs(30)))
        .expect("restart");
    tokio::task::block_in_place(|| site.kill_node(follower)).expect("SIGKILL");
    assert_eq!(site.pids().len(), 2);
    drop(site);
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "kvs-raft nodes still running after drop: {left:?}"
    );
}
